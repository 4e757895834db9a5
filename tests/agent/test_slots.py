"""Job slots: one agent runs several jobs at once, claims only what it can start, and its loop
goes on while they run. The accounting alone, then the agent on a real anvil."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from agent.policy import Policy
from agent.slots import Need, Slots
from agent.waiting import WaitReason
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient
from hepx.deployment import Deployment
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

# ---------------------------------------------------------------- accounting


def test_reserve_takes_capacity_and_release_gives_it_back() -> None:
    slots = Slots(cpus=4, memory_mb=1000)
    assert slots.reserve(1, Need(3, 600))
    assert not slots.reserve(2, Need(2, 100))  # 1 CPU left
    assert not slots.reserve(3, Need(1, 500))  # 400 MB left
    assert slots.reserve(4, Need(1, 400))
    assert slots.free == Need(0, 0)
    slots.release(1)
    assert slots.free == Need(3, 600)
    assert slots.reserve(1, Need(1)) and slots.reserve(1, Need(1))  # twice: one reservation
    assert slots.free == Need(2, 600)


def test_a_job_larger_than_the_agent_never_fits() -> None:
    slots = Slots(cpus=2, memory_mb=1000)
    assert slots.never_fits(Need(2, 1000)) is None
    assert "needs 3 CPUs, this agent has 2" in str(slots.never_fits(Need(3)))
    assert "needs 2000 MB" in str(slots.never_fits(Need(1, 2000)))


def test_held_jobs_queue_for_capacity_and_start_in_order() -> None:
    slots = Slots(cpus=2, memory_mb=1000)
    gates = {job: threading.Event() for job in (1, 2, 3)}
    started: list[int] = []

    def work(job: int) -> None:
        started.append(job)
        gates[job].wait(10)

    slots.run(1, Need(2), lambda: work(1))
    slots.run(2, Need(1), lambda: work(2))  # held: waits, no claim needed
    slots.run(3, Need(1), lambda: work(3))
    slots.run(2, Need(1), lambda: work(2))  # already queued: not twice
    assert slots.holds(2) and slots.holds(3)
    assert not slots.reserve(9, Need(1))  # held jobs come before new claims
    gates[1].set()
    assert _until(lambda: started == [1, 2, 3])
    assert slots.running == 2
    gates[2].set()
    gates[3].set()
    assert slots.join(timeout=10) == 0
    assert slots.free == Need(2, 1000)


def test_full_while_no_job_could_start() -> None:
    slots = Slots(cpus=2, memory_mb=1000)
    assert not slots.full
    assert slots.reserve(1, Need(1, 1000))  # all the memory: a job needing none still fits
    assert not slots.full
    gate = threading.Event()
    slots.run(2, Need(2), gate.wait)  # held, waits for CPUs: jobs we hold come first
    assert slots.full and slots.free == Need(1, 0)
    slots.release(1)  # job 2 starts and takes both CPUs
    assert _until(lambda: slots.running == 1) and slots.full
    gate.set()
    assert slots.join(timeout=10) == 0
    assert not slots.full


def test_a_job_that_raises_frees_its_slot(caplog: pytest.LogCaptureFixture) -> None:
    slots = Slots(cpus=1, memory_mb=10)

    def boom() -> None:
        raise RuntimeError("executor blew up")

    with caplog.at_level(logging.ERROR):
        slots.run(7, Need(1), boom)
        assert slots.join(timeout=10) == 0
    assert "event=job_thread_error job=7" in caplog.text
    assert slots.free == Need(1, 10) and not slots.holds(7)


def _until(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- the agent on a real chain


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _echo(store: LocalStore, sleep: float, cpus: int = 1) -> str:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": "slots"},
            "params": {"message": "hi", "sleep_seconds": sleep},
            "resources": {"max_runtime": 60, "cpus": cpus},
            "payment": {"max_price": 10**6, "claim_window": 120, "run_window": 120},
        }
    )
    return store.add_bytes(canonical_json(spec))


@pytest.fixture
def requester(anvil: Anvil, deployment: Deployment) -> MarketClient:
    return _client(anvil, deployment, 0)


@pytest.fixture
def run_agent(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> Iterator[object]:
    """Start a real agent loop (WorkerAgent.run in a thread) with ``slots`` CPUs."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(slots: int, account: int = 1, **policy_fields: object) -> WorkerAgent:
        policy = Policy.model_validate(
            {"kinds": {"echo": {"price": 1000}}, "max_runtime": 60, "slots": slots,
             **policy_fields}
        )  # fmt: skip
        agent = WorkerAgent(
            _client(anvil, deployment, account),
            store,
            policy,
            tmp_path / f"w{account}",
            start_block=deployment.deploy_block,
            poll_interval=0.05,
            submit_margin=1,
        )
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))
        return agent

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=60)


def _wait_state(client: MarketClient, job_ids: list[int], state: JobState) -> bool:
    return _until(lambda: all(client.job(j).state == state for j in job_ids), timeout=90)


