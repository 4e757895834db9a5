"""GET /health, the OpenAPI document and the `hepx api run` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from hepx.anvil import Anvil, free_port
from hepx.config import Settings
from hepx.deployment import Deployment


def test_health_is_ok_with_chain_market_and_store(
    api: TestClient, node: Anvil, deployment: Deployment, settings: Settings
) -> None:
    reply = api.get("/health")

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert body["chain"]["rpc_url"] == node.url
    assert body["chain"]["chain_id"] == node.chain_id
    assert body["chain"]["block"] >= deployment.deploy_block
    assert body["market"] == deployment.job_market
    assert body["store"] == str(settings.store_path)


def test_health_is_503_naming_the_rpc_url_when_chain_is_down(
    make_settings: Callable[..., Settings],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_app(make_settings(rpc_url=dead))) as api:
        reply = api.get("/health")

    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "degraded"
    assert dead in body["chain"]["error"]


def test_health_is_503_when_no_deployment_exists(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(deployment=None)
    with TestClient(create_app(settings)) as api:
        reply = api.get("/health")

    assert reply.status_code == 503
    assert reply.json()["market"] is None
    assert any(str(settings.deployment_path) in p for p in reply.json()["problems"])


def test_health_is_503_when_deployment_points_at_no_contract(
    make_settings: Callable[..., Settings], deployment: Deployment, tmp_path: Path
) -> None:
    stale = deployment.model_copy(update={"job_market": "0x" + "12" * 20})
    stale.save(tmp_path / "stale.json")
    with TestClient(create_app(make_settings(deployment=tmp_path / "stale.json"))) as api:
        reply = api.get("/health")
        job = api.get("/jobs/1")

    assert reply.status_code == 503
    assert any("no JobMarket contract" in p for p in reply.json()["problems"])
    assert job.status_code == 503 and "redeploy" in job.json()["detail"]


def test_api_picks_up_a_deployment_written_after_start(
    make_settings: Callable[..., Settings], deployment: Deployment, tmp_path: Path
) -> None:
    path = tmp_path / "later.json"
    with TestClient(create_app(make_settings(deployment=path))) as api:
        assert api.get("/health").status_code == 503
        deployment.save(path)
        assert api.get("/health").status_code == 200


def test_openapi_documents_every_route_with_a_summary(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    for route in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result", "/ipfs", "/health"):
        assert route in paths
    summaries = [op.get("summary") for ops in paths.values() for op in ops.values()]
    assert summaries and all(summaries)


def test_job_schema_route_serves_the_spec_schema(api: TestClient) -> None:
    schema = api.get("/jobs/schema").json()

    assert schema["title"] == "hepx job spec"


def test_cli_rejects_an_unknown_log_level() -> None:
    result = CliRunner().invoke(cli_app, ["run", "--log-level", "loud"])

    assert result.exit_code != 0
    assert "loud" in result.output


def test_cli_run_serves_health_over_http(
    node: Anvil, deployment_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    cmd = [
        sys.executable, "-c", "from api.cli import app; app()", "run",
        "--port", str(port), "--rpc", node.url, "--deployment", str(deployment_file),
        "--store", str(tmp_path / "store"), "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEPX_")}
    server = subprocess.Popen(cmd, env={**env, "HEPX_HOME": str(tmp_path)})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the API process exited"
                assert time.monotonic() < deadline, "the API did not answer within 20 s"
                time.sleep(0.1)
        assert reply.status_code == 200
        assert reply.json()["chain"]["rpc_url"] == node.url
    finally:
        server.terminate()
        server.wait(timeout=10)
