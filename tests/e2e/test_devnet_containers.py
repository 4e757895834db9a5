"""`hepx devnet up --workers-in-containers`: agents in the local image run host-side jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hepx.anvil import free_port
from hepx.devnet import Devnet, start_devnet
from hepx.devnet_containers import DEFAULT_WORKER_IMAGE, worker_container_command
from hepx.errors import ConfigError

pytestmark = pytest.mark.e2e

POLICY = {
    "kinds": {"echo": {"price": 1000}, "container": {"price": 1000}},
    "images": ["hepx/busybox"],
}


def _image_or_skip() -> None:
    try:
        from agent.container import docker_client  # noqa: PLC0415

        client = docker_client(timeout=10)
        present = bool(client.images.list(name=DEFAULT_WORKER_IMAGE))
        client.close()
        reason = f"image {DEFAULT_WORKER_IMAGE} is missing: run `make images`"
    except Exception as exc:  # no engine or no SDK
        present, reason = False, f"no Docker engine: {exc}"
    if not present:
        if os.environ.get("HEPX_REQUIRE_DOCKER"):
            pytest.fail(f"HEPX_REQUIRE_DOCKER is set but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    _image_or_skip()
    home = tmp_path_factory.mktemp("hepx-home")
    policy = home / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    net = start_devnet(
        home,
        workers=1,
        anvil_port=free_port(),
        api_port=free_port(),
        challenge_window=1,
        policy=policy,
        worker_image=DEFAULT_WORKER_IMAGE,
    )
    yield net
    net.stop()


def _submit_and_settle(
    devnet: Devnet, spec: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    posted = httpx.post(f"{devnet.api_url}/jobs", json=spec, timeout=60)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{devnet.api_url}/jobs/{job_id}", timeout=10).json()
        if job["state"] == "settled":
            return job
        assert devnet.dead_child() is None, devnet.dead_child()
        time.sleep(0.5)
    log = (devnet.logs / "worker-1.log").read_text()[-3000:]
    raise AssertionError(
        f"job {job_id} is {job.get('state')} after {timeout} s; worker log:\n{log}"
    )


def _spec(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": kind,
        "metadata": {"name": "in-container"},
        "params": params,
        "resources": {"max_runtime": 60},
        "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 120},
    }


def test_containerised_worker_settles_jobs_and_starts_job_containers_on_the_host_engine(
    devnet: Devnet,
) -> None:
    echo = _submit_and_settle(devnet, _spec("echo", {"message": "from a container"}))
    assert echo["worker"].lower() == devnet.workers[0].address.lower()
    text = httpx.get(f"{devnet.api_url}/ipfs/{echo['result_cid']}/outputs/message.txt").text
    assert text == "from a container"
    # A container job: the agent in its container starts a sibling container for the job.
    job = _submit_and_settle(
        devnet, _spec("container", {"image": "hepx/busybox:local", "command": ["hostname"]})
    )
    record = httpx.get(f"{devnet.api_url}/ipfs/{job['result_cid']}/container.json").json()
    assert record["exit_code"] == 0
    provenance = httpx.get(f"{devnet.api_url}/ipfs/{job['result_cid']}/provenance.json").json()
    assert provenance["worker"].lower() == devnet.workers[0].address.lower()
    log = (devnet.logs / "worker-1.log").read_text()
    assert "event=agent_started" in log


def test_worker_container_command_shares_home_socket_and_host_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = tmp_path / "docker.sock"
    socket.touch()
    policy = tmp_path / "p.yaml"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    cmd = worker_container_command(
        "docker", "w1", "hepx:local", tmp_path, ["agent", "run", "--policy", str(policy)],
        {"HEPX_PRIVATE_KEY": "0xsecret"}, policy,
    )  # fmt: skip
    text = " ".join(cmd)
    assert "--network host" in text
    assert f"-v {tmp_path}:{tmp_path}" in text
    assert f"-v {socket}:/var/run/docker.sock" in text
    assert "0xsecret" not in text and "-e HEPX_PRIVATE_KEY" in text  # key passed by name only
    assert cmd[-4:] == ["agent", "run", "--policy", str(policy.resolve())]


def test_missing_worker_image_is_a_clear_error(tmp_path: Path) -> None:
    _image_or_skip()
    with pytest.raises(ConfigError, match="make images"):
        start_devnet(
            tmp_path,
            workers=1,
            anvil_port=free_port(),
            api_port=free_port(),
            worker_image="hepx/not-built:never",
        )
