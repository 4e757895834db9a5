"""Agents and sweeps (agent/sweeps.py) on a real anvil: a sweep the policy takes is claimed
in lots as slots allow, two agents share one without losing a claim, a lot's results go out
in one submitLot that settles the matured lots, a lot with a failed job is expired at its
run deadline, a restart carries a lot on, and a job opened to a dispute goes on alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from agent_helpers import SteppedAgent, client_of
from eth_utils.address import to_checksum_address

from agent.claim_order import ClaimOrder
from agent.host import FlowHost, JobBook
from agent.phases import Phase
from agent.policy import Policy
from agent.slots import Slots
from agent.sweeps import SweepFlow
from hepx.anvil import Anvil
from hepx.chain import JobState, LotState, MarketClient, MarketEvent, kind_id
from hepx.deployment import Deployment
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

PRICE = 10**6
POLICY = {"kinds": {"echo": {"price": 1000}}, "max_runtime": 60, "slots": 2}


def _agent(anvil: Anvil, deployment: Deployment, store: LocalStore, state: Path,
           account: int = 1, **policy: object) -> SteppedAgent:  # fmt: skip
    return SteppedAgent(client_of(anvil, deployment, account), store,
                        Policy.model_validate({**POLICY, **policy}), state,
                        start_block=deployment.deploy_block, poll_interval=0.05,
                        submit_margin=1)  # fmt: skip


def _spec_cid(store: LocalStore, message: str, runtime: int = 30, fail: str = "") -> str:
    spec = parse_spec({
        "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "t"},
        "params": {"message": message, "fail": fail}, "resources": {"max_runtime": runtime},
        "payment": {"max_price": PRICE, "claim_window": 60, "run_window": 120},
    })  # fmt: skip
    return store.add_bytes(canonical_json(spec))


def _sweep(requester: MarketClient, store: LocalStore, n: int, run_window: int = 120,
           **spec: object) -> int:  # fmt: skip
    cids = [_spec_cid(store, f"m{i}", **spec) for i in range(n)]  # type: ignore[arg-type]
    return requester.post_sweep(cids, PRICE, 60, run_window)[0]


def _warp(client: MarketClient, seconds: int) -> None:
    client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _lot_ids(agent: SteppedAgent) -> set[int]:
    return {int(rec["lot"]) for rec in agent.book.jobs.values() if "lot" in rec}


def test_an_agent_takes_a_sweep_in_lots_its_slots_can_run_and_is_paid_per_lot(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    # A run window of 100 s at 30 s per job: 2 slots x 2 runs = a lot of at most 4 jobs.
    sweep = _sweep(requester, store, 6, run_window=100)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    agent.step()
    lots = sorted(_lot_ids(agent))
    assert [requester.lot(lot).count for lot in lots] == [4, 2]
    assert lots == [sweep, sweep + 4]
    assert {requester.lot(lot).state for lot in lots} == {LotState.SUBMITTED}
    for job_id in range(sweep, sweep + 6):
        result = agent.book.jobs[job_id]
        assert result["phase"] == Phase.SUBMITTED
        assert store.has(str(result["result_cid"]))
    _warp(requester, 5)  # past the test market's challenge window
    agent.step()
    assert {requester.lot(lot).state for lot in lots} == {LotState.SETTLED}
    assert {agent.book.phase(j) for j in range(sweep, sweep + 6)} == {Phase.DONE}
    paid = [e.args for e in requester.events(deployment.deploy_block, requester.block_number())
            if e.name == "LotSettled"]  # fmt: skip
    assert sorted((p["lotId"], p["payment"]) for p in paid) == [
        (sweep, 4 * PRICE),
        (sweep + 4, 2 * PRICE),
    ]
    assert requester.withdrawable(agent.address) == 0  # withdrawn


def test_two_agents_share_a_sweep_and_neither_sends_a_claim_that_fails(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    sweep = _sweep(requester, store, 5)
    agents = [_agent(anvil, deployment, store, tmp_path / f"w{i}", account=i + 1, lot_jobs=2)
              for i in range(2)]  # fmt: skip
    for _ in range(3):
        for agent in agents:
            agent.step()
    owners = {
        j: requester.lot(int(agent.book.jobs[j]["lot"])).worker
        for agent in agents for j in agent.book.jobs
    }  # fmt: skip
    assert sorted(owners) == list(range(sweep, sweep + 5))  # every job, once
    assert {a.address for a in agents} == set(owners.values())
    assert requester.sweep(sweep).untaken == 0


def test_a_job_the_policy_declines_ends_the_lot_before_it_and_the_rest_is_left(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    cids = [_spec_cid(store, "ok"), _spec_cid(store, "long", runtime=90), _spec_cid(store, "ok2")]
    sweep = requester.post_sweep(cids, PRICE, 60, 120)[0]  # policy: at most 60 s per job
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    agent.step()
    assert requester.lot(sweep).count == 1  # the job before it, whose spec it takes
    assert requester.sweep(sweep).taken == 1  # nothing from the declined one on
    assert sorted(agent.book.jobs) == [sweep]
    assert sweep not in agent.sweeps.open  # left to others, with the reason logged
    first_declined = requester.post_sweep(cids[1:], PRICE, 60, 120)[0]
    agent.step()
    assert first_declined not in agent.sweeps.open
    assert requester.sweep(first_declined).taken == 0


def test_each_agent_reads_only_the_specs_of_the_lots_it_claims(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    """Every agent read every spec of every sweep it saw: n agents did each check n times."""
    requester = client_of(anvil, deployment, 0)
    agents = [_agent(anvil, deployment, store, tmp_path / f"w{i}", account=i + 1, lot_jobs=2)
              for i in range(3)]  # fmt: skip
    read: dict[str, set[str]] = {a.address: set() for a in agents}
    for agent in agents:
        cached = agent.specs.get
        agent.specs.get = lambda cid, a=agent, get=cached: read[a.address].add(cid) or get(cid)  # type: ignore[method-assign]
    cids = [_spec_cid(store, f"each-{i}") for i in range(8)]
    sweep = requester.post_sweep(cids, PRICE, 60, 120)[0]
    deadline = time.monotonic() + 30
    while requester.sweep(sweep).untaken and time.monotonic() < deadline:
        for agent in agents:
            agent.step()
    assert requester.sweep(sweep).untaken == 0
    for agent in agents:
        own = {cids[j - sweep] for j in agent.book.jobs}
        assert read[agent.address] == own | {cids[0]}  # the first at the post, to decide


def test_a_lot_with_a_failed_job_is_expired_at_its_run_deadline_and_the_requester_refunded(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    sweep = requester.post_sweep([_spec_cid(store, "ok"), unknown], PRICE, 60, 120)[0]
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()  # a spec it cannot read ends the lot before it
    assert requester.sweep(sweep).taken == 1
    failing = [_spec_cid(store, "ok"), _spec_cid(store, "no", fail="broken on purpose")]
    sweep = requester.post_sweep(failing, PRICE, 60, 120)[0]
    agent.step()
    assert requester.lot(sweep).state == LotState.CLAIMED  # one result missing: not sent
    assert agent.book.phase(sweep + 1) == Phase.FAILED
    credit = requester.withdrawable(requester.sender)
    _warp(requester, 125)  # past the lot's run deadline
    agent.step()
    assert requester.lot(sweep).state == LotState.EXPIRED
    assert requester.withdrawable(requester.sender) == credit + 2 * PRICE
    assert {agent.book.phase(j) for j in (sweep, sweep + 1)} == {Phase.DONE}


def test_a_restarted_agent_carries_its_lot_on_without_claiming_again(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    sweep = _sweep(requester, store, 3)
    first = _agent(anvil, deployment, store, tmp_path / "w")
    first.follower.poll(first.handle)
    first.sweeps.claim()  # claimed and run, then gone before a round sent the lot's results
    first.slots.join(timeout=60)
    assert requester.lot(sweep).state == LotState.CLAIMED
    lots = _lot_ids(first)
    second = _agent(anvil, deployment, store, tmp_path / "w")
    second.step()
    assert _lot_ids(second) == lots
    assert requester.lot(sweep).state == LotState.SUBMITTED
    assert requester.sweep(sweep).taken == 3


def test_a_lot_job_opened_to_a_dispute_is_settled_on_its_own_and_the_lot_pays_the_rest(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    sweep = _sweep(requester, store, 3)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    jobs = range(sweep, sweep + 3)
    digests = [bytes.fromhex(str(agent.book.jobs[j]["digest"])[2:]) for j in jobs]
    requester.open_lot_job(sweep, sweep + 1, digests)
    _warp(requester, 5)
    agent.step()
    agent.step()
    assert requester.lot(sweep).state == LotState.SETTLED
    assert requester.job(sweep + 1).state == JobState.SETTLED  # finalized by the agent
    assert {agent.book.phase(j) for j in range(sweep, sweep + 3)} == {Phase.DONE}


def test_a_claim_of_a_sweep_with_no_job_left_sends_nothing(
    anvil: Anvil, deployment: Deployment, store: LocalStore
) -> None:
    requester, late = client_of(anvil, deployment, 0), client_of(anvil, deployment, 2)
    sweep = _sweep(requester, store, 2)
    assert client_of(anvil, deployment, 1).claim_lot(sweep, sweep, 5)[1] == 2
    nonce = late.rpc.nonce(late.sender)
    assert late.claim_lot(sweep, sweep + 2, 5) == (0, 0, None)
    assert late.claim_lot(sweep, sweep, 5) == (0, 0, None)  # its first job is taken
    assert late.rpc.nonce(late.sender) == nonce  # no transaction, no gas


def test_agents_that_know_each_other_take_a_sweeps_last_jobs_in_turns_not_in_a_race(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    agents = [_agent(anvil, deployment, store, tmp_path / f"w{i}", account=i + 1)
              for i in range(2)]  # fmt: skip
    for agent in agents:  # each has seen the other at work
        for other in agents:
            registered = {"worker": other.address, "kinds": [kind_id("echo")]}
            agent.order.saw(MarketEvent("WorkerRegistered", registered, 0, "", 0))
    sweep = _sweep(requester, store, 2)  # fewer than either would take: the rest, at once
    first = min(agents, key=lambda a: a.order.rank(sweep))
    second = agents[1 - agents.index(first)]
    nonce = second.client.rpc.nonce(second.address)
    second.step()  # its turn is a STAGGER later: it leaves the sweep to the first
    assert second.book.jobs == {}
    assert second.client.rpc.nonce(second.address) == nonce
    first.step()
    assert requester.lot(sweep).worker == first.address
    assert requester.sweep(sweep).untaken == 0


def test_an_open_sweeps_cursor_follows_its_events_not_a_call_per_round(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requester, other = client_of(anvil, deployment, 0), client_of(anvil, deployment, 2)
    sweep = _sweep(requester, store, 6)
    agent = _agent(anvil, deployment, store, tmp_path / "w", lot_jobs=2)
    reads: list[int] = []
    real = agent.client.sweep
    monkeypatch.setattr(agent.client, "sweep", lambda s: reads.append(s) or real(s))
    agent.step()  # reads the cursor once, claims jobs 0-1
    assert other.claim_lot(sweep, sweep + 2, 2)[1] == 2  # another worker takes jobs 2-3
    for _ in range(3):
        agent.step()
    assert reads == [sweep]
    assert sorted(agent.book.jobs) == [sweep, sweep + 1, sweep + 4, sweep + 5]
    assert requester.sweep(sweep).untaken == 0


def test_a_lots_jobs_wake_the_loop_once_when_the_whole_lot_is_ready(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    sweep = _sweep(requester, store, 3)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    jobs = range(sweep, sweep + 3)
    woken: list[dict[int, str]] = []
    wake = agent.heads.wake

    def wake_and_note() -> None:  # the book as each wake saw it
        woken.append({j: agent.book.jobs[j]["phase"] for j in jobs})
        wake()

    agent.heads.wake = wake_and_note  # type: ignore[method-assign]
    agent.step()  # claims the lot of 3; its jobs run in the 2 slots
    # A lot goes out whole: its first two results would wake a round with nothing to send.
    assert woken == [dict.fromkeys(jobs, Phase.READY)]
    assert {agent.book.phase(j) for j in jobs} == {Phase.SUBMITTED}


def test_a_lots_last_two_results_booked_at_once_wake_the_loop_once(tmp_path: Path) -> None:
    # CI saw the test above wake twice: the lot's last two jobs finished together, each
    # booked its result, then each counted the whole lot ready. A slow book write widens that
    # moment to 0.2 s here.
    book = JobBook(tmp_path / "jobs.json")
    lot = {j: {"lot": 7, "lot_size": 2} for j in (7, 8)}
    book.set_many(lot, phase=Phase.CLAIMING)
    book.set_many(lot, phase=Phase.CLAIMED)
    host = cast(FlowHost, SimpleNamespace(book=book))
    flow = SweepFlow(host, Slots(2, 1024), ClaimOrder("0x" + "11" * 20), tmp_path / "sweeps.json")
    write = book.set_many

    def slow_write(jobs: dict[int, dict[str, Any]], **fields: Any) -> None:
        write(jobs, **fields)
        time.sleep(0.2)

    book.set_many = slow_write  # type: ignore[method-assign]
    wakes: list[int] = []

    def finish(job_id: int) -> None:  # as a job thread ends its run (WorkerAgent)
        if flow.book_ready(job_id, result_cid=f"r{job_id}"):
            wakes.append(job_id)

    threads = [threading.Thread(target=finish, args=(j,)) for j in lot]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wakes) == 1
    assert book.in_phase(Phase.READY) == [7, 8]
    assert {book.jobs[j]["result_cid"] for j in lot} == {"r7", "r8"}


def test_a_sweeps_lot_is_not_left_to_a_worker_that_does_not_serve_its_kind(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    sweep = _sweep(requester, store, 2)

    def registered(worker: str, kind: str) -> MarketEvent:
        return MarketEvent("WorkerRegistered", {"worker": worker, "kinds": [kind_id(kind)]}, 0,
                           "", 0)  # fmt: skip

    def ranks_ahead(worker: str) -> bool:
        order = ClaimOrder(agent.address)
        order.saw(registered(worker, "echo"))
        return order.lot_wait(sweep) > 0

    # A worker that would rank ahead at the sweep's first job, were it serving echo.
    ahead = next(w for w in (to_checksum_address(f"0x{i:040x}") for i in range(1, 64))
                 if ranks_ahead(w))  # fmt: skip
    agent.order.saw(registered(agent.address, "echo"))
    agent.order.saw(registered(ahead, "pythia8"))
    agent.step()  # not its turn behind the pythia8 worker: its turn at once
    assert requester.lot(sweep).worker == agent.address
    assert requester.sweep(sweep).untaken == 0
