"""First-come claims of one loop round, sent together in one claimJobs transaction.

A job another worker got first is skipped on chain (never a reverted transaction); the jobs
held start in the slots reserved for them when they were queued. A claim is booked as
claiming when it is queued: an agent killed before the batch went out finds it on restart and
asks the chain (agent/recovery.py), as for a claim whose answer was lost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from agent.host import FlowHost
from agent.phases import Phase
from agent.slots import Slots
from hepx.errors import TxReverted
from hepx.spec import JobSpec

log = logging.getLogger("hepx.agent")

# Seconds a queued claim waits for more of the same poll to join its batch (a poll of a burst
# considers each job in turn, which takes a while; held to its end, the slots sat idle).
WINDOW = 0.05


@dataclass(frozen=True)
class QueuedClaim:
    """A first-come job this round decided to claim, its slot reserved."""

    spec_cid: str
    spec: JobSpec
    price: int


class ClaimBatch:
    def __init__(self, agent: FlowHost, slots: Slots) -> None:
        self.agent = agent
        self.slots = slots
        self._queued: dict[int, QueuedClaim] = {}
        self._since = 0.0  # when the first of them was queued

    def queue(self, job_id: int, spec_cid: str, spec: JobSpec, price: int) -> None:
        """Claim the job with this round's batch (its slot is already reserved)."""
        if not self._queued:
            self._since = time.monotonic()
        self.agent.book.set(
            job_id, phase=Phase.CLAIMING, sent="claim", spec_cid=spec_cid, price=price
        )
        self._queued[job_id] = QueuedClaim(spec_cid, spec, price)

    def holds(self, job_id: int) -> bool:
        """True while the job's claim is queued here, not sent yet."""
        return job_id in self._queued

    def pending(self) -> bool:
        return bool(self._queued)

    def due(self) -> bool:
        """True once the first queued claim has waited its window."""
        return bool(self._queued) and time.monotonic() - self._since > WINDOW

    def send(self) -> None:
        """Claim every queued job in one transaction."""
        queued, self._queued = self._queued, {}
        if queued:
            self._send(queued)

    def _send(self, queued: dict[int, QueuedClaim]) -> None:
        agent = self.agent
        try:
            held, tx = agent.client.claim_jobs({j: want.price for j, want in queued.items()})
        except TxReverted as exc:
            if len(queued) == 1:
                self._lost(queued, str(exc))
                return
            # One item the chain refuses (a stake gone meanwhile, say) refuses the batch:
            # claim the others one by one rather than lose them.
            log.info("event=claim_batch_refused jobs=%s error=%s", list(queued), exc)
            for job_id, want in queued.items():
                self._send({job_id: want})
            return
        except BaseException:
            # Outage or kill: the jobs stay claiming, and the agent's recovery asks the chain.
            for job_id in queued:
                self.slots.release(job_id)
            raise
        self._lost({j: w for j, w in queued.items() if j not in held}, "another worker was first")
        if tx is None:
            return  # held is empty without a transaction
        # Booked from the claim's events: the run reads it from the book, not the chain.
        run_deadlines = {int(e.args["jobId"]): int(e.args["runDeadline"]) for e in tx.events
                         if e.name == "JobClaimed"}  # fmt: skip
        for job_id in held:
            want = queued[job_id]
            agent.book.set(job_id, phase=Phase.CLAIMED, claim_tx=tx.tx_hash,
                           claim_block=tx.block_number,
                           run_deadline=run_deadlines[job_id])  # fmt: skip
            log.info("event=claimed job=%d tx=%s price=%d", job_id, tx.tx_hash, want.price)
            agent.run_job(job_id, want.spec_cid, want.spec)

    def _lost(self, lost: dict[int, QueuedClaim], why: str) -> None:
        for job_id in lost:
            self.agent.book.forget(job_id)
            self.slots.release(job_id)
            log.info("event=claim_refused job=%d error=%s", job_id, why)
