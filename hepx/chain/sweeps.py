"""The market's sweep calls (ISweepCalls): many fast-path jobs under one record, taken and
paid in lots. They reach the market's fallback, so the market's ABI as hepx loads it holds
them; :class:`~hepx.chain.market.MarketClient` has these methods."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from eth_utils.abi import event_abi_to_log_topic

from hepx.chain.enums import JobState, LotState
from hepx.chain.events import Skip
from hepx.chain.types import (
    LOT_BASE_GAS,
    LOT_CLAIM_GAS,
    LOT_ITEM_GAS,
    LOT_SETTLE_GAS,
    SETTLE_GAS,
    ZERO_ADDRESS,
    Job,
    Lot,
    MarketEvent,
    Sweep,
    TxResult,
)

# What a lot's state says of each of its jobs (those not opened to a dispute).
_LOT_JOB_STATE = {
    LotState.NONE: JobState.NONE,
    LotState.CLAIMED: JobState.CLAIMED,
    LotState.SUBMITTED: JobState.SUBMITTED,
    LotState.SETTLED: JobState.SETTLED,
    LotState.EXPIRED: JobState.EXPIRED,
}


class SweepCalls:
    """Mixed into the market's client, whose ``contract``, ``read`` and ``transact`` it uses."""

    if TYPE_CHECKING:  # the client's own; declared here only for the type checker
        contract: Any
        rpc: Any
        sender: str

        def read(self, function: str, *args: Any) -> Any: ...

        def simulate(self, what: str, function: str, *args: Any) -> Any: ...

        def job(self, job_id: int) -> Job: ...

        def decode_log(self, raw: Any, skip: Skip | None = None) -> MarketEvent | None: ...

        def iter_events(
            self, from_block: int, to_block: int, job_id: int | None = None, chunk: int = 5000
        ) -> Iterator[MarketEvent]: ...

        def transact(
            self, what: str, fn: Any, value: int = 0, gas: int | None = None
        ) -> TxResult: ...

    def sweep(self, sweep_id: int) -> Sweep:
        requester, count, taken, price, claim_deadline, run_window = self.read("getSweep", sweep_id)
        return Sweep(
            sweep_id, str(requester), int(count), int(taken), int(price), int(claim_deadline),
            int(run_window),
        )  # fmt: skip

    def lot(self, lot_id: int) -> Lot:
        worker, requester, count, opened, state, deadline, price, digests = self.read(
            "getLot", lot_id
        )
        return Lot(
            lot_id, None if worker == ZERO_ADDRESS else str(worker), str(requester), int(count),
            int(opened), LotState(state), int(deadline), int(price), bytes(digests),
        )  # fmt: skip

    def post_sweep(
        self, spec_cids: Sequence[str], price: int, claim_window: int, run_window: int
    ) -> tuple[int, TxResult]:
        """Post ``spec_cids`` as one sweep at ``price`` each; the sweep's id (its first job's)."""
        fn = self.contract.functions.postSweep(list(spec_cids), price, claim_window, run_window)
        tx = self.transact(f"postSweep x{len(spec_cids)}", fn, value=price * len(spec_cids))
        return int(tx.event("SweepPosted").args["sweepId"]), tx

    def claim_lot(
        self, sweep_id: int, first_job: int, most: int
    ) -> tuple[int, int, TxResult | None]:
        """Take at most ``most`` of the sweep's jobs from ``first_job`` on, if that is still
        its next job: (lot id, jobs taken, tx). When the call already finds none left or the
        cursor moved, nothing is sent, (0, 0, None); when another worker's claim landed first
        meanwhile, the claim is skipped on chain, not reverted: (0, 0, tx)."""
        fn = self.contract.functions.claimLot(sweep_id, first_job, most)
        what = f"claimLot {sweep_id} from {first_job} x{most}"
        # The call is the simulation (a refusal raises here); the transaction then goes
        # without a second one, with gas for a new worker's account.
        _, count = self.simulate(what, "claimLot", sweep_id, first_job, most)
        if count == 0:
            return 0, 0, None
        tx = self.transact(what, fn, gas=LOT_CLAIM_GAS)
        for ev in tx.events:
            if ev.name == "LotClaimed":
                return int(ev.args["lotId"]), int(ev.args["count"]), tx
        return 0, 0, tx

    def submit_lot(
        self,
        lot_id: int,
        results: Sequence[tuple[str, bytes]],
        matured: Sequence[int] = (),
    ) -> tuple[list[int], TxResult]:
        """Submit one (result CID, digest) per job of the lot, in order, and settle the
        ``matured`` lots; the lots it settled. Sent unsimulated (settlements are due by the
        wall clock), with gas for every item."""
        fn = self.contract.functions.submitLot(
            lot_id, [cid for cid, _ in results], [d for _, d in results], list(matured)
        )
        gas = LOT_BASE_GAS + LOT_ITEM_GAS * len(results) + LOT_SETTLE_GAS * len(matured)
        tx = self.transact(f"submitLot {lot_id} settling {list(matured)}", fn, gas=gas)
        return [int(e.args["lotId"]) for e in tx.events if e.name == "LotSettled"], tx

    def settle_lots(self, lot_ids: Sequence[int]) -> tuple[list[int], TxResult]:
        """Settle each lot whose challenge window has passed (others skipped on chain)."""
        fn = self.contract.functions.settleLots(list(lot_ids))
        gas = SETTLE_GAS + LOT_SETTLE_GAS * (len(lot_ids) - 1)
        tx = self.transact(f"settleLots {list(lot_ids)}", fn, gas=gas)
        return [int(e.args["lotId"]) for e in tx.events if e.name == "LotSettled"], tx

    def expire_lot(self, lot_id: int) -> TxResult:
        fn = self.contract.functions.expireLot(lot_id)
        return self.transact(f"expireLot {lot_id}", fn, gas=SETTLE_GAS)

    def refund_sweep(self, sweep_id: int) -> TxResult:
        fn = self.contract.functions.refundSweep(sweep_id)
        return self.transact(f"refundSweep {sweep_id}", fn, gas=SETTLE_GAS)

    def open_lot_job(self, lot_id: int, job_id: int, digests: Sequence[bytes]) -> TxResult:
        """Make a job of a submitted lot an ordinary submitted job, so it can be disputed."""
        fn = self.contract.functions.openLotJob(lot_id, job_id, list(digests))
        return self.transact(f"openLotJob {job_id} of lot {lot_id}", fn)

    def sweep_job(
        self, job_id: int, sweep_id: int, from_block: int, to_block: int
    ) -> tuple[Job, str, list[MarketEvent]] | None:
        """Job ``job_id`` of sweep ``sweep_id`` as the chain has it, its spec CID and its
        events (its sweep's post and refund, its lot's, its own once opened to a dispute;
        the sweep's and lot's payments, which are not this job's alone, left out); None if
        the sweep has no such job. ``from_block``: the sweep's post or before."""
        sweep_events = list(self.iter_events(from_block, to_block, job_id=sweep_id))
        posted = [e for e in sweep_events if e.name == "SweepPosted"]
        if not posted or not 0 <= job_id - sweep_id < len(posted[-1].args["specCids"]):
            return None
        spec_cid = str(posted[-1].args["specCids"][job_id - sweep_id])
        lot_id = self._lot_holding(job_id, sweep_id, from_block, to_block)
        events = [e for e in sweep_events if e.name in ("SweepPosted", "SweepRefunded")]
        if lot_id is not None:
            events += [
                e for e in self.iter_events(from_block, to_block, job_id=lot_id)
                if e.name.startswith("Lot") and e.args.get("jobId", job_id) == job_id
            ]  # fmt: skip
        mine = (sweep_events if job_id == sweep_id
                else self.iter_events(from_block, to_block, job_id=job_id))  # fmt: skip
        own = [e for e in mine if e.job_id == job_id and not e.name.startswith(("Lot", "Sweep"))]
        ends = {e.tx_hash for e in own if e.name != "Payment"}
        events += [e for e in own if e.name != "Payment" or e.tx_hash in ends]
        # The three lists are apart by name (Sweep*, Lot*, the job's own): nothing twice.
        events.sort(key=lambda e: (e.block_number, e.log_index))
        return self._sweep_job_state(job_id, sweep_id, lot_id, posted[-1]), spec_cid, events

    def _lot_holding(
        self, job_id: int, sweep_id: int, from_block: int, to_block: int
    ) -> int | None:
        """The lot of the sweep that holds ``job_id``, if one was claimed."""
        for ev in self._events_with("LotClaimed", from_block, to_block, None, sweep_id):
            if 0 <= job_id - int(ev.args["lotId"]) < int(ev.args["count"]):
                return int(ev.args["lotId"])
        return None

    def lot_job_cids(self, job_id: int, from_block: int, to_block: int) -> tuple[str, str] | None:
        """(spec CID, result CID) of a sweep's job opened to a dispute, which has no JobPosted
        or ResultSubmitted of its own: from its sweep's post and its lot's submission."""
        opened = self._events_with("LotJobOpened", from_block, to_block, None, job_id)
        if not opened:
            return None
        lot_id = int(opened[-1].args["lotId"])
        lot = {e.name: e.args for e in self.iter_events(from_block, to_block, job_id=lot_id)}
        if "LotClaimed" not in lot or "LotSubmitted" not in lot:
            return None
        sweep_id = int(lot["LotClaimed"]["sweepId"])
        sweep = {e.name: e.args for e in self.iter_events(from_block, to_block, job_id=sweep_id)}
        if "SweepPosted" not in sweep:
            return None
        return (
            str(sweep["SweepPosted"]["specCids"][job_id - sweep_id]),
            str(lot["LotSubmitted"]["resultCids"][job_id - lot_id]),
        )

    def _events_with(
        self, name: str, from_block: int, to_block: int, *indexed: int | None
    ) -> list[MarketEvent]:
        """The market's ``name`` events in the range whose indexed arguments are ``indexed``
        (None: any), decoded."""
        topic = "0x" + event_abi_to_log_topic(cast(Any, self._event_abi(name))).hex()
        topics = [topic, *(None if i is None else "0x" + i.to_bytes(32, "big").hex()
                           for i in indexed)]  # fmt: skip
        params = {"address": self.contract.address, "fromBlock": from_block, "toBlock": to_block,
                  "topics": topics}  # fmt: skip
        return [ev for raw in self.rpc.logs(params) if (ev := self.decode_log(raw)) is not None]

    def _event_abi(self, name: str) -> dict[str, Any]:
        return next(e for e in self.contract.abi if e["type"] == "event" and e["name"] == name)

    def lot_job(self, job_id: int, lot_id: int, run_window: int = 0) -> Job:
        """Job ``job_id`` of lot ``lot_id`` (not opened to a dispute) as its lot has it."""
        lot = self.lot(lot_id)
        live = lot.state in (LotState.CLAIMED, LotState.SUBMITTED)
        return Job(job_id, lot.requester, _LOT_JOB_STATE[lot.state], lot.deadline, run_window,
                   lot.worker, lot.price, lot.price if live else 0)  # fmt: skip

    def _sweep_job_state(
        self, job_id: int, sweep_id: int, lot_id: int | None, posted: MarketEvent
    ) -> Job:
        if (opened := self.job(job_id)).state != JobState.NONE:
            return opened  # an ordinary job since it was opened to a dispute
        if lot_id is not None:
            return self.lot_job(job_id, lot_id, int(posted.args["runWindow"]))
        sweep = self.sweep(sweep_id)
        refunded = sweep.taken == sweep.count  # every job taken, and not in a lot: refunded
        return Job(job_id, sweep.requester, JobState.CANCELLED if refunded else JobState.OPEN,
                   sweep.claim_deadline, sweep.run_window, None, 0,
                   0 if refunded else sweep.price)  # fmt: skip
