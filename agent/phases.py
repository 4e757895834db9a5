"""The phases a job goes through in an agent's book, and which may follow which.

Every flow (a claim, an auction, a replica) records its job's phase in the book
(``agent.host.JobBook``), which refuses a step this table does not allow: a flow that
wanders off its path is a bug to be seen, not a record to be trusted after a restart.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    CLAIMING = "claiming"  # claim or bid being sent; after a crash the chain says what it did
    CLAIMED = "claimed"  # ours: running, or to run again after a restart
    READY = "ready"  # result stored and digested: sent with the loop's next submitResults
    SUBMITTED = "submitted"  # result on chain; finalized once the challenge window passes
    FAILED = "failed"  # the run failed; the job is expired once its run deadline passes
    BID = "bid"  # an auction bid or a draw seat held, waiting for the award
    OUTBID = "outbid"  # pushed out of an auction; may bid again
    REPLICA = "replica"  # one replica of a replicated job: running
    DIGESTED = "digested"  # its digest computed and salted, to commit
    COMMITTED = "committed"  # commitment on chain, to reveal
    REVEALED = "revealed"  # revealed, waiting for the tally
    REPLICA_FAILED = "replica_failed"  # nothing to reveal; still sees the job end
    # Seats on dispute panels (agent/verification.py; a book of their own).
    VOLUNTEERING = "volunteering"  # to volunteer, or sent; after a crash the court says
    SEATED = "seated"  # holds a seat: re-running the job
    VOTED = "voted"  # vote and salt saved, to commit once the draw closes
    VOTE_COMMITTED = "vote_committed"  # to reveal once every seat committed or the deadline
    VOTE_REVEALED = "vote_revealed"  # waiting for (or calling) the verdict
    DONE = "done"  # final on chain (or never ours); its pins are released later


# The phases a job may move to from each (staying in one's phase is always allowed: a
# record gains fields). A reorg can undo what a transaction did, hence the ways back.
NEXT: dict[Phase | None, frozenset[Phase]] = {
    None: frozenset({Phase.CLAIMING, Phase.VOLUNTEERING}),
    Phase.CLAIMING: frozenset({Phase.CLAIMED, Phase.BID, Phase.REPLICA, Phase.OUTBID, Phase.DONE}),
    Phase.CLAIMED: frozenset({Phase.READY, Phase.SUBMITTED, Phase.FAILED, Phase.DONE}),
    # Not sent: a reorg took the claim away (done, or forgotten and considered afresh), or
    # the run deadline passed (failed).
    Phase.READY: frozenset({Phase.SUBMITTED, Phase.FAILED, Phase.DONE}),
    Phase.SUBMITTED: frozenset({Phase.DONE, Phase.CLAIMED, Phase.READY}),
    # A replica's run fails as a job's does, then goes on as a failed replica.
    Phase.FAILED: frozenset({Phase.DONE, Phase.REPLICA_FAILED}),
    Phase.BID: frozenset({Phase.CLAIMED, Phase.REPLICA, Phase.OUTBID, Phase.DONE}),
    Phase.OUTBID: frozenset({Phase.CLAIMING}),
    Phase.REPLICA: frozenset({Phase.DIGESTED, Phase.FAILED, Phase.REPLICA_FAILED, Phase.DONE}),
    Phase.DIGESTED: frozenset({Phase.COMMITTED, Phase.REPLICA_FAILED, Phase.DONE}),
    Phase.COMMITTED: frozenset({Phase.REVEALED, Phase.DONE}),
    Phase.REVEALED: frozenset({Phase.DONE}),
    Phase.REPLICA_FAILED: frozenset({Phase.DONE}),
    Phase.VOLUNTEERING: frozenset({Phase.SEATED, Phase.DONE}),
    Phase.SEATED: frozenset({Phase.VOTED, Phase.DONE}),
    Phase.VOTED: frozenset({Phase.VOTE_COMMITTED, Phase.DONE}),
    Phase.VOTE_COMMITTED: frozenset({Phase.VOTE_REVEALED, Phase.DONE}),
    Phase.VOTE_REVEALED: frozenset({Phase.DONE}),
    Phase.DONE: frozenset({Phase.SUBMITTED, Phase.CLAIMED, Phase.READY}),
}

REPLICA_PHASES = frozenset(
    {Phase.REPLICA, Phase.DIGESTED, Phase.COMMITTED, Phase.REVEALED, Phase.REPLICA_FAILED}
)
AUCTION_PHASES = frozenset({Phase.BID, Phase.OUTBID})
VERIFY_PHASES = frozenset(
    {Phase.VOLUNTEERING, Phase.SEATED, Phase.VOTED, Phase.VOTE_COMMITTED, Phase.VOTE_REVEALED}
)


class PhaseError(RuntimeError):
    """A flow tried a step the table does not allow (a bug in the agent)."""


def check_step(job_id: int, old: str | None, new: str) -> Phase:
    """``new`` as a Phase, if a job in ``old`` may move there; else PhaseError."""
    before = None if old is None else Phase(old)
    after = Phase(new)
    if after != before and after not in NEXT[before]:
        raise PhaseError(f"job {job_id}: no step from {before} to {after}")
    return after
