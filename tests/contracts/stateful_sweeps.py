"""The stateful test's sweeps (test_protocol_stateful.py): rules that post sweeps, claim, submit,
settle and expire lots, refund sweeps and open a lot's job to a dispute, each by any actor
(so many are refused), and the books they keep: a sweep holds its untaken jobs' escrow, a lot
its unopened jobs' until it ends, a final lot never changes, and every lot and sweep can be
ended by time and a keeper alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from market_helpers import CID, Market

from hepx.chain.enums import LotState

# The market's calls on sweeps: their Payment events are a sweep's or a lot's (their jobId is
# its id, which is also its first job's), not a job's.
SWEEP_CALLS = frozenset(
    {"postSweep", "claimLot", "submitLot", "settleLots", "expireLot", "refundSweep"}
)
LOT_FINAL = {LotState.SETTLED, LotState.EXPIRED}
PRICES = [10**14, 10**15]


class SweepRules:
    """Mixed into the ProtocolMachine, whose ``send``, ``actors``, ``requesters``, ``staked``
    and ``reader`` it uses."""

    market: Market
    actors: list[str]
    requesters: list[str]
    staked: list[str]
    reader: Any
    jobs: dict[int, tuple[Any, ...]]
    posted: dict[int, int]
    job_token: dict[int, str]

    if TYPE_CHECKING:  # the machine's own

        def send(self, sender: str, fn: str, *args: Any, value: int = 0) -> Any: ...

    def init_sweeps(self) -> None:
        self.sweeps: dict[int, tuple[Any, ...]] = {}  # sweep id -> getSweep
        self.lots: dict[int, tuple[Any, ...]] = {}  # lot id -> getLot
        self.lot_digests: dict[int, list[bytes]] = {}

    def sweep_events(self, name: str, args: dict[str, Any], touched: set[int]) -> None:
        """Note the sweeps and lots an event of a mined step touched (ids into ``touched``
        as negative sweep ids and positive lot ids, kept apart from jobs)."""
        if name == "SweepPosted":
            self.sweeps.setdefault(int(args["sweepId"]), ())
        if "sweepId" in args:
            touched.add(-int(args["sweepId"]))
        if "lotId" in args and name != "LotSettleSkipped":
            lot = int(args["lotId"])
            if name == "LotClaimed":
                self.lots.setdefault(lot, ())
            if name == "LotSubmitted":
                self.lot_digests[lot] = list(args["digests"])
            if lot in self.lots:
                touched.add(lot)
        if name == "LotJobOpened":  # now an ordinary job, escrowed at its lot's price
            job_id = int(args["jobId"])
            self.jobs.setdefault(job_id, ())
            self.posted[job_id] = int(self.lots[int(args["lotId"])][6])
            self.job_token[job_id] = "0x" + "00" * 20

    def sweep_reads(self, touched: set[int]) -> list[tuple[str, tuple[Any, ...]]]:
        sweeps = sorted(-i for i in touched if i < 0)
        lots = sorted(i for i in touched if i > 0)
        return [("getSweep", (s,)) for s in sweeps] + [("getLot", (lot,)) for lot in lots]

    def sweep_refresh(self, touched: set[int], results: Any) -> None:
        for sweep in sorted(-i for i in touched if i < 0):
            self.sweeps[sweep] = tuple(
                to_checksum_address(v) if isinstance(v, str) else v for v in next(results)
            )
        for lot in sorted(i for i in touched if i > 0):
            read = tuple(to_checksum_address(v) if isinstance(v, str) else v for v in next(results))
            old = self.lots.get(lot)
            if old and LotState(old[4]) in LOT_FINAL:
                assert read == old, f"final lot {lot} changed: {old} -> {read}"
            self.lots[lot] = read

    def every_sweep(self) -> set[int]:
        return {-s for s in self.sweeps} | set(self.lots)

    def sweep_escrow(self) -> int:
        """What the market holds for sweeps: each sweep's untaken jobs, each live lot's jobs
        not opened to a dispute (those are jobs of their own now)."""
        held = sum((s[1] - s[2]) * s[3] for s in self.sweeps.values() if s)
        live = (LotState.CLAIMED, LotState.SUBMITTED)
        return held + sum(
            (lot[2] - lot[3]) * lot[6] for lot in self.lots.values() if lot and lot[4] in live
        )

    def end_sweeps(self, keeper: str) -> None:
        """Time has passed: a keeper ends every lot and refunds every sweep."""
        for sweep, s in sorted(self.sweeps.items()):
            if s and s[1] > s[2]:
                self.send(keeper, "refundSweep", sweep)
        for lot, record in sorted(self.lots.items()):
            state = LotState(record[4])
            if state == LotState.CLAIMED:
                self.send(keeper, "expireLot", lot)
            elif state == LotState.SUBMITTED:
                self.send(keeper, "settleLots", [lot])

    def stuck_sweeps(self) -> dict[str, Any]:
        stuck: dict[str, Any] = {
            f"lot {lot}": LotState(r[4]).name
            for lot, r in self.lots.items()
            if LotState(r[4]) not in LOT_FINAL
        }
        stuck.update({f"sweep {s}": r[1] - r[2] for s, r in self.sweeps.items() if r[1] > r[2]})
        return stuck

    # ------------------------------------------------------------ rules

    def _sweep(self, pick: int) -> int:
        return sorted(self.sweeps)[pick % len(self.sweeps)] if self.sweeps else 1 + pick

    def _lot(self, pick: int, state: LotState | None) -> int:
        lots = sorted(i for i, r in self.lots.items() if state is None or LotState(r[4]) == state)
        return lots[pick % len(lots)] if lots else 1 + pick

    @precondition(lambda self: len(self.sweeps) < 4)
    @rule(who=st.integers(0, 1), count=st.integers(1, 4), price=st.sampled_from(PRICES),
          short=st.booleans())  # fmt: skip
    def post_sweep(self, who: int, count: int, price: int, short: bool) -> None:
        value = count * price - (1 if short else 0)  # a short escrow is refused
        self.send(self.requesters[who], "postSweep", [f"{CID}{i}" for i in range(count)], price,
                  600, 1800, value=value)  # fmt: skip

    @precondition(lambda self: len(self.lots) < 6)
    @rule(who=st.integers(0, 1), worker=st.integers(0, 3), count=st.integers(1, 3),
          price=st.sampled_from(PRICES), opened=st.sampled_from([-2, -1, 0, 1, 2]))  # fmt: skip
    def swept_lot(self, who: int, worker: int, count: int, price: int, opened: int) -> None:
        """A sweep posted, taken whole as one lot by a staked worker and submitted (unless
        ``opened`` is -2: the lot is left to run out), and (if ``opened`` names one of its
        jobs) that job opened to a dispute: random single rules rarely line these up inside
        one run window."""
        receipt = self.send(self.requesters[who], "postSweep", [CID] * count, price, 600, 1800,
                            value=count * price)  # fmt: skip
        sweep = max(self.sweeps) if receipt["status"] == 1 else 0
        self.send(self.staked[worker], "claimLot", sweep, sweep, count)
        if opened == -2:
            return
        digests = [bytes([i + 1]) * 32 for i in range(count)]
        self.send(self.staked[worker], "submitLot", sweep, ["bafyresult"] * count, digests, [])
        if 0 <= opened < count:
            self.send(self.requesters[who], "openLotJob", sweep, sweep + opened, digests)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 20), most=st.integers(1, 3),
          aim=st.booleans(), off=st.sampled_from([0, 0, 0, -1, 1]))  # fmt: skip
    def claim_lot(self, who: int, pick: int, most: int, aim: bool, off: int) -> None:
        """At the sweep's next job, or (``off``) at a job that is not its next: nothing."""
        worker = self.staked[who % 4] if aim else self.actors[who]
        sweep = self._sweep(pick)
        taken = self.sweeps[sweep][2] if self.sweeps.get(sweep) else 0
        receipt = self.send(worker, "claimLot", sweep, sweep + taken + off, most)
        if off:
            assert "LotClaimed" not in [name for name, _ in self.market_events(receipt)]

    @rule(who=st.integers(0, 6), pick=st.integers(0, 20), aim=st.booleans(),
          settle=st.lists(st.integers(0, 20), max_size=2), short=st.booleans())  # fmt: skip
    def submit_lot(self, who: int, pick: int, aim: bool, settle: list[int], short: bool) -> None:
        """The lot's worker (aimed) or anyone submits, one result per job or one short."""
        lot = self._lot(pick, LotState.CLAIMED if aim else None)
        record = self.lots.get(lot)
        worker = record[0] if aim and record else self.actors[who]
        n = max(1, (record[2] if record else 1) - (1 if short else 0))
        digests = [bytes([i + 1 + who]) * 32 for i in range(n)]
        due = [self._lot(p, LotState.SUBMITTED) for p in settle]
        self.send(worker, "submitLot", lot, ["bafyresult"] * n, digests, due)

    @rule(who=st.integers(0, 6), picks=st.lists(st.integers(0, 20), min_size=1, max_size=2))
    def settle_lots(self, who: int, picks: list[int]) -> None:
        self.send(self.actors[who], "settleLots", [self._lot(p, LotState.SUBMITTED) for p in picks])

    @rule(who=st.integers(0, 6), pick=st.integers(0, 20))
    def expire_lot(self, who: int, pick: int) -> None:
        self.send(self.actors[who], "expireLot", self._lot(pick, LotState.CLAIMED))

    @rule(who=st.integers(0, 6), pick=st.integers(0, 20))
    def refund_sweep(self, who: int, pick: int) -> None:
        self.send(self.actors[who], "refundSweep", self._sweep(pick))

    @rule(who=st.integers(0, 6), pick=st.integers(0, 20), index=st.integers(0, 3),
          forged=st.booleans())  # fmt: skip
    def open_lot_job(self, who: int, pick: int, index: int, forged: bool) -> None:
        """Anyone opens a job of a submitted lot, with its digests or forged ones (refused)."""
        lot = self._lot(pick, LotState.SUBMITTED)
        digests = list(self.lot_digests.get(lot, [b"\x09" * 32]))
        if forged:
            digests[0] = b"\x0f" * 32
        receipt = self.send(self.actors[who], "openLotJob", lot, lot + index % len(digests),
                            digests)  # fmt: skip
        if forged:
            assert receipt["status"] == 0, "a lot's job was opened with forged digests"
