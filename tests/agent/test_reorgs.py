"""Reorgs on a real anvil (``anvil_reorg``): what the agent does when its claim, its result or
a job's very post is orphaned. It must never send a result for a job it does not hold, nor run
a job under the spec of another that took its number."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_helpers import SteppedAgent, client_of

from agent.policy import Policy
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import Cursor, EventFollower, JobState, MarketClient, MarketEvent
from hepx.chain import follower as follower_module
from hepx.deployment import Deployment
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

POLICY = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "max_runtime": 60})


def _echo(store: LocalStore, message: str, sleep_seconds: int = 0) -> str:
    params: dict[str, object] = {"message": message}
    if sleep_seconds:
        params["sleep_seconds"] = sleep_seconds
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": message},
            "params": params,
            "resources": {"max_runtime": 30},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 60},
        }
    )
    return store.add_bytes(canonical_json(spec))


def _agent(
    cls: type[WorkerAgent],
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    state: Path,
    account: int,
) -> WorkerAgent:
    return cls(
        client_of(anvil, deployment, account),
        store,
        POLICY,
        state,
        start_block=deployment.deploy_block,
        poll_interval=0.05,
        submit_margin=1,
    )


def _events(client: MarketClient, deployment: Deployment, job_id: int) -> list[MarketEvent]:
    return client.events(deployment.deploy_block, client.block_number(), job_id=job_id)


def _message(store: LocalStore, client: MarketClient, deployment: Deployment, job_id: int) -> str:
    submitted = [e for e in _events(client, deployment, job_id) if e.name == "ResultSubmitted"]
    result = str(submitted[-1].args["resultCid"])
    return store.read_bytes(store.resolve(result, "outputs/message.txt")).decode()


def _step_until(agent: WorkerAgent, done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout  # a bound, not a timing
    while not done():
        assert time.monotonic() < deadline, "not reached in time"
        agent.step()
        time.sleep(0.3)


def test_the_follower_goes_back_to_the_fork_and_reads_the_blocks_that_replaced_it(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    forks: list[int] = []
    seen: list[tuple[str, int, str]] = []
    follower = EventFollower(
        requester, Cursor(tmp_path / "cursor.json", deployment.deploy_block), on_reorg=forks.append
    )

    def handle(event: MarketEvent) -> None:
        if event.name == "JobPosted":
            seen.append((event.name, int(event.args["jobId"]), str(event.args["specCid"])))

    requester.post_job(_echo(store, "a"), 10**6, 60, 60)
    second, _ = requester.post_job(_echo(store, "b"), 10**6, 60, 60)
    follower.poll(handle)
    head = requester.block_number()
    anvil.reorg(1)  # the second post is orphaned
    third_cid = _echo(store, "c")
    third, _ = requester.post_job(third_cid, 10**6, 60, 60)
    assert third == second  # its number is handed out again
    follower.poll(handle)
    assert forks == [head - 1] and follower.reorgs == 1
    assert seen[-1] == ("JobPosted", second, third_cid)
    # A cursor read back from its file finds the fork too (written at the latest on stop).
    follower.cursor.flush()
    saved = Cursor(tmp_path / "cursor.json", deployment.deploy_block)
    assert saved.hashes == follower.cursor.hashes


def test_a_follower_killed_before_its_cursor_is_written_reads_those_blocks_again(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follower_module, "WRITE_EVERY", 3600.0)  # no write but the stop's
    requester = client_of(anvil, deployment, 0)
    path = tmp_path / "cursor.json"
    job_id, _ = requester.post_job(_echo(store, "a"), 10**6, 60, 60)
    handled: list[int] = []

    def handle(event: MarketEvent) -> None:
        if event.name == "JobPosted":
            handled.append(int(event.args["jobId"]))

    EventFollower(requester, Cursor(path, deployment.deploy_block)).poll(handle)
    assert handled == [job_id] and not path.exists()
    # Killed then (never stopped): the next run handles the post again.
    stopped = EventFollower(requester, Cursor(path, deployment.deploy_block))
    stopped.poll(handle)
    assert handled == [job_id, job_id]
    stopped.cursor.flush()  # as the agent does when it stops
    EventFollower(requester, Cursor(path, deployment.deploy_block)).poll(handle)
    assert handled == [job_id, job_id]
    monkeypatch.setattr(follower_module, "WRITE_EVERY", 0.0)  # written on every save
    requester.post_job(_echo(store, "b"), 10**6, 60, 60)
    written = EventFollower(requester, Cursor(path, deployment.deploy_block))
    written.poll(handle)
    assert Cursor(path, deployment.deploy_block).block == written.cursor.block


def test_a_claim_orphaned_while_the_job_runs_sends_no_result_and_the_job_goes_to_another(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, "x", sleep_seconds=3), 10**6, 60, 60)
    first = _agent(WorkerAgent, anvil, deployment, store, tmp_path / "w1", 1)
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        first.step()  # claims; the job runs in its slot
        assert requester.job(job_id).worker == first.address
        anvil.reorg(1)  # the claim's block is replaced
        assert requester.job(job_id).state == JobState.OPEN
        second = _agent(SteppedAgent, anvil, deployment, store, tmp_path / "w2", 2)
        second.step()
        first.slots.join(timeout=60)
        first.step()
    submitted = [e for e in _events(requester, deployment, job_id) if e.name == "ResultSubmitted"]
    assert [e.args["worker"] for e in submitted] == [second.address]
    assert "event=claim_orphaned" in caplog.text
    assert first.book.jobs[job_id]["phase"] == "done"


def test_a_result_orphaned_by_a_reorg_is_sent_again_and_paid(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, "y"), 10**6, 60, 60)
    agent = _agent(SteppedAgent, anvil, deployment, store, tmp_path / "w", 1)
    agent.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    anvil.reorg(1)  # the submission's block
    assert requester.job(job_id).state == JobState.CLAIMED
    deadline = time.monotonic() + 60
    while requester.job(job_id).state != JobState.SETTLED and time.monotonic() < deadline:
        agent.step()
        time.sleep(0.3)
    assert requester.job(job_id).state == JobState.SETTLED
    names = [e.name for e in _events(requester, deployment, job_id)]
    assert names.count("JobClaimed") == 1 and names.count("ResultSubmitted") == 1


def test_a_job_number_reused_after_an_orphaned_post_is_run_under_its_new_spec(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, "old", sleep_seconds=2), 10**6, 60, 60)
    agent = _agent(WorkerAgent, anvil, deployment, store, tmp_path / "w", 1)
    agent.step()  # claims "old" and runs it
    anvil.reorg(2)  # the post and the claim are orphaned
    reused, _ = requester.post_job(_echo(store, "new"), 10**6, 60, 60)
    assert reused == job_id
    deadline = time.monotonic() + 60
    while requester.job(job_id).state != JobState.SUBMITTED and time.monotonic() < deadline:
        agent.step()
        agent.slots.join(timeout=60)
    assert requester.job(job_id).state == JobState.SUBMITTED
    assert _message(store, requester, deployment, job_id) == "new"
    names = [e.name for e in _events(requester, deployment, job_id)]
    assert names.count("ResultSubmitted") == 1


def test_a_settlement_orphaned_beyond_the_followers_cursor_is_made_again(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    # Found by bench/chaos.py's full reorg row: the agent's finalize and withdrawal lay in
    # blocks its follower had not read yet, so a reorg of those blocks went unseen and the
    # job stayed submitted, its payment unclaimed.
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, "z"), 10**6, 60, 60)
    agent = _agent(SteppedAgent, anvil, deployment, store, tmp_path / "w", 1)
    _step_until(agent, lambda: requester.job(job_id).state == JobState.SETTLED)
    # The last step finalized and withdrew, in blocks after its follower's cursor.
    assert agent.follower.cursor.block < requester.block_number()
    anvil.reorg(2)  # the finalize and the withdrawal are orphaned
    assert requester.job(job_id).state == JobState.SUBMITTED
    _step_until(agent, lambda: requester.job(job_id).state == JobState.SETTLED)
    assert agent.follower.reorgs == 1
    assert requester.withdrawable(agent.address) == 0  # paid out again, nothing left behind
    settled = [e for e in _events(requester, deployment, job_id) if e.name == "JobSettled"]
    assert len(settled) == 1
