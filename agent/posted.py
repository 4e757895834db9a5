"""Jobs posted in the blocks a poll read, known from their events.

Every agent decided on every post after asking the chain for the job and its terms: two
calls per job per agent, the largest share of a busy market's agent CPU. A job whose post
the poll read, and which no later transaction of the poll touched, stands at the poll's last
block exactly as its JobPosted (and JobTermsSet) say, so it needs no call; one that a later
event closed (claimed, cancelled) is left without a call, and one it touched otherwise (bid
on) is asked of the chain as before. Catching up over
older ranges, a job taken in a later range looks open at its own range's end: its claim is
then skipped on chain, or not sent when the simulation finds nothing left to claim
(``MarketClient.claim_jobs``), or the later range's event ends its wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from hepx.chain import Job, JobTerms, MarketEvent, closes
from hepx.chain.market import as_posted


@dataclass
class _Post:
    event: MarketEvent  # its JobPosted
    terms: MarketEvent | None = None  # the JobTermsSet of the same call, if posted with terms
    touched: bool = False  # an event of another transaction named it since


class PostedJobs:
    def __init__(self) -> None:
        self._posts: dict[int, _Post] = {}

    def saw(self, event: MarketEvent) -> None:
        job_id = event.job_id
        if event.name == "JobPosted" and job_id is not None:
            self._posts[job_id] = _Post(event)  # a reorg's post of the number again replaces it
        elif job_id is not None and (post := self._posts.get(job_id)) is not None:
            if event.tx_hash != post.event.tx_hash and closes(event):
                del self._posts[job_id]  # taken or cancelled: nothing to decide, nor to ask
            elif event.tx_hash != post.event.tx_hash:
                post.touched = True  # bid on, applied for, ...
            elif event.name == "JobTermsSet":
                post.terms = event  # the post's own call's events leave it as posted

    def pending(self) -> list[tuple[int, str, tuple[Job, JobTerms] | None]]:
        """Each post not yet done, in order: its spec CID and, if nothing touched it since, the
        job and its terms (None: ask the chain)."""
        return [
            (job_id, str(post.event.args["specCid"]),
             None if post.touched else as_posted(post.event, post.terms))
            for job_id, post in sorted(self._posts.items())
        ]  # fmt: skip

    def done(self, job_id: int) -> None:
        self._posts.pop(job_id, None)

    def clear(self) -> None:
        """Forget every post (a reorg: the follower reads the new blocks' posts again)."""
        self._posts.clear()
