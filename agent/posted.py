"""Jobs posted in the blocks a poll read, known from their events.

Every agent decided on every post after asking the chain for the job and its terms: two
calls per job per agent, the largest share of a busy market's agent CPU. A job whose post
the poll read, and which no later transaction of the poll touched, stands at the poll's last
block exactly as its JobPosted (and JobTermsSet) say, so it needs no call; one that a later
event touched (claimed, bid on, cancelled) is asked of the chain as before. Catching up over
older ranges, a job taken in a later range looks open at its own range's end: its claim is
then skipped on chain, or not sent when the simulation finds nothing left to claim
(``MarketClient.claim_jobs``), or the later range's event ends its wait.
"""

from __future__ import annotations

from hepx.chain import Job, JobTerms, MarketEvent
from hepx.chain.market import as_posted


class PostedJobs:
    def __init__(self) -> None:
        self._posts: dict[int, MarketEvent] = {}
        self._terms: dict[int, MarketEvent] = {}
        self._touched: set[int] = set()

    def saw(self, event: MarketEvent) -> None:
        if event.name == "JobPosted":
            job_id = int(event.args["jobId"])
            self._posts[job_id] = event  # a reorg's post of the number again replaces it
            self._terms.pop(job_id, None)
            self._touched.discard(job_id)
            return
        job_id = int(event.args.get("jobId", -1))
        if job_id not in self._posts:
            return
        if event.tx_hash != self._posts[job_id].tx_hash:
            self._touched.add(job_id)  # claimed, bid on, cancelled, ...
        elif event.name == "JobTermsSet":
            self._terms[job_id] = event  # the post's own call's events leave it as posted

    def pending(self) -> list[tuple[int, str, tuple[Job, JobTerms] | None]]:
        """Each post not yet done, in order: its spec CID and, if nothing touched it since, the
        job and its terms (None: ask the chain)."""
        return [
            (job_id, str(post.args["specCid"]),
             None if job_id in self._touched else as_posted(post, self._terms.get(job_id)))
            for job_id, post in sorted(self._posts.items())
        ]  # fmt: skip

    def done(self, job_id: int) -> None:
        self._posts.pop(job_id, None)
        self._terms.pop(job_id, None)
        self._touched.discard(job_id)

    def clear(self) -> None:
        """Forget every post (a reorg: the follower reads the new blocks' posts again)."""
        self._posts.clear()
        self._terms.clear()
        self._touched.clear()
