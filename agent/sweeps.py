"""Sweeps (ISweepCalls): many fast-path jobs under one record, taken in lots.

A sweep whose first job the policy takes is kept as open until its jobs are taken or its
claim deadline passes. In its turn at the sweep's cursor (agent/claim_order.py: only one claim
naming a first job can win it), the agent reads the specs from the cursor on and claims as
many as its policy takes and its free slots can run one after another before the run
deadline; a spec it would decline ends the lot before it, and the sweep is left to others once
that job is next. The claim names its first job, so the contract never hands over a job whose
spec the agent did not read: every agent used to read every spec of every sweep, and eight
agents did that work eight times. Each job of the lot is booked (with ``lot`` in its record)
and run as any claimed job. A lot's results go out in one ``submitLot`` once every job of it
is ready, carrying the matured lots' settlements; a lot with a failed job cannot be submitted,
and is expired at its run deadline (the requester refunded). A job of a lot opened to a
dispute becomes an ordinary job of the book.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.claim_order import ClaimOrder
from agent.host import FlowHost, JobBook
from agent.phases import Phase
from agent.policy import decide
from agent.settlement import RIDE_WAIT
from agent.slots import Need, Slots
from hepx.chain import Job, JobState, LotState, MarketClient, MarketEvent, TxResult, kind_id
from hepx.errors import SpecError, StoreError, TxDropped, TxReverted
from hepx.files import write_atomic

log = logging.getLogger("hepx.agent")

# A lot's jobs run one after another in the slots it may use: it is claimed only as large as
# the run window allows at the specs' max_runtime, less this margin for the submission.
LOT_MARGIN = 30


@dataclass(frozen=True)
class OpenSweep:
    """A sweep the policy takes, while it may have jobs left."""

    sweep_id: int
    spec_cids: list[str]
    price: int
    claim_deadline: int
    run_window: int
    requester: str = ""  # kept by agents from before this field: an allowlist declines it

    @classmethod
    def saved(cls, record: dict[str, Any]) -> OpenSweep:
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})

    def as_job(self) -> Job:
        """The sweep as the policy judges a job (its price, windows and requester)."""
        return Job(self.sweep_id, self.requester, JobState.OPEN, self.claim_deadline,
                   self.run_window, None, 0, self.price)  # fmt: skip


def chain_job(client: MarketClient, book: JobBook, job_id: int) -> Job:
    """The job as the chain has it: a job of a lot (not opened to a dispute) as its lot says."""
    lot_id = book.lot(job_id)
    return client.job(job_id) if lot_id is None else client.lot_job(job_id, lot_id)


class SweepFlow:
    def __init__(self, agent: FlowHost, slots: Slots, order: ClaimOrder, path: Path) -> None:
        self.agent = agent
        self.slots = slots
        self.order = order
        self.path = path
        # When each sweep's cursor was first seen where it is: sweep -> (jobs taken, time).
        self._turns: dict[int, tuple[int, float]] = {}
        # Each open sweep's jobs taken, from its LotClaimed and SweepRefunded events once read
        # from the chain (asking the chain every round cost a call per round and open sweep).
        self._taken: dict[int, int] = {}
        self._lock = threading.Lock()
        self._readying = threading.Lock()  # job threads booking a lot's results
        self.open: dict[int, OpenSweep] = {}
        if path.exists():
            saved = json.loads(path.read_text())
            self.open = {int(k): OpenSweep.saved(v) for k, v in saved.items()}

    # ------------------------------------------------------------ taking

    def on_posted(self, event: MarketEvent) -> None:
        """Keep the sweep if the policy takes its first job; say why not otherwise. The rest
        of its specs are read lot by lot, only by the agent about to claim them."""
        args = event.args
        sweep = OpenSweep(int(args["sweepId"]), [str(c) for c in args["specCids"]],
                          int(args["price"]), int(args["claimDeadline"]), int(args["runWindow"]),
                          str(args["requester"]))  # fmt: skip
        if (declined := self._declines(sweep, 0)) is not None:
            log.info("event=declined sweep=%d job=%d reason=%r", sweep.sweep_id, sweep.sweep_id,
                     declined)  # fmt: skip
            return
        self.open[sweep.sweep_id] = sweep
        self._save()
        log.info("event=sweep_taken sweep=%d jobs=%d", sweep.sweep_id, len(sweep.spec_cids))

    def on_taken(self, event: MarketEvent) -> None:
        """Move an open sweep's cursor as a LotClaimed or SweepRefunded event says."""
        sweep_id = int(event.args["sweepId"])
        if sweep_id not in self._taken:
            return  # not open here, or not read yet: read when next needed
        if event.name == "LotClaimed":
            end = int(event.args["lotId"]) + int(event.args["count"]) - sweep_id
            self._taken[sweep_id] = max(self._taken[sweep_id], end)
        else:
            self._taken[sweep_id] = len(self.open[sweep_id].spec_cids)

    def claim(self) -> None:
        """Claim a lot of each open sweep while slots are free, in this agent's turn."""
        client = self.agent.client
        now = client.chain_now() if self.open else 0.0
        for sweep_id, sweep in sorted(self.open.items()):
            if self.slots.free.cpus == 0:
                return  # no free slot: the next round
            if sweep_id not in self._taken:
                self._taken[sweep_id] = client.sweep(sweep_id).taken
            taken = self._taken[sweep_id]
            if taken >= len(sweep.spec_cids) or now > sweep.claim_deadline:
                self._close(sweep_id, "no job left")
            elif self._my_turn(sweep, taken):
                self._claim(sweep, taken, len(sweep.spec_cids) - taken)

    def _my_turn(self, sweep: OpenSweep, taken: int) -> bool:
        """Whether this agent may claim the lot at the sweep's cursor now: the workers take
        turns at each position (ClaimOrder.lot_wait), since only one claim there can win;
        where the workers serve different kinds, those serving the cursor's job's kind."""
        seen_at, since = self._turns.get(sweep.sweep_id, (-1, 0.0))
        if seen_at != taken:
            since = time.monotonic()
            self._turns[sweep.sweep_id] = (taken, since)
        kind = None
        if self.order.kinds_vary():
            spec = self.agent.specs.for_job(sweep.sweep_id + taken, sweep.spec_cids[taken])
            kind = None if spec is None else kind_id(spec.kind)
        # The order is asked again each round: a worker ahead that submits its lot meanwhile
        # (now free) moves ahead of the busy ones, this agent included.
        return time.monotonic() >= since + self.order.lot_wait(sweep.sweep_id + taken, kind)

    def _claim(self, sweep: OpenSweep, taken: int, untaken: int) -> None:
        count, declined = self._lot_from(sweep, taken, untaken)
        if declined is not None:
            self._close(sweep.sweep_id, declined)
            return
        if count == 0:
            return  # its next job needs more than the free slots: a later round
        first = sweep.sweep_id + taken
        try:
            lot_id, count, tx = self.agent.client.claim_lot(sweep.sweep_id, first, count)
        except TxReverted as exc:  # a stake short of the lot's, say
            log.info("event=lot_refused sweep=%d jobs=%d error=%s", sweep.sweep_id, count, exc)
            self._close(sweep.sweep_id, str(exc))
            return
        if count == 0 or tx is None:  # another lot took job ``first``: read the cursor again
            log.info("event=lot_skipped sweep=%d first=%d", sweep.sweep_id, first)
            self._taken.pop(sweep.sweep_id, None)
            return
        self._taken[sweep.sweep_id] = taken + count  # before the follower brings the event
        self.book_lot(sweep, lot_id, count, tx)

    def _lot_from(self, sweep: OpenSweep, taken: int, untaken: int) -> tuple[int, str | None]:
        """How many of the sweep's jobs from its ``taken``-th on make our next lot: each one's
        spec read and taken by the policy, as many as the free slots can run one after another
        before the run deadline (at the largest resources and runtime among them); or why the
        job at the cursor is declined (the sweep is then left to others)."""
        free = self.slots.free
        cpus, memory_mb, runtime, count = 1, 0, 1, 0
        for index in range(taken, taken + min(untaken, self.agent.policy.lot_jobs)):
            declined = self._declines(sweep, index)
            if declined is None:
                res = self.agent.specs.get(sweep.spec_cids[index]).resources
                cpus, memory_mb = max(cpus, res.cpus), max(memory_mb, res.memory_mb)
                runtime = max(runtime, res.max_runtime)
                declined = self.slots.never_fits(Need(cpus, memory_mb))
            if declined is not None:
                return (count, None) if count else (0, f"job {sweep.sweep_id + index}: {declined}")
            at_once = free.cpus // cpus
            if memory_mb:
                at_once = min(at_once, free.memory_mb // memory_mb)
            waves = max(1, (sweep.run_window - LOT_MARGIN) // runtime)
            if count + 1 > at_once * waves:
                break
            count += 1
        return count, None

    def _declines(self, sweep: OpenSweep, index: int) -> str | None:
        """Why the policy would not run the sweep's ``index``-th job; None if it would."""
        agent = self.agent
        try:
            spec = agent.specs.get(sweep.spec_cids[index])
        except (StoreError, SpecError) as exc:
            return str(exc)
        decision = decide(agent.policy, spec, sweep.as_job())
        if not decision.accept:
            return decision.reason
        if decision.price > sweep.price:
            return f"pays {sweep.price} wei, the policy asks {decision.price}"
        if not all(agent.store.has(ref.cid) for ref in spec.inputs):
            return "inputs unavailable"
        return None

    def book_lot(self, sweep: OpenSweep, lot_id: int, count: int, tx: TxResult) -> None:
        """Book and start the jobs of a lot we hold."""
        agent = self.agent
        run_deadline = int(tx.event("LotClaimed").args["runDeadline"])
        jobs = {
            job_id: {"spec_cid": sweep.spec_cids[job_id - sweep.sweep_id], "price": sweep.price,
                     "lot": lot_id, "lot_size": count, "run_deadline": run_deadline}
            for job_id in range(lot_id, lot_id + count)
        }  # fmt: skip
        agent.book.set_many(jobs, phase=Phase.CLAIMING, sent="claimLot")
        agent.book.set_many(
            dict.fromkeys(jobs, {}), phase=Phase.CLAIMED, claim_tx=tx.tx_hash,
            claim_block=tx.block_number,
        )  # fmt: skip
        log.info("event=lot_claimed lot=%d sweep=%d jobs=%d tx=%s", lot_id, sweep.sweep_id, count,
                 tx.tx_hash)  # fmt: skip
        for job_id, rec in jobs.items():
            agent.run_job(job_id, str(rec["spec_cid"]))

    def _close(self, sweep_id: int, why: str) -> None:
        self.open.pop(sweep_id, None)
        self._turns.pop(sweep_id, None)
        self._taken.pop(sweep_id, None)
        self._save()
        log.info("event=sweep_closed sweep=%d reason=%r", sweep_id, why)

    def _save(self) -> None:
        with self._lock:
            # vars(), not asdict(): asdict copies each sweep's list of CIDs (hundreds) deeply,
            # and every agent saves on every sweep posted and closed.
            write_atomic(self.path, json.dumps({k: vars(v) for k, v in self.open.items()}))

    # ------------------------------------------------------------ results and settlement

    def lots(self) -> dict[int, list[int]]:
        """Our lots not yet done, each with its jobs still in it."""
        found: dict[int, list[int]] = {}
        book = self.agent.book
        for job_id in book.in_phase(*(p for p in Phase if p != Phase.DONE)):
            if (lot := book.lot(job_id)) is not None:
                found.setdefault(lot, []).append(job_id)
        return found

    def book_ready(self, job_id: int, **fields: Any) -> bool:
        """Book a job's result ready; whether it can go out now: it is in no lot, or it is
        its lot's last result (a lot goes out whole, so its other jobs' wakes would be idle).
        A lot's results are booked and counted one at a time: two of its jobs finishing
        together both counted the whole lot, and both woke the loop."""
        book = self.agent.book
        if (lot := book.lot(job_id)) is None:
            book.set(job_id, phase=Phase.READY, **fields)
            return True
        with self._readying:
            book.set(job_id, phase=Phase.READY, **fields)
            # A lot's jobs are lot .. lot + size - 1 (book_lot): ask those, not every ready job.
            size = int(book.jobs[job_id]["lot_size"])
            return all(book.phase(j) == Phase.READY for j in range(lot, lot + size))

    def submit_and_settle(self, running: bool) -> None:
        """Send each lot whose results are all ready, carrying the matured lots' settlements;
        settle matured lots alone when no submission will carry them soon; expire our lots
        with a failed job once their run deadline has passed."""
        client, book = self.agent.client, self.agent.book
        now = client.chain_now()
        due: dict[int, int] = {}
        ready: list[int] = []
        lots = self.lots()
        for lot_id, jobs in sorted(lots.items()):
            rec = book.jobs[jobs[0]]
            phases = {book.phase(j) for j in jobs}
            # No second of margin past the window (nor for a job's, agent/settlement.py):
            # settleLots skips a lot not matured yet instead of reverting.
            if phases == {Phase.SUBMITTED} and now > int(rec["challenge_end"]):
                due[lot_id] = int(rec["challenge_end"])
            elif phases == {Phase.READY} and len(jobs) == int(rec["lot_size"]):
                ready.append(lot_id)
            elif Phase.FAILED in phases and Phase.CLAIMED not in phases:
                self._expire(lot_id, jobs, int(rec["run_deadline"]), now)
        for lot_id in ready:
            self._submit(lot_id, sorted(lots[lot_id]), list(due), lots)
            due = {}
        if due and (not running or now > min(due.values()) + RIDE_WAIT):
            self._settle(list(due), lots)

    def _submit(
        self, lot_id: int, jobs: list[int], due: list[int], lots: dict[int, list[int]]
    ) -> None:
        client, book = self.agent.client, self.agent.book
        results = [
            (str(book.jobs[j]["result_cid"]), bytes.fromhex(str(book.jobs[j]["digest"])[2:]))
            for j in jobs
        ]
        try:
            _, tx = client.submit_lot(lot_id, results, due)
        except TxDropped as exc:  # a reorg took its block: ready still, next round
            log.warning("event=submit_dropped lot=%d error=%s", lot_id, exc)
            return
        except TxReverted as exc:  # past the run deadline, say: expired at it
            log.warning("event=submit_refused lot=%d error=%s", lot_id, exc)
            book.set_many(dict.fromkeys(jobs, {}), phase=Phase.FAILED, error=str(exc))
            return
        end = int(tx.event("LotSubmitted").args["challengeEnd"])
        book.set_many(dict.fromkeys(jobs, {}), phase=Phase.SUBMITTED, submit_tx=tx.tx_hash,
                      challenge_end=end)  # fmt: skip
        log.info("event=lot_submitted lot=%d jobs=%d tx=%s", lot_id, len(jobs), tx.tx_hash)
        self._settled(tx, lots)

    def _settle(self, due: list[int], lots: dict[int, list[int]]) -> None:
        try:
            _, tx = self.agent.client.settle_lots(due)
        except TxReverted as exc:
            log.warning("event=settle_refused lots=%s error=%s", due, exc)
            return
        self._settled(tx, lots)

    def _settled(self, tx: TxResult, lots: dict[int, list[int]]) -> None:
        """Book the jobs of the lots ``tx`` settled as done; a job of one opened to a dispute
        (the lot paid for fewer jobs than it has) goes on as an ordinary submitted job
        (finalized, or judged, on its own)."""
        client, book = self.agent.client, self.agent.book
        for ev in (e for e in tx.events if e.name == "LotSettled"):
            lot_id = int(ev.args["lotId"])
            jobs = lots.get(lot_id, [])
            opened = len(jobs) > int(ev.args["jobs"])
            for job_id in jobs if opened else ():
                if client.job(job_id).state != JobState.NONE:
                    book.drop_field(job_id, "lot")
                    log.info("event=lot_job_opened job=%d lot=%d", job_id, lot_id)
            done = [j for j in jobs if book.lot(j) is not None]
            book.set_many(dict.fromkeys(done, {}), phase=Phase.DONE, final_state="settled",
                          done_block=tx.block_number)  # fmt: skip
            log.info("event=lot_settled lot=%d jobs=%d tx=%s", lot_id, len(done), tx.tx_hash)

    def _expire(self, lot_id: int, jobs: list[int], run_deadline: int, now: float) -> None:
        if now <= run_deadline + 1:
            return
        client, book = self.agent.client, self.agent.book
        try:
            tx = client.expire_lot(lot_id)
        except TxReverted as exc:  # someone else expired it, or a reorg: the lot says
            state = client.lot(lot_id).state
            if state in (LotState.EXPIRED, LotState.NONE):
                book.set_many(dict.fromkeys(jobs, {}), phase=Phase.DONE, final_state=state.label)
            log.info("event=expire_refused lot=%d error=%s", lot_id, exc)
            return
        book.set_many(dict.fromkeys(jobs, {}), phase=Phase.DONE, final_state="expired",
                      done_block=tx.block_number)  # fmt: skip
        log.info("event=lot_expired lot=%d tx=%s", lot_id, tx.tx_hash)

    # ------------------------------------------------------------ restarts and reorgs

    def resume(self) -> None:
        """Lots booked as claiming were claimed (they are booked from the claim's receipt)."""
        book = self.agent.book
        claiming = [j for j in book.in_phase(Phase.CLAIMING) if book.lot(j) is not None]
        if claiming:
            book.set_many(dict.fromkeys(claiming, {}), phase=Phase.CLAIMED)

    def after_reorg(self) -> None:
        """Put each lot of ours back where the chain has it: gone or another's (done), its
        submission orphaned (ready again). The sweeps' cursors are read again."""
        self._taken.clear()
        client, book = self.agent.client, self.agent.book
        for lot_id, jobs in self.lots().items():
            lot = client.lot(lot_id)
            if lot.worker != self.agent.address:
                log.warning("event=lot_orphaned lot=%d worker=%s", lot_id, lot.worker)
                book.set_many(dict.fromkeys(jobs, {}), phase=Phase.DONE, note="lot orphaned")
            elif lot.state == LotState.CLAIMED:
                submitted = [j for j in jobs if book.phase(j) == Phase.SUBMITTED]
                if submitted:
                    book.set_many(dict.fromkeys(submitted, {}), phase=Phase.READY)
