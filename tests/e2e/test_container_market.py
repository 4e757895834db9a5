"""Container jobs through the market: a real anvil, a worker agent and a real Docker engine."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.container import docker_client
from agent.policy import Policy
from agent.settlement import submit_and_settle
from agent.worker import WorkerAgent
from hepx.anvil import Anvil, start_anvil
from hepx.chain import JobState, MarketClient, deploy_market
from hepx.deployment import Deployment
from hepx.errors import ExecutionError
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

pytestmark = pytest.mark.e2e

BUSYBOX = "hepx/busybox:local"
HEPX_IMAGE = "hepx:local"
POLICY = Policy.model_validate(
    {
        "kinds": {
            "container": {"price": 1000},
            "hep.pythia": {"price": 1000, "image": HEPX_IMAGE, "memory_mb": 1024},
        },
        "images": ["hepx/busybox"],
        "max_runtime": 120,
    }
)


def _need_image(ref: str) -> Any:
    """A docker client that has ``ref``; skip (fail in CI) when there is none."""
    try:
        client = docker_client(timeout=10)
    except ExecutionError as exc:
        reason = f"no Docker engine (scripts/dockerd.sh; export DOCKER_HOST): {exc}"
    else:
        if client.images.list(name=ref):
            return client
        reason = f"image {ref} is missing: run `make images`"
    if os.environ.get("HEPX_REQUIRE_DOCKER"):
        pytest.fail(f"HEPX_REQUIRE_DOCKER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    client = _need_image(BUSYBOX)
    yield client
    client.close()


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with start_anvil() as node:
        yield node


@pytest.fixture
def deployment(anvil: Anvil) -> Deployment:
    return deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=1)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _agent(anvil: Anvil, deployment: Deployment, store: LocalStore, state: Path) -> WorkerAgent:
    return WorkerAgent(
        _client(anvil, deployment, 1),
        store,
        POLICY,
        state,
        start_block=deployment.deploy_block,
        poll_interval=0.05,
        submit_margin=1,
    )


def _post(
    requester: MarketClient,
    store: LocalStore,
    kind: str,
    params: dict[str, Any],
    max_runtime: int = 60,
    run_window: int = 120,
) -> int:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": kind,
            "metadata": {"name": "c"},
            "params": params,
            "resources": {"max_runtime": max_runtime},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": run_window},
        }
    )
    job_id, _ = requester.post_job(store.add_bytes(canonical_json(spec)), 10**6, 60, run_window)
    return job_id


def _result_cid(client: MarketClient, deployment: Deployment, job_id: int) -> str:
    events = client.events(deployment.deploy_block, client.block_number(), job_id=job_id)
    return next(e.args["resultCid"] for e in events if e.name == "ResultSubmitted")


def _step(agent: WorkerAgent) -> None:
    """One loop round, then wait for the jobs it started in their slots and send their
    results, as the loop's next round does."""
    agent.step()
    agent.slots.join(timeout=300)
    submit_and_settle(agent.client, agent.book, agent.recovery)


def _step_until(agent: WorkerAgent, client: MarketClient, job_id: int, state: JobState) -> None:
    deadline = time.monotonic() + 20
    while client.job(job_id).state != state and time.monotonic() < deadline:
        time.sleep(0.3)
        _step(agent)
    assert client.job(job_id).state == state


def _our_containers(docker: Any, agent: WorkerAgent) -> list[Any]:
    label = f"org.hepx.worker={agent.address.lower()}"
    return list(docker.containers.list(all=True, filters={"label": label}))


def test_container_job_settles_and_its_result_records_image_logs_and_outputs(
    docker: Any, anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    script = "echo 'jets: 42' > /outputs/summary.txt; echo done"
    job_id = _post(
        requester, store, "container", {"image": BUSYBOX, "command": ["sh", "-c", script]}
    )
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    _step(agent)
    assert requester.job(job_id).state == JobState.SUBMITTED
    result = _result_cid(requester, deployment, job_id)
    assert store.read_bytes(store.resolve(result, "outputs/summary.txt")) == b"jets: 42\n"
    assert store.read_bytes(store.resolve(result, "stdout.txt")) == b"done\n"
    provenance = json.loads(store.read_bytes(store.resolve(result, "provenance.json")))
    container = provenance["container"]
    assert container["image_id"] == docker.images.get(BUSYBOX).id
    assert container["exit_code"] == 0 and container["network"] is False
    assert container["stdout_cid"] == store.resolve(result, "stdout.txt")
    _step_until(agent, requester, job_id, JobState.SETTLED)
    assert _our_containers(docker, agent) == []


def test_container_job_that_times_out_is_failed_and_its_escrow_refunded(
    docker: Any, anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    params = {"image": BUSYBOX, "command": ["sleep", "60"]}
    job_id = _post(requester, store, "container", params, max_runtime=2, run_window=5)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    started = time.monotonic()
    _step(agent)
    assert time.monotonic() - started < 15
    assert agent.book.jobs[job_id]["phase"] == "failed"
    assert "timed out" in agent.book.jobs[job_id]["error"]
    assert _our_containers(docker, agent) == []
    _step_until(agent, requester, job_id, JobState.EXPIRED)  # not lost: the agent expires it
    assert requester.withdrawable(requester.sender) == 10**6


def test_job_whose_image_is_not_in_the_policy_is_declined_before_claiming(
    docker: Any,
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id = _post(requester, store, "container", {"image": "alpine:3.20", "command": ["true"]})
    with caplog.at_level(logging.INFO):
        _step(_agent(anvil, deployment, store, tmp_path / "w"))
    assert requester.job(job_id).state == JobState.OPEN
    assert "image alpine:3.20 not in policy images" in caplog.text


def test_pythia_job_runs_in_the_local_physics_image_when_the_policy_says_so(
    docker: Any, anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    _need_image(HEPX_IMAGE).close()
    requester = _client(anvil, deployment, 0)
    job_id = _post(requester, store, "hep.pythia", {"seed": 7, "events": 50})
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    _step(agent)
    assert requester.job(job_id).state == JobState.SUBMITTED, agent.book.jobs.get(job_id)
    result = _result_cid(requester, deployment, job_id)
    summary = json.loads(store.read_bytes(store.resolve(result, "outputs/summary.json")))
    assert summary["sigma_mb"] > 0
    provenance = json.loads(store.read_bytes(store.resolve(result, "provenance.json")))
    assert provenance["container"]["image_id"] == docker.images.get(HEPX_IMAGE).id
    assert provenance["container"]["command"][:4] == ["python", "-m", "agent.kinds", "hep.pythia"]
