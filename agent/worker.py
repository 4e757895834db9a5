"""The worker agent: listener -> guardian (policy) -> claim -> executor -> publisher.

It follows JobMarket events from a saved cursor and keeps, per job it touched, the phase it
reached in a state file. Both are written after each step, so an agent killed at any point
resumes where it was: a claimed job is run again, a submitted one is finalized, and no job is
claimed twice.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.bidding import AuctionFlow, per_replica, stake_shortfall
from agent.claim_batch import ClaimBatch
from agent.claim_order import ClaimOrder
from agent.container_jobs import (
    remove_leftover_containers,
    run_container_job,
    runs_in_container,
)
from agent.earnings import Earnings
from agent.executor import Execution, execute, start_runners
from agent.host import AgentPaths, JobBook, Produced
from agent.llm_client import EndpointProbe
from agent.llm_policy import runner_env
from agent.phases import Phase
from agent.pins import DEFAULT_RETENTION, pin_job, pin_result, release_settled
from agent.policy import Policy, decide
from agent.posted import PostedJobs
from agent.provenance import result_facts
from agent.recovery import Recovery
from agent.replication import ReplicaFlow
from agent.settlement import heard, submit_and_settle
from agent.slots import Need, Slots, machine_cpus, machine_memory_mb
from agent.slurm import BatchSystem, Slurm, run_batch_job
from agent.specs import SpecCache
from agent.stake import ensure_stake
from agent.sweeps import SweepFlow, chain_job
from agent.verification import VerifierFlow
from agent.waiting import Waiting, WaitReason
from hepx import __version__
from hepx.chain import (
    KEPT_HASHES,
    Cursor,
    EventFollower,
    HeadWatcher,
    Job,
    JobState,
    JobTerms,
    MarketClient,
    MarketEvent,
    MatchMode,
    TxResult,
    closes,
    kind_id,
    others_money,
    websocket_url,
)
from hepx.digest import Digest, canonical_digest
from hepx.errors import (
    ChainError,
    DigestError,
    ExecutionError,
    HepxError,
    SpecError,
    StoreError,
    TxReverted,
)
from hepx.kinds import PER_TOKEN_KINDS
from hepx.spec import JobSpec, canonical_json
from hepx.store import LocalStore, push_dag

log = logging.getLogger("hepx.agent")

# Seconds kept free before the run deadline for storing outputs and the submit tx.
SUBMIT_MARGIN = 10
# Seconds a round for new blocks waits at least after the last one began, with one or two
# workers of its kinds (more space their rounds: ClaimOrder.round_spacing; a full agent waits
# its poll interval, as its rounds could take no job). A result to send (its slot then free
# too) does not wait for it.
MIN_ROUND_SECONDS = 0.05


class WorkerAgent:
    def __init__(
        self,
        client: MarketClient,
        store: LocalStore,
        policy: Policy,
        state_dir: Path,
        start_block: int,
        confirmations: int = 0,
        poll_interval: float = 0.25,
        submit_margin: int = SUBMIT_MARGIN,
        ws_url: str | None = "",
    ) -> None:
        self.client = client
        self.store = store
        self.specs = SpecCache(store)
        self.policy = policy
        self.paths = AgentPaths(state_dir)
        self.book = JobBook(self.paths.jobs)
        self.recovery = Recovery(self)  # lost answers, orphaned claims and results
        self.follower = EventFollower(
            client,
            Cursor(self.paths.cursor, start_block),
            confirmations,
            on_reorg=self._after_reorg,
            skip=others_money(client.sender, self.book.jobs.__contains__),
        )
        self.poll_interval = poll_interval
        # Woken by each new block where the node offers a subscription ("" = the RPC URL's
        # WebSocket on the same port, None = poll only); the poll interval is the fallback.
        self.heads = HeadWatcher(websocket_url(client.rpc_url) if ws_url == "" else ws_url)
        self.submit_margin = submit_margin
        self.address = client.sender
        self.earnings = Earnings(client, policy)
        client.tx_observers.append(lambda _what, tx: self.earnings.note(tx.events))
        # Jobs with terms (auctions, replicas, stakes, tokens, allowlists): agent/bidding.py
        # and agent/replication.py.
        self.auctions = AuctionFlow(self)
        self.replicas = ReplicaFlow(self)
        self.pin_retention = DEFAULT_RETENTION  # seconds a settled job's data stays pinned
        self.llm_probe = EndpointProbe(policy.llm) if policy.llm else None
        # Where results are pushed when this agent's store is not the API's (another host).
        self.publish_url: str | None = None
        self.publish_headers: dict[str, str] = {}  # its API token, where the API wants one
        # Jobs run in threads of their own, as many at once as CPUs and memory allow: this
        # machine's, or a whole cluster's when jobs go to its batch system.
        self.batch: BatchSystem | None = Slurm(policy.slurm) if policy.slurm else None
        cpus, memory_mb = (
            self.batch.capacity() if self.batch else (machine_cpus(), machine_memory_mb())
        )
        self.slots = Slots(policy.slots or cpus, policy.memory_mb or memory_mb)
        self.verifier = VerifierFlow(self, self.slots, state_dir, start_block)  # dispute panels
        # First-come jobs other workers rank ahead of us for wait for our turn, so lost claim
        # races cost no gas.
        self.order = ClaimOrder(self.address)
        self.claims = ClaimBatch(self, self.slots)  # this round's first-come claims
        self.waiting = Waiting(self.paths.waiting)
        self.follower.cursor.before_write.append(self.waiting.flush)
        self.sweeps = SweepFlow(self, self.slots, self.order, self.paths.sweeps)  # sweeps' lots
        self.posted = PostedJobs()  # the posts of the range being read

    # ------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        log.info(
            "event=agent_started worker=%s market=%s from_block=%d kinds=%s",
            self.address,
            self.client.address,
            self.follower.cursor.block + 1,
            ",".join(self.policy.kinds),
        )
        log.info("event=slots cpus=%d memory_mb=%d", self.slots.cpus, self.slots.memory_mb)
        remove_leftover_containers(self.policy, self.address)
        # Before the kinds are declared; none kept where the batch system runs the jobs.
        start_runners(self.policy.kinds, 0 if self.batch else self.slots.cpus)
        ensure_stake(self.client, self.policy)
        self.resume_held()  # jobs a previous run claimed but did not submit
        self.heads.start()
        lost_since: float | None = None
        kinds = [kind_id(kind) for kind in self.policy.kinds]  # its rounds are spaced by theirs
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.step()
            except ChainError as exc:
                # An outage must not kill the agent: the cursor has not moved, so retry later.
                # Said once when the node is lost and once when it is back, not every retry.
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.warning("event=chain_lost rpc=%s error=%s", self.client.rpc_url, exc)
                else:
                    log.debug("event=chain_error error=%s", exc)
                stop.wait(min(5.0, self.poll_interval * 8))
                continue
            if lost_since is not None:
                log.warning("event=chain_back after=%.0fs", time.monotonic() - lost_since)
                lost_since = None
            self.heads.wait(self.poll_interval)
            spacing = self.order.round_spacing(MIN_ROUND_SECONDS, self.poll_interval, kinds)
            spacing = self.poll_interval if self.slots.full else spacing
            self.heads.gather(began + spacing - time.monotonic())
        self.heads.stop()
        self.waiting.flush()
        self.follower.cursor.flush()
        if self.slots.running:
            # A job cut short here would run again from the start after a restart.
            log.info("event=draining running=%d", self.slots.running)
        self.slots.join()
        try:
            self.earnings.withdraw(now=True)
        except HepxError as exc:  # the credit stays ours in the contract
            log.warning("event=withdraw_failed error=%s", exc)
        log.info("event=agent_stopped worker=%s", self.address)

    def step(self) -> None:
        """One round of the loop; jobs it starts run on in their threads (``slots.join()``)."""
        with self.client.one_clock():
            self._round()

    def _round(self) -> None:
        self.follower.poll(self.handle, self.consider_posted)
        self.resume_held()
        self.reconsider_waiting()
        self.claims.send()
        self.sweeps.claim()
        self.auctions.advance()
        self.replicas.advance()
        self.verifier.advance()
        submit_and_settle(self.client, self.book, self.recovery, running=self.slots.running > 0)
        self.sweeps.submit_and_settle(running=self.slots.running > 0)
        release_settled(self.store, self.book, self.pin_retention)
        self.book.archive_done(self.follower.cursor.block - KEPT_HASHES)
        self.earnings.withdraw()

    def resume_held(self) -> None:
        """Run again every claimed job no slot holds: after a restart, or when its thread died
        (an RPC outage at submit, say) before the job left the phase."""
        self.sweeps.resume()
        for job_id in self.book.in_phase(Phase.CLAIMING):
            self.recovery.resolve_claim(job_id)
        for job_id in self.book.in_phase(Phase.CLAIMED):
            # holds() first: a thread records the job's next phase before it lets go of the
            # slot, so a job no slot holds shows its latest phase here.
            if self.slots.holds(job_id) or self.book.phase(job_id) != Phase.CLAIMED:
                continue
            job = chain_job(self.client, self.book, job_id)
            if job.state == JobState.CLAIMED and job.worker == self.address:
                log.info("event=resuming job=%d", job_id)
                self.run_job(job_id, self.book.jobs[job_id]["spec_cid"])
            elif job.state == JobState.OPEN:  # a reorg took our claim away
                log.warning("event=claim_orphaned job=%d state=open", job_id)
                self.recovery.consider_again(job_id)
            else:
                self.book.set(job_id, phase=Phase.DONE, note=f"found {job.state.label} on restart")

    # ------------------------------------------------------------ listener + guardian

    def handle(self, event: MarketEvent) -> None:
        self.order.saw(event)
        self.earnings.note([event])
        self.posted.saw(event)  # a JobPosted is considered once its range is read
        heard(self.book, event)
        if closes(event) and event.job_id is not None:
            self.waiting.drop(event.job_id)  # taken: considering it again would only ask
        if event.name == "SweepPosted":
            self.sweeps.on_posted(event)
        elif event.name in ("LotClaimed", "SweepRefunded"):
            self.sweeps.on_taken(event)
        elif event.name == "JobDisputed":
            self.verifier.on_dispute(int(event.args["jobId"]))

    def consider_posted(self) -> None:
        """Decide on the jobs posted in the range just read (agent/posted.py)."""
        for job_id, spec_cid, known in self.posted.pending():
            self.consider(job_id, spec_cid, known=known)
            self.posted.done(job_id)
            if self.claims.due():
                self.claims.send()  # a burst's first jobs do not wait for the whole poll

    def _after_reorg(self, fork: int) -> None:
        self.posted.clear()
        self.waiting.forget_known()
        self.earnings.after_reorg()
        self.recovery.after_reorg(fork)
        self.sweeps.after_reorg()

    def reconsider_waiting(self) -> None:
        """Consider again the waiting jobs whose wait may be over."""
        llm_back = self.llm_probe is not None and self.llm_probe.unavailable() is None
        for job_id in self.waiting.due(WaitReason.LLM) if llm_back else []:
            log.info("event=llm_ready job=%d", job_id)
            self._reconsider(WaitReason.LLM, job_id)
        # Ours first, then turns come: either is only taken with a slot free (without one, a
        # stand-in's job could only wait again).
        for reason in (WaitReason.SLOT, WaitReason.TURN):
            for job_id in self.waiting.due(reason):
                if self.slots.free.cpus == 0:
                    break
                self._reconsider(reason, job_id)

    def _reconsider(self, reason: WaitReason, job_id: int) -> None:
        with self.waiting.considering(reason, job_id) as (spec_cid, known):
            self.consider(job_id, spec_cid, in_turn=reason == WaitReason.TURN, known=known)

    def need_of(self, spec: JobSpec) -> Need:
        return Need(spec.resources.cpus, spec.resources.memory_mb)

    def consider(
        self,
        job_id: int,
        spec_cid: str,
        in_turn: bool = False,
        known: tuple[Job, JobTerms] | None = None,
    ) -> None:
        """Decide on an open job: claim, bid, wait or decline (``known``: the job and its terms
        as they stand now, else asked of the chain)."""
        if job_id in self.book.jobs:
            if self.book.phase(job_id) == Phase.CLAIMING:
                self.recovery.resolve_claim(job_id)  # an outage took the claim's answer
            return  # already ours: resume_held() or the settlement carry it on
        job = known[0] if known else self.client.job(job_id)
        if job.state != JobState.OPEN or job.deadline < self.client.chain_now():
            log.debug("event=skipped job=%d reason=%s", job_id, job.state.label)
            return
        terms = known[1] if known else self.client.terms(job_id)
        # A claim is a promise to run now: take the slot first, or leave the job to others.
        # An auction bid or an application to a replicated job's draw is not (the award comes
        # later, or never): the won job waits for a slot. Every eligible worker applies to a
        # draw (the stake-weighted draw, not arrival, picks), so nobody defers to others there.
        bidding = terms.mode == MatchMode.AUCTION or terms.replicas > 1
        kept = None if bidding else (job, terms)  # a bid changes a job without closing it
        spec: JobSpec | None = None
        if not bidding and not in_turn:
            # Ranked before its spec is read (the workers ahead take most jobs, and N agents
            # read every spec), unless the workers serve different kinds (its kind then ranks).
            if self.order.kinds_vary() and (spec := self.specs.for_job(job_id, spec_cid)) is None:
                return
            kind = None if spec is None else kind_id(spec.kind)
            if wait := self.order.wait(job_id, terms.replicas, kind):
                # DEBUG: all but one agent of a kind defer every post (a line each cost a
                # twentieth of a round).
                log.debug("event=deferred job=%d reason='others rank first' wait=%.2f", job_id,
                          wait)  # fmt: skip
                self.waiting.put(WaitReason.TURN, job_id, spec_cid, after=wait, known=kept)
                return
        if spec is None and (spec := self.specs.for_job(job_id, spec_cid)) is None:
            return
        decision = decide(self.policy, spec, per_replica(job, terms))
        if not decision.accept:
            log.info("event=declined job=%d reason=%r", job_id, decision.reason)
            return
        probe = self.llm_probe if spec.kind in PER_TOKEN_KINDS else None
        if probe and (llm_down := probe.unavailable()) is not None:
            log.info("event=waiting job=%d reason=%r", job_id, f"LLM endpoint: {llm_down}")
            self.waiting.put(WaitReason.LLM, job_id, spec_cid, known=kept)
            return
        missing = [ref.name for ref in spec.inputs if not self.store.has(ref.cid)]
        if missing:
            log.warning("event=declined job=%d reason=inputs_unavailable inputs=%s", job_id,
                        missing)  # fmt: skip
            return
        need = self.need_of(spec)
        if (too_big := self.slots.never_fits(need)) is not None:
            log.info("event=declined job=%d reason=%r", job_id, too_big)
            return
        if not bidding and not self._reserve(job_id, need):
            log.info("event=waiting job=%d reason='all slots busy' running=%d", job_id,
                     self.slots.running)  # fmt: skip
            self.waiting.put(WaitReason.SLOT, job_id, spec_cid, known=kept)
            return
        queued = False
        try:
            queued = self._take(job_id, spec_cid, spec, job, terms, decision.price)
        finally:
            if not queued:
                self.slots.release(job_id)  # a no-op once the job runs

    def _reserve(self, job_id: int, need: Need) -> bool:
        """Reserve ``need`` for the job. When this round's queued claims hold the slots, they
        are sent now, so their jobs start (and may end) while the round goes on: held until
        the round's end, a burst's slots sat idle through the whole poll."""
        if self.slots.reserve(job_id, need):
            return True
        if not self.claims.pending():
            return False
        self.claims.send()
        return self.slots.reserve(job_id, need)

    def _take(
        self, job_id: int, spec_cid: str, spec: JobSpec, job: Job, terms: JobTerms, price: int
    ) -> bool:
        """Take the job: bid or claim it through its flow, or queue a first-come claim for
        this round's batch (True: its slot stays reserved for it)."""
        stake_needed = self.client.stake_required(terms.min_stake, price)
        if self.auctions.needs_terms(terms):
            self.auctions.take(job_id, spec_cid, spec, job, terms, price, stake_needed)
            return False
        if stake_needed and (short := stake_shortfall(self.client, stake_needed)) is not None:
            log.info("event=declined job=%d reason=%r", job_id, short)
            return False
        self.claims.queue(job_id, spec_cid, spec, price)
        return True

    def claim_queued_for(self, job_id: int) -> bool:
        return self.claims.holds(job_id)

    def send_claim(
        self, job_id: int, sent: str, send: Callable[[], TxResult], **record: Any
    ) -> TxResult | None:
        before = self.book.phase(job_id)  # outbid, when bidding again
        self.book.set(job_id, phase=Phase.CLAIMING, sent=sent, **record)
        try:
            tx = send()
        except TxReverted as exc:
            if before is None:
                self.book.forget(job_id)
            else:
                self.book.set(job_id, phase=before)
            log.info("event=%s_refused job=%d error=%s", sent, job_id, exc)
            return None
        self.book.set(job_id, claim_block=tx.block_number)
        return tx

    # ------------------------------------------------------------ executor + publisher

    def run_job(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        """Run a job we hold in a slot (now, or when one frees) and submit its result."""
        self._in_slot(job_id, spec_cid, spec, self._run_and_submit)

    def run_replica(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        self._in_slot(job_id, spec_cid, spec, self.replicas.run)

    def running(self, job_id: int) -> bool:
        return self.slots.holds(job_id)

    def _in_slot(self, job_id: int, spec_cid: str, spec: JobSpec | None,
                 work: Callable[[int, str, JobSpec | None], None]) -> None:  # fmt: skip
        try:
            spec = spec or self.specs.get(spec_cid)
            need = self.need_of(spec)
        except (StoreError, SpecError):
            need = Need()  # produce_result fails the job with the reason
        self.slots.run(job_id, need, lambda: work(job_id, spec_cid, spec))

    def _run_and_submit(self, job_id: int, spec_cid: str, spec: JobSpec | None) -> None:
        produced = self.produce_result(job_id, spec_cid, spec)
        if produced is None:
            return
        result_cid = produced.result_cid
        try:
            digest = self._result_digest(job_id, produced)
            if (lost := self._no_longer_held(job_id, spec_cid)) is not None:
                # The phase stays claimed: resume_held() acts on what the chain says now.
                log.warning("event=claim_orphaned job=%d reason=%r result_not_sent", job_id, lost)
                return
        finally:
            # Ready, failed or not ours: a run of this job number starts afresh from here.
            shutil.rmtree(produced.workdir, ignore_errors=True)
            shutil.rmtree(self._checkpoint(job_id), ignore_errors=True)
        # The loop sends every ready result of a round in one submitResults (agent/
        # settlement.py); booked first, so a kill from here on loses no run.
        ready = self.sweeps.book_ready(
            job_id,
            result_cid=result_cid,
            digest="0x" + digest.hex(),
            run_seconds=round(produced.seconds, 1),
        )
        if ready:
            self.heads.wake()

    def _result_digest(self, job_id: int, produced: Produced) -> bytes:
        """The outputs' canonical digest, submitted beside the CID for a dispute's verifiers
        to check; zeros (a claim nobody can uphold) if none can be made."""
        try:
            return produced.digest_bytes32()
        except DigestError as exc:
            log.warning("event=no_digest job=%d error=%s", job_id, exc)
            return bytes(32)

    def _no_longer_held(self, job_id: int, spec_cid: str) -> str | None:
        """Why a result for ``job_id`` must not be sent, or None: a reorg took the claim away
        (the job is another worker's, open again, or, its post gone, another job's number)."""
        rec = self.book.jobs.get(job_id, {})
        if rec.get("phase") != Phase.CLAIMED or rec.get("spec_cid") != spec_cid:
            return f"the book now has {rec.get('phase')} for spec {rec.get('spec_cid')}"
        if "lot" in rec:
            return None  # the lot's submission is refused on chain if it is not ours any more
        job = chain_job(self.client, self.book, job_id)
        if job.state != JobState.CLAIMED or job.worker != self.address:
            return f"on chain it is {job.state.label}, worker {job.worker}"
        return None

    def _batch_job_to_follow(self, job_id: int) -> str | None:
        """The batch job an earlier run of this agent queued for ``job_id``, if it is still
        queued, running, or completed well (its outputs are then in the work folder)."""
        batch_id = self.book.jobs.get(job_id, {}).get("batch_id")
        if self.batch is None or batch_id is None:
            return None
        state = self.batch.state(batch_id)
        if state is None or (state.ended and (state.state, state.exit_code) != ("COMPLETED", 0)):
            log.info("event=batch_not_followed job=%d batch=%s state=%s", job_id, batch_id, state)
            return None
        return str(batch_id)

    def _checkpoint(self, job_id: int) -> Path:  # a runner's scratch that survives a rerun
        return self.paths.state_dir / "checkpoints" / str(job_id)

    def produce_result(
        self, job_id: int, spec_cid: str, spec: JobSpec | None = None
    ) -> Produced | None:
        """Run the job and store its result folder; None (and phase failed) if it failed."""
        spec = spec or self.specs.get(spec_cid)
        pin_job(self.store, job_id, spec_cid, [ref.cid for ref in spec.inputs])
        # The run deadline is in the book (from the claim's event): one read less per job.
        deadline = self.book.jobs[job_id].get("run_deadline")
        if deadline is None:
            deadline = self.client.job(job_id).deadline
        budget = min(
            spec.resources.max_runtime,
            self.policy.max_runtime,
            int(deadline - time.time()) - self.submit_margin,
        )
        workdir = self.paths.work / str(job_id)
        inputs, result = workdir / "inputs", workdir / "result"
        outputs = result / "outputs"
        spec_path = workdir / "spec.json"
        followed = self._batch_job_to_follow(job_id)  # queued before a restart, still good
        if followed is None:
            shutil.rmtree(workdir, ignore_errors=True)
            for folder in (inputs, outputs):
                folder.mkdir(parents=True)
            spec_path.write_bytes(canonical_json(spec))
        started = time.time()
        try:
            if budget <= 0:
                raise ExecutionError(f"job {job_id}: no time left before the run deadline")
            if followed is None:
                for ref in spec.inputs:
                    self.store.get(ref.cid, inputs / ref.name)
            log.info("event=running job=%d kind=%s timeout=%ds", job_id, spec.kind, budget)
            run: Execution
            env = runner_env(self.policy.llm, self._checkpoint(job_id), time.time() + budget)
            if runs_in_container(spec, self.policy):
                run = run_container_job(
                    spec, self.policy, self.store, workdir, budget, job_id, self.address
                )
            elif self.batch is not None and self.policy.slurm is not None:
                run = run_batch_job(
                    self.batch,
                    spec.kind,
                    spec_path,
                    inputs,
                    outputs,
                    result / "job.log",
                    budget,
                    job_id,
                    spec.resources.cpus,
                    spec.resources.memory_mb,
                    env,
                    followed,
                    lambda batch_id: self.book.set(job_id, batch_id=batch_id),
                    poll=self.policy.slurm.poll_seconds,
                )
            else:
                run = execute(
                    spec.kind, spec_path, inputs, outputs, result / "job.log", budget, job_id, env
                )
        except (ExecutionError, StoreError) as exc:
            # No result to submit: the run deadline passes and the escrow is refunded
            # (submit_and_settle() expires it), so nothing is lost.
            log.error("event=failed job=%d error=%s", job_id, exc)
            self.book.set(job_id, phase=Phase.FAILED, error=str(exc))
            return None
        digest: Digest | DigestError
        try:
            digest = canonical_digest(spec.kind, outputs)
        except DigestError as exc:
            digest = exc
        provenance = {
            "job_id": job_id,
            "chain_id": self.client.chain_id(),
            "market": self.client.address,
            "worker": self.address,
            "spec_cid": spec_cid,
            "kind": spec.kind,
            "inputs": {ref.name: ref.cid for ref in spec.inputs},
            "claim_tx": self.book.jobs[job_id].get("claim_tx"),
            "started_at": started,
            "seconds": round(run.seconds, 3),
            "exit_code": run.exit_code,
            "container": run.container,
            "batch": run.batch,
            "software": {"hepx": __version__, "python": platform.python_version()},
            **result_facts(spec, outputs, digest),
        }
        (result / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True))
        result_cid = self.store.add_dir(result)
        pin_result(self.store, job_id, result_cid)
        if self.publish_url:
            try:
                push_dag(self.store, self.publish_url, result_cid, headers=self.publish_headers)
            except StoreError as exc:
                # Not on chain yet, so nothing is lost: the run deadline refunds the requester.
                log.error("event=failed job=%d error=%s", job_id, exc)
                self.book.set(job_id, phase=Phase.FAILED, error=str(exc))
                return None
            log.info("event=published job=%d result=%s to=%s", job_id, result_cid, self.publish_url)
        return Produced(result_cid, outputs, workdir, run.seconds, digest)
