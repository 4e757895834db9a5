"""The claim order (agent/claim_order.py) on its own: every agent ranks a job's workers alike,
one is first, the rest wait their turn; stale workers drop out and waits are capped."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from agent.claim_order import MAX_WAIT_RANKS, PEER_TTL, STAGGER, ClaimOrder
from hepx.chain import MarketEvent, kind_id

WORKERS = [to_checksum_address(f"0x{i:040x}") for i in (0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6)]


def _claimed(worker: str) -> MarketEvent:
    return MarketEvent("JobClaimed", {"jobId": 1, "worker": worker}, 1, "0x" + "00" * 32, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _orders(workers: list[str], clock: Clock | None = None) -> list[ClaimOrder]:
    orders = [ClaimOrder(w, clock or Clock()) for w in workers]
    for order in orders:
        for w in workers:
            order.saw(_claimed(w))
    return orders


def test_every_job_has_one_first_worker_and_all_agree_on_the_order() -> None:
    orders = _orders(WORKERS[:3])
    firsts = []
    for job_id in range(1, 101):
        ranks = sorted(o.rank(job_id) for o in orders)
        assert ranks == [0, 1, 2]  # a permutation: each worker sees the same order
        waits = sorted(o.wait(job_id) for o in orders)
        assert waits == [0.0, STAGGER, 2 * STAGGER]
        firsts.append(next(o.me for o in orders if o.wait(job_id) == 0))
    # Rendezvous hashing spreads first places (each third is near 33 of 100).
    assert all(20 <= firsts.count(w) <= 46 for w in WORKERS[:3])


def test_a_job_with_n_replicas_has_n_first_seats() -> None:
    orders = _orders(WORKERS[:4])
    for job_id in range(1, 30):
        assert sorted(o.wait(job_id, seats=3) for o in orders) == [0.0, 0.0, 0.0, STAGGER]


def test_stale_workers_drop_out_and_waits_are_capped() -> None:
    clock = Clock()
    me = ClaimOrder(WORKERS[0], clock)
    for w in WORKERS:
        me.saw(_claimed(w))
    assert len(me.peers()) == 6
    assert max(me.wait(j) for j in range(1, 200)) == MAX_WAIT_RANKS * STAGGER
    clock.now += PEER_TTL / 2
    me.saw(_claimed(WORKERS[1]))
    clock.now += PEER_TTL / 2 + 1
    assert me.peers() == sorted([WORKERS[0], WORKERS[1]])
    clock.now += PEER_TTL + 1
    assert me.peers() == [WORKERS[0]] and me.wait(7) == 0.0  # alone: always first


def test_events_that_do_not_show_a_worker_at_work_are_ignored() -> None:
    me = ClaimOrder(WORKERS[0])
    me.saw(MarketEvent("JobPosted", {"jobId": 1, "requester": WORKERS[1]}, 1, "0x", 0))
    me.saw(MarketEvent("JobSettled", {"jobId": 1, "worker": WORKERS[2]}, 1, "0x", 0))
    assert me.peers() == [WORKERS[0]]


def _lot_event(name: str, lot_id: int, worker: str) -> MarketEvent:
    args = {"lotId": lot_id, "worker": worker, "sweepId": 1, "count": 2, "runDeadline": 0}
    return MarketEvent(name, args, 1, "0x" + "00" * 32, 0)


def test_a_sweeps_lots_have_one_first_worker_and_those_holding_a_lot_go_last() -> None:
    orders = _orders(WORKERS[:4])
    for order in orders:
        order.saw(_lot_event("LotClaimed", 7, WORKERS[0]))
        order.saw(_lot_event("LotClaimed", 9, WORKERS[1]))
    for first_job in range(10, 60):
        waits = [o.lot_wait(first_job) for o in orders]
        assert sorted(waits) == [0.0, STAGGER, 2 * STAGGER, 3 * STAGGER]  # each has its turn
        assert min(waits[2:]) == 0.0 and min(waits[:2]) == 2 * STAGGER  # busy ones last
    for order in orders:  # the lots are done: their workers are free again
        order.saw(_lot_event("LotSubmitted", 7, WORKERS[0]))
        order.saw(MarketEvent("LotExpired", {"lotId": 9, "refund": 0}, 1, "0x" + "00" * 32, 0))
    firsts = {WORKERS[[o.lot_wait(j) for o in orders].index(0.0)] for j in range(10, 60)}
    assert firsts == set(WORKERS[:4])


ECHO, PYTHIA = kind_id("echo"), kind_id("pythia8")


def _registered(worker: str, *kinds: bytes) -> MarketEvent:
    args = {"worker": worker, "stake": 0, "kinds": list(kinds)}
    return MarketEvent("WorkerRegistered", args, 1, "0x" + "00" * 32, 0)


def _kinds_updated(worker: str, supported: bool, *kinds: bytes) -> MarketEvent:
    args = {"worker": worker, "kinds": list(kinds), "supported": supported}
    return MarketEvent("KindsUpdated", args, 1, "0x" + "00" * 32, 0)


def test_a_job_is_ranked_among_the_workers_that_serve_its_kind() -> None:
    me, other_kind, unknown = WORKERS[0], WORKERS[1], WORKERS[2]
    order = ClaimOrder(me, Clock())
    order.saw(_registered(me, ECHO))
    assert not order.kinds_vary()  # alone: no ranking depends on a kind
    order.saw(_registered(other_kind, PYTHIA))
    assert order.kinds_vary()
    # A job and a lot where the worker of the other kind ranks first: before, the echo job
    # waited a STAGGER for a worker that never takes it.
    job = next(j for j in range(1, 200) if order.rank(j) == 1)
    assert order.wait(job) == STAGGER and order.lot_wait(job) == STAGGER
    assert order.wait(job, kind=ECHO) == 0.0 and order.lot_wait(job, kind=ECHO) == 0.0
    assert order.wait(job, kind=PYTHIA) == STAGGER  # its own kind: it ranks first
    # A worker whose kinds were never seen (its registration before this agent's start)
    # counts as serving every kind.
    order.saw(_claimed(unknown))
    assert unknown in order.peers(ECHO) and unknown in order.peers(PYTHIA)
    assert order.peers(ECHO) == sorted([me, unknown])


def test_kind_updates_move_a_worker_in_and_out_of_a_kinds_ranking() -> None:
    me, peer = WORKERS[0], WORKERS[1]
    order = ClaimOrder(me, Clock())
    order.saw(_registered(me, ECHO))
    order.saw(_registered(peer, ECHO))
    assert not order.kinds_vary() and order.peers(ECHO) == sorted([me, peer])
    order.saw(_kinds_updated(peer, False, ECHO))
    assert order.kinds_vary() and order.peers(ECHO) == [me]
    order.saw(_kinds_updated(peer, True, ECHO, PYTHIA))
    assert order.peers(ECHO) == sorted([me, peer]) and peer in order.peers(PYTHIA)


def test_rounds_are_spaced_by_the_workers_seen_so_the_markets_rounds_do_not_grow_with_them(
) -> None:  # fmt: skip
    clock = Clock()
    spacing = {}
    for count in (1, 2, 4, 6):
        order = _orders(WORKERS[:count], clock)[0]
        spacing[count] = round(order.round_spacing(0.05, 0.25), 9)
    assert spacing == {1: 0.05, 2: 0.05, 4: 0.1, 6: 0.15}
    # Rounds per second of the whole market: what two agents make, however many there are.
    assert {round(count / spacing[count], 6) for count in (2, 4, 6)} == {40.0}
    assert _orders(WORKERS, clock)[0].round_spacing(0.05, 0.1) == 0.1  # never past ``most``
    order = _orders(WORKERS, clock)[0]
    clock.now += PEER_TTL + 1  # the others are gone: only this agent is left
    assert order.round_spacing(0.05, 0.25) == 0.05


def test_rounds_are_spaced_by_the_workers_that_serve_the_agents_kinds() -> None:
    # 6 workers: this one and two others serve echo, three serve pythia8 only. The echo
    # agents' rounds are what matter to echo posts: spaced by 3 workers, not by 6 (before,
    # a kind few workers serve waited for the spacing of the whole market).
    order = ClaimOrder(WORKERS[0], Clock())
    for i, worker in enumerate(WORKERS):
        order.saw(_registered(worker, ECHO if i < 3 else PYTHIA))
    assert order.round_spacing(0.05, 0.25, kinds=[ECHO]) == 0.05 * 3 / 2
    assert order.round_spacing(0.05, 0.25, kinds=[ECHO, PYTHIA]) == 0.05 * 6 / 2
    assert order.round_spacing(0.05, 0.25) == 0.05 * 6 / 2  # kinds not given: every worker
    # A worker whose kinds this agent never saw counts as serving every kind.
    order.saw(_claimed(to_checksum_address(f"0x{0x77:040x}")))
    assert order.round_spacing(0.05, 0.25, kinds=[ECHO]) == 0.05 * 4 / 2
