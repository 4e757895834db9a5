"""Serving on dispute panels: volunteer, re-run the job, commit and reveal a vote (issue 13).

When a result of a kind this agent's policy takes is disputed (the market's ``JobDisputed``),
the agent volunteers (the court draws by stake), and once it holds a seat re-runs the job's
spec in one of its slots, digests its own outputs and the worker's published result, and saves
its vote (``hepx.chain.court.vote_for``) and a salt *before* committing, so an agent killed at
any point commits and reveals the same vote after a restart. Then it commits once the draw
closes, reveals once the reveals open, and resolves once the verdict is due.

Its records are kept in a book of their own (``verify.json``): a job number here names the
disputed job, which this agent never holds as its worker (a party cannot verify).
Phases: ``volunteering`` -> ``seated`` -> ``voted`` -> ``vote_committed`` -> ``vote_revealed``
-> ``done``; not drawn, displaced, or out of time: ``done``.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from pathlib import Path

from agent.container_jobs import run_container_job, runs_in_container
from agent.executor import execute
from agent.host import FlowHost, JobBook
from agent.images import job_image
from agent.llm_policy import runner_env
from agent.phases import VERIFY_PHASES, Phase
from agent.policy import Policy
from agent.slots import Need, Slots
from hepx.chain import CourtClient, Dispute, DisputeState, VerifierStatus, vote_for
from hepx.digest import digest_bytes32
from hepx.errors import ChainError, DigestError, ExecutionError, SpecError, StoreError, TxReverted
from hepx.kinds import why_not_disputable
from hepx.spec import JobSpec, canonical_json
from hepx.store import LocalStore

log = logging.getLogger("hepx.agent")

# Sent unsimulated once a deadline passed (anvil simulates at the last block's time).
# Measured on a panel of 3: volunteer 158-180k, commit 60k, reveal 63k, resolve 193k.
VOLUNTEER_GAS = 300_000
VOTE_GAS = 150_000
RESOLVE_GAS = 600_000


class VerifierFlow:
    """Carries this agent's seats on dispute panels from volunteering to the verdict."""

    def __init__(self, agent: FlowHost, slots: Slots, state_dir: Path, from_block: int) -> None:
        self.agent = agent
        self.slots = slots
        self.from_block = from_block  # where the job's post and result are looked up
        self.book = JobBook(state_dir / "verify.json")
        self.work = state_dir / "verify"
        self._court: CourtClient | None = None

    @property
    def court(self) -> CourtClient:
        if self._court is None:
            self._court = CourtClient.of_market(self.agent.client)
        return self._court

    def on_dispute(self, job_id: int) -> None:
        """A result was disputed: volunteer if this agent could run the job and may sit."""
        agent = self.agent
        if not agent.policy.verify or job_id in self.book.jobs:
            return
        dispute = self.court.dispute(job_id)
        if dispute is None or dispute.state != DisputeState.DRAWING:
            return
        found = agent.client.latest_events(
            job_id, self.from_block, ("JobPosted", "ResultSubmitted"), dispute.opened_block
        )
        spec_cid = str(found["JobPosted"]["specCid"]) if "JobPosted" in found else None
        result_cid = (
            str(found["ResultSubmitted"]["resultCid"]) if "ResultSubmitted" in found else None
        )
        if spec_cid is None:  # a sweep's job: its post and result are its sweep's and lot's
            cids = agent.client.lot_job_cids(job_id, self.from_block, dispute.opened_block)
            spec_cid, result_cid = cids if cids is not None else (None, None)
        why = self._cannot_sit(dispute, spec_cid)
        if why is None and result_cid is None:
            why = "its result is not found"
        if why is not None:
            log.info("event=not_volunteering job=%d reason=%r", job_id, why)
            return
        self.book.set(
            job_id,
            phase=Phase.VOLUNTEERING,
            spec_cid=spec_cid,
            result_cid=result_cid,
        )
        log.info("event=volunteering job=%d bond=%d panel=%d", job_id, dispute.bond, dispute.panel)
        self._step(job_id)

    def _cannot_sit(self, dispute: Dispute, spec_cid: str | None) -> str | None:
        agent = self.agent
        me = agent.address
        if me in (dispute.worker, dispute.requester, dispute.disputer):
            return "a party of the job"
        if spec_cid is None:
            return "its post is not found"
        try:
            spec = agent.specs.get(spec_cid)
        except (StoreError, SpecError) as exc:
            return f"spec unreadable: {exc}"
        if spec.kind not in agent.policy.kinds:
            return f"kind {spec.kind} not in policy"
        if (why := why_not_disputable(spec.kind)) is not None:
            return f"kind {spec.kind} is not disputable: {why}"
        record = agent.client.worker(me)
        if not record.registered or record.stake == 0:
            return "no stake"
        if record.stake_since >= dispute.opened_block:
            return "stake bonded after the dispute opened"
        if record.available < dispute.verifier_stake:
            return f"available stake {record.available} below {dispute.verifier_stake}"
        if self.slots.never_fits(Need(spec.resources.cpus, spec.resources.memory_mb)):
            return "bigger than this agent's slots"
        return None

    def advance(self) -> None:
        """Move every seat one step on, as far as the chain allows now."""
        for job_id in self.book.in_phase(*VERIFY_PHASES):
            if self.slots.holds(-job_id):
                continue  # its re-run saves the vote
            try:
                self._step(job_id)
            except TxReverted as exc:
                log.warning("event=verify_refused job=%d error=%s", job_id, exc)

    # ------------------------------------------------------------ steps

    def _step(self, job_id: int) -> None:
        dispute = self.court.dispute(job_id)
        if dispute is None:  # a reorg took the dispute away
            self._done(job_id, "dispute gone")
            return
        now = self.agent.client.chain_now()
        if dispute.state != DisputeState.RESOLVED and _verdict_due(dispute, now):
            tx = self.court.resolve(job_id, gas=RESOLVE_GAS)  # anyone may; the panel does
            log.info("event=dispute_resolved job=%d tx=%s", job_id, tx.tx_hash)
            dispute = self.court.dispute(job_id) or dispute
        if dispute.state == DisputeState.RESOLVED:
            seat = self.court.seat_of(job_id, self.agent.address)
            fate = seat.status.label if seat else "not seated"
            log.info("event=verdict job=%d verdict=%s seat=%s", job_id, dispute.verdict.label, fate)
            self._done(job_id, f"{dispute.verdict.label}, seat {fate}")
            return
        phase = self.book.phase(job_id)
        if phase == Phase.VOLUNTEERING:
            self._volunteer(job_id, dispute, now)
        elif phase == Phase.SEATED:
            if self.court.seat_of(job_id, self.agent.address) is None:
                self._done(job_id, "displaced by a better key")
            else:
                self._rerun(job_id, dispute)
        elif phase == Phase.VOTED and now > dispute.draw_deadline:
            self._commit(job_id)
        elif phase == Phase.VOTE_COMMITTED and (
            now > dispute.commit_deadline or dispute.committed == dispute.drawn
        ):
            self._reveal(job_id)

    def _volunteer(self, job_id: int, dispute: Dispute, now: float) -> None:
        if self.court.seat_of(job_id, self.agent.address) is not None:
            self.book.set(job_id, phase=Phase.SEATED)  # sent before a crash: it landed
            self._rerun(job_id, dispute)
            return
        if now > dispute.draw_deadline:
            self._done(job_id, "draw closed")
            return
        # The seed is a later block's: a simulation in the dispute's own block would be refused,
        # but the transaction itself lands in a later one.
        gas = VOLUNTEER_GAS if self.agent.client.block_number() <= dispute.opened_block else None
        try:
            tx = self.court.volunteer(job_id, gas=gas)
        except TxReverted as exc:
            log.info("event=not_drawn job=%d error=%s", job_id, exc)
            self._done(job_id, f"not drawn: {exc}")
            return
        key = tx.event("VerifierDrawn").args["key"]
        log.info("event=drawn job=%d key=%d tx=%s", job_id, key, tx.tx_hash)
        self.book.set(job_id, phase=Phase.SEATED, volunteer_tx=tx.tx_hash)
        self._rerun(job_id, dispute)

    def _rerun(self, job_id: int, dispute: Dispute) -> None:
        rec = self.book.jobs[job_id]
        try:
            spec = self.agent.specs.get(str(rec["spec_cid"]))
        except (StoreError, SpecError) as exc:
            self._done(job_id, f"spec unreadable: {exc}")  # silent: our stake pays for it
            return
        need = Need(spec.resources.cpus, spec.resources.memory_mb)
        self.slots.run(-job_id, need, lambda: self._vote(job_id, spec, dispute))

    def _vote(self, job_id: int, spec: JobSpec, dispute: Dispute) -> None:
        """In a slot: run the spec, digest ours and the worker's published result, save."""
        agent = self.agent
        workdir = self.work / str(job_id)
        budget = min(spec.resources.max_runtime, dispute.commit_deadline - agent.client.chain_now())
        result_cid = str(self.book.jobs[job_id]["result_cid"])
        log.info("event=verifying job=%d kind=%s timeout=%ds", job_id, spec.kind, budget)
        try:
            own, theirs = recheck(
                spec, agent.store, agent.policy, result_cid, workdir, budget, -job_id, agent.address
            )
        except (ExecutionError, StoreError, DigestError, ChainError) as exc:
            log.error("event=verify_failed job=%d error=%s", job_id, exc)
            self._done(job_id, f"re-run failed: {exc}")
            return
        vote = vote_for(own, theirs)
        agreed = theirs == own
        self.book.set(
            job_id,
            phase=Phase.VOTED,
            vote="0x" + vote.hex(),
            salt="0x" + secrets.token_bytes(32).hex(),
            agrees=agreed,
        )
        log.info("event=voted job=%d agrees=%s digest=0x%s", job_id, agreed, own.hex())

    def _commit(self, job_id: int) -> None:
        rec = self.book.jobs[job_id]
        seat = self.court.seat_of(job_id, self.agent.address)
        if seat is None:
            self._done(job_id, "displaced by a better key")
            return
        if seat.status == VerifierStatus.DRAWN:
            commitment = self.court.vote_commitment(
                job_id, self.agent.address, bytes.fromhex(rec["vote"][2:]),
                bytes.fromhex(rec["salt"][2:]),
            )  # fmt: skip
            tx = self.court.commit_vote(job_id, commitment, gas=VOTE_GAS)
            log.info("event=vote_committed job=%d tx=%s", job_id, tx.tx_hash)
        self.book.set(job_id, phase=Phase.VOTE_COMMITTED)

    def _reveal(self, job_id: int) -> None:
        rec = self.book.jobs[job_id]
        seat = self.court.seat_of(job_id, self.agent.address)
        if seat is not None and seat.status == VerifierStatus.COMMITTED:
            vote, salt = bytes.fromhex(rec["vote"][2:]), bytes.fromhex(rec["salt"][2:])
            tx = self.court.reveal_vote(job_id, vote, salt, gas=VOTE_GAS)
            log.info("event=vote_revealed job=%d tx=%s", job_id, tx.tx_hash)
        self.book.set(job_id, phase=Phase.VOTE_REVEALED)

    def _done(self, job_id: int, note: str) -> None:
        self.book.set(job_id, phase=Phase.DONE, note=note)