def test_one_agent_runs_as_many_jobs_at_once_as_it_has_slots(
    requester: MarketClient, store: LocalStore, run_agent: object, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _echo(store, sleep=3)
    job_ids = [requester.post_job(spec, 10**6, 120, 120)[0] for _ in range(4)]
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        agent = run_agent(4)  # type: ignore[operator]
        # All four are running before any is done: they overlap, not queue.
        assert _until(lambda: agent.slots.running == 4, timeout=60), caplog.text
        assert all(requester.job(j).state == JobState.CLAIMED for j in job_ids)
        assert _wait_state(requester, job_ids, JobState.SETTLED), caplog.text
    running = [r.getMessage() for r in caplog.records if "event=running" in r.getMessage()]
    first_submit = next(i for i, r in enumerate(caplog.records) if "event=submitted" in r.message)
    assert len(running) == 4
    assert sum("event=running" in r.message for r in caplog.records[:first_submit]) == 4


def test_a_full_agent_leaves_jobs_open_and_takes_them_when_a_slot_frees(
    requester: MarketClient, store: LocalStore, run_agent: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        agent = run_agent(1)  # type: ignore[operator]
        first, _ = requester.post_job(_echo(store, sleep=3), 10**6, 120, 120)
        assert _until(lambda: agent.slots.running == 1, timeout=60)
        second, _ = requester.post_job(_echo(store, sleep=0), 10**6, 120, 120)
        assert _until(lambda: f"event=waiting job={second} reason='all slots busy'" in caplog.text)
        # Busy: no claim (another worker may take it), so no lost race and no gas spent.
        assert requester.job(second).state == JobState.OPEN
        assert _wait_state(requester, [first, second], JobState.SETTLED), caplog.text
    assert "claim_refused" not in caplog.text


def test_jobs_waiting_for_a_slot_are_taken_up_again_by_an_agent_restarted_from_its_state(
    anvil: Anvil, deployment: Deployment, requester: MarketClient, store: LocalStore, tmp_path: Path
) -> None:
    # Found by bench/chaos.py: a killed agent forgot the jobs it had left waiting while every
    # slot was busy; its cursor had moved past their JobPosted, so nobody took them again.
    policy = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "slots": 1})

    def agent() -> WorkerAgent:
        return WorkerAgent(
            _client(anvil, deployment, 1), store, policy, tmp_path / "w",
            start_block=deployment.deploy_block, poll_interval=0.05, submit_margin=1,
        )  # fmt: skip

    first = agent()
    busy, _ = requester.post_job(_echo(store, sleep=3), 10**6, 120, 120)
    waiting, _ = requester.post_job(_echo(store, sleep=0), 10**6, 120, 120)
    first.step()  # claims the first, leaves the second waiting, moves its cursor past both
    assert list(first.waiting.jobs[WaitReason.SLOT]) == [waiting]
    first.slots.join()  # (the "killed" agent's job ends; a restart would run it again)
    first.follower.cursor.flush()  # killed once its cursor was written
    restarted = agent()
    assert list(restarted.waiting.jobs[WaitReason.SLOT]) == [waiting]
    restarted.step()
    restarted.slots.join()
    restarted.step()
    assert _wait_state(requester, [busy, waiting], JobState.SUBMITTED)


def test_a_job_needing_more_cpus_than_the_agent_has_is_declined_with_the_reason(
    requester: MarketClient, store: LocalStore, run_agent: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        run_agent(2)  # type: ignore[operator]
        job_id, _ = requester.post_job(_echo(store, sleep=0, cpus=3), 10**6, 120, 120)
        assert _until(lambda: "needs 3 CPUs, this agent has 2" in caplog.text, timeout=60)
    assert requester.job(job_id).state == JobState.OPEN


def test_agents_take_turns_so_no_claim_race_is_lost_on_chain(
    requester: MarketClient, store: LocalStore, run_agent: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Three agents that know each other (they registered) rank each job alike: one claims at
    once, the others only if it is still open on their turn, when their simulation (free) sees
    the claim. Before the ranking every agent claimed every job and claims that lost the race
    after their simulation were mined as reverts, gas lost."""
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        agents = [run_agent(4, account, stake=1) for account in (1, 2, 3)]  # type: ignore[operator]
        assert _until(lambda: all(len(a.order.peers()) == 3 for a in agents), timeout=60)
        first_block = requester.block_number() + 1
        spec = _echo(store, sleep=0)
        job_ids = [requester.post_job(spec, 10**6, 120, 120)[0] for _ in range(12)]
        assert _wait_state(requester, job_ids, JobState.SETTLED), caplog.text
    workers = {requester.job(j).worker for j in job_ids}
    assert len(workers) == 3  # the ranking spreads the jobs
    assert caplog.text.count("event=claimed") == 12
    agents_addresses = {a.address.lower() for a in agents}
    reverted = [
        r["transactionHash"]
        for number in range(first_block, requester.block_number() + 1)
        for r in requester.rpc.request("eth_getBlockReceipts", [hex(number)]) or []
        if r["from"].lower() in agents_addresses and int(r["status"], 16) == 0
    ]
    assert reverted == [], caplog.text


def test_a_full_agent_follows_the_chain_at_its_poll_interval_not_at_every_block(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    # Its rounds could take no job: eight such agents on one machine spent on them what the
    # four that had room needed for their jobs.
    policy = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "slots": 1})
    agent = WorkerAgent(_client(anvil, deployment, 1), store, policy, tmp_path / "w",
                        start_block=deployment.deploy_block, poll_interval=0.5,
                        submit_margin=1)  # fmt: skip
    rounds: list[float] = []
    step = agent.step

    def counted() -> None:
        rounds.append(time.monotonic())
        step()

    agent.step = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()

    def rounds_while_blocks_come(blocks: int = 40) -> tuple[int, float]:
        before, began = len(rounds), time.monotonic()
        for _ in range(blocks):
            requests.post(anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine",
                                           "params": []}, timeout=10)  # fmt: skip
            time.sleep(0.05)
        return len(rounds) - before, time.monotonic() - began

    try:
        assert agent.heads.subscribed.wait(10), "no subscription to anvil's newHeads"
        free, _ = rounds_while_blocks_come()
        assert agent.slots.reserve(10**9, Need(1))  # its one slot taken: nothing could start
        full, seconds = rounds_while_blocks_come()
        agent.slots.release(10**9)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert full <= seconds / agent.poll_interval + 2, (free, full, seconds)
    assert free > 2 * full, (free, full, seconds)  # with room, a round per block or two
