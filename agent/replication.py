"""Replicated jobs: run, commit ``keccak(digest, salt)``, reveal, settle (DESIGN.md).

Phases in the job book: ``replica`` (assigned, to run) -> ``digested`` (result stored; digest
and salt saved *before* the commit is sent, so an agent killed at any point can still commit or
reveal the same answer) -> ``committed`` -> ``revealed`` -> ``done``; a replica whose run failed
goes to ``replica_failed`` and still tallies the job once its deadlines pass. Each step reads the
replica's status on chain first, so repeating a step after a restart is harmless.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from typing import Any

from agent.bidding import close_matching
from agent.host import FlowHost
from agent.phases import REPLICA_PHASES, Phase
from hepx.chain import AssignmentStatus, JobState
from hepx.errors import DigestError, TxReverted
from hepx.spec import JobSpec

log = logging.getLogger("hepx.agent")

# Sent unsimulated when only the wall clock says the call is due (anvil simulates at the last
# block's time). Tallying touches every replica, hence the larger limit.
# Measured with 8 replicas: reveal 68k, tally with 3 slashed 317k.
REVEAL_GAS = 300_000
TALLY_GAS = 900_000


class ReplicaFlow:
    """Carries this agent's replicas of replicated jobs through commit and reveal."""

    def __init__(self, agent: FlowHost) -> None:
        self.agent = agent

    def run(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        """Run an assigned replica, store its result and save digest + salt; then commit."""
        agent = self.agent
        produced = agent.produce_result(job_id, spec_cid, spec)
        if produced is None:
            # We will be slashed as a no-show; we still see to it that the job ends.
            agent.book.set(job_id, phase=Phase.REPLICA_FAILED)
            return
        try:
            digest = produced.digest_bytes32()  # what the replicas compare
        except DigestError as exc:
            log.error("event=failed job=%d error=%s", job_id, exc)
            agent.book.set(job_id, phase=Phase.REPLICA_FAILED, error=str(exc))
            return
        finally:
            shutil.rmtree(produced.workdir, ignore_errors=True)
        agent.book.set(
            job_id,
            phase=Phase.DIGESTED,
            result_cid=produced.result_cid,
            digest="0x" + digest.hex(),
            salt="0x" + secrets.token_bytes(32).hex(),
        )
        log.info(
            "event=digested job=%d digest=0x%s result=%s", job_id, digest.hex(), produced.result_cid
        )
        self._step(job_id)

    def advance(self) -> None:
        """Move every replica we hold one step on, as far as the chain allows now."""
        for job_id in self.agent.book.in_phase(*REPLICA_PHASES):
            if self.agent.running(job_id):
                continue  # its slot's thread carries it to the commit
            try:
                self._step(job_id)
            except TxReverted as exc:
                log.info("event=replica_step_refused job=%d error=%s", job_id, exc)

    def _step(self, job_id: int) -> None:
        agent, client = self.agent, self.agent.client
        rec = agent.book.jobs[job_id]
        job = client.job(job_id)
        if job.state.final:
            self._finish(job_id, job.state)
            return
        mine = client.assignment_of(job_id, agent.address)
        status = mine.status if mine else AssignmentStatus.NONE
        now = client.chain_now()
        phase = rec["phase"]
        if phase == Phase.REPLICA:
            log.info("event=resuming job=%d", job_id)
            agent.run_replica(job_id, rec["spec_cid"])
            return
        if job.state == JobState.OPEN:
            # Claim mode with fewer claimants than replicas: anyone awards after the window.
            if now > job.deadline + 1:
                tx = close_matching(client, job_id)
                log.info("event=matching_closed job=%d tx=%s", job_id, tx.tx_hash)
            return
        if phase == Phase.REPLICA_FAILED:
            self._tally(job_id)  # we have nothing to reveal, but the job must still end
            return
        if phase == Phase.DIGESTED:
            if status == AssignmentStatus.ASSIGNED and now > job.deadline:
                agent.book.set(
                    job_id, phase=Phase.REPLICA_FAILED, error="missed the commit deadline"
                )
                log.error("event=failed job=%d error=missed the commit deadline", job_id)
                return
            if status == AssignmentStatus.ASSIGNED and job.state == JobState.COMMITTING:
                commitment = client.commitment(job_id, _b32(rec["digest"]), _b32(rec["salt"]))
                tx = client.commit_result(job_id, commitment)
                log.info("event=committed job=%d tx=%s", job_id, tx.tx_hash)
                status = AssignmentStatus.COMMITTED
            if status >= AssignmentStatus.COMMITTED:
                agent.book.set(job_id, phase=Phase.COMMITTED)
                phase = Phase.COMMITTED
                job = client.job(job_id)
        if phase == Phase.COMMITTED:
            if status == AssignmentStatus.COMMITTED and self._reveal_open(job, now):
                # After the commit deadline the node's view of time may lag: send unsimulated.
                gas = REVEAL_GAS if job.state == JobState.COMMITTING else None
                tx = client.reveal_result(
                    job_id, _b32(rec["digest"]), _b32(rec["salt"]), rec["result_cid"], gas=gas
                )
                log.info("event=revealed job=%d tx=%s", job_id, tx.tx_hash)
                status = AssignmentStatus.REVEALED
            if status >= AssignmentStatus.REVEALED:
                agent.book.set(job_id, phase=Phase.REVEALED)
                phase = Phase.REVEALED
        if phase == Phase.REVEALED:
            self._tally(job_id)

    @staticmethod
    def _reveal_open(job: Any, now: float) -> bool:
        """Reveals open when every replica committed (Revealing) or the commit deadline passed."""
        return bool(
            job.state == JobState.REVEALING
            or (job.state == JobState.COMMITTING and now > job.deadline + 1)
        )

    def _tally(self, job_id: int) -> None:
        """Finalize once every replica revealed or the reveal deadline passed (anyone may)."""
        client = self.agent.client
        job = client.job(job_id)
        if job.state.final:
            self._finish(job_id, job.state)
            return
        terms = client.terms(job_id)
        everyone = terms.revealed >= terms.assigned
        reveal_end = job.deadline + (terms.reveal_window if job.state == JobState.COMMITTING else 0)
        if not everyone and client.chain_now() <= reveal_end + 1:
            return
        tx = client.finalize(job_id, gas=TALLY_GAS)
        log.info("event=tallied job=%d tx=%s", job_id, tx.tx_hash)
        self._finish(job_id, client.job(job_id).state)

    def _finish(self, job_id: int, state: JobState) -> None:
        agent = self.agent
        mine = agent.client.assignment_of(job_id, agent.address)
        outcome = mine.status.label if mine else "none"
        agent.book.set(job_id, phase=Phase.DONE, final_state=state.label, replica=outcome)
        log.info("event=replica_done job=%d state=%s replica=%s", job_id, state.label, outcome)


def _b32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes of hex, got {value!r}")
    return raw
