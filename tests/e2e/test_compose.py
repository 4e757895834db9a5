"""compose.yaml and the Dockerfile: valid for Docker Compose, and the stack they describe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    if legacy := shutil.which("docker-compose"):
        return [legacy]
    reason = (
        "neither `docker compose` nor `docker-compose` is installed (apt install docker-compose)"
    )
    if os.environ.get("HEPX_REQUIRE_DOCKER"):
        pytest.fail(f"HEPX_REQUIRE_DOCKER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    """compose.yaml as Docker Compose resolves it (validating it on the way)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEPX_", "COMPOSE_"))}
    done = subprocess.run(
        [*_compose_command(), "-f", str(REPO / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def test_compose_has_the_whole_stack_with_health_checks(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == {"anvil", "deployer", "api", "worker", "kubo"}
    for name in ("anvil", "api", "kubo", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_starts_services_in_order_and_deploys_once(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert services["deployer"]["depends_on"]["anvil"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        deployer = services[name]["depends_on"]["deployer"]
        assert deployer["condition"] == "service_completed_successfully"
    assert "already deployed" in " ".join(services["deployer"]["command"])


def test_compose_workers_scale_with_their_own_keys_and_the_engine_socket(
    stack: dict[str, Any],
) -> None:
    worker = stack["services"]["worker"]
    # --scale worker=N needs no fixed name and no host port per replica.
    assert "container_name" not in worker and "ports" not in worker
    volumes = [str(v) for v in worker["volumes"]]
    assert any("/var/run/docker.sock:/var/run/docker.sock" in v for v in volumes)
    # Job containers bind-mount the work folder by host path: same path on both sides.
    work = next(v for v in volumes if "hepx-work" in v)
    source, target = work.split(":")[:2]
    assert source == target
    assert "mkdir /data/workers/" in " ".join(worker["command"])  # one dev key per replica


def test_compose_workers_keep_their_own_store_and_use_the_gateway(stack: dict[str, Any]) -> None:
    # The --separate-hosts layout: a worker shares no store with the API, so a worker on another
    # machine runs exactly as a replica here does.
    worker = stack["services"]["worker"]
    assert worker["environment"]["HEPX_GATEWAY_URL"] == "http://api:8000"
    assert worker["environment"]["HEPX_PUBLISH_URL"] == "http://api:8000"
    assert re.search(r"HEPX_STORE_DIR=\$+work/store", " ".join(worker["command"]))


def test_dockerfile_installs_the_agent_and_api_with_container_support() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "'.[hep,containers]'" in text
    assert 'ENTRYPOINT ["hepx"]' in text
    for package in ("hepx", "agent", "api"):
        assert f"COPY {package} ./{package}" in text


def test_compose_api_is_custodial_behind_a_token_and_published_on_loopback_only(
    stack: dict[str, Any],
) -> None:
    api = stack["services"]["api"]
    assert "--custodial" in " ".join(api["command"])
    assert [_published(p) for p in api["ports"]] == [("127.0.0.1", 8000)]
    deployer = " ".join(stack["services"]["deployer"]["command"])
    assert "hepx api token new compose" in deployer and "/data/keys/api-token" in deployer
    # The workers publish results to the API, which wants the token for storing.
    assert "HEPX_API_TOKEN=$$(cat /data/keys/api-token)" in " ".join(
        stack["services"]["worker"]["command"]
    ).replace("$$$$", "$$")


def _published(port: str | dict[str, Any]) -> tuple[str | None, int]:
    """(host address, container port) of a port as either Compose resolves it: v2 writes a
    mapping, the legacy docker-compose a string "127.0.0.1:8000:8000/tcp"."""
    if isinstance(port, dict):
        return port.get("host_ip"), int(port["target"])
    parts = port.split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else None), int(parts[-1])