def _verdict_due(dispute: Dispute, now: float) -> bool:
    """The court's rule for ``resolve``, at ``now`` (the next block's time)."""
    if now > dispute.reveal_deadline:
        return True
    drawn_all_in = dispute.drawn < dispute.majority or dispute.revealed == dispute.drawn
    return now > dispute.draw_deadline and drawn_all_in


def recheck(
    spec: JobSpec,
    store: LocalStore,
    policy: Policy,
    result_cid: str,
    workdir: Path,
    budget: float,
    label: int,
    runner: str,
) -> tuple[bytes, bytes | None]:
    """Run ``spec`` afresh in ``workdir`` (removed after) and return (our canonical digest,
    the digest of the published result ``result_cid``, None if it cannot be had or digested).

    What a verifier votes by and what ``hepx job dispute --recheck`` checks before disputing.
    ``label`` names the run's container (job number, negative for a verification) and
    ``runner`` the address it runs for. Raises ExecutionError/StoreError/DigestError."""
    shutil.rmtree(workdir, ignore_errors=True)
    inputs, outputs = workdir / "inputs", workdir / "result" / "outputs"
    for folder in (inputs, outputs):
        folder.mkdir(parents=True)
    spec_path = workdir / "spec.json"
    spec_path.write_bytes(canonical_json(spec))
    try:
        if budget <= 0:
            raise ExecutionError("no time left to re-run the job before the deadline")
        for ref in spec.inputs:
            store.get(ref.cid, inputs / ref.name)
        if runs_in_container(spec, policy):
            run_container_job(spec, policy, store, workdir, budget, label, runner)
        else:
            env = runner_env(policy.llm, workdir / "checkpoint", time.time() + budget)
            execute(spec.kind, spec_path, inputs, outputs, workdir / "job.log", budget, label, env)
        own = digest_bytes32(spec.kind, outputs)
        published = workdir / "published"
        try:
            store.get(result_cid, published)
            theirs: bytes | None = digest_bytes32(spec.kind, published / "outputs")
        except (StoreError, DigestError) as exc:
            log.warning("event=published_unreadable result=%s error=%s", result_cid, exc)
            theirs = None
        return own, theirs
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def recheck_as_requester(
    spec: JobSpec, store: LocalStore, result_cid: str, workdir: Path
) -> tuple[bytes, bytes | None]:
    """``recheck`` for a requester on its own machine (``hepx job dispute --recheck``): the
    spec's own image is allowed, the spec's max runtime is the budget."""
    image = job_image(spec)
    policy = Policy(images=[image] if image else [])
    return recheck(spec, store, policy, result_cid, workdir, spec.resources.max_runtime, 0, "local")


__all__ = ["VerifierFlow", "recheck", "recheck_as_requester"]
