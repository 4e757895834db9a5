"""The `hepx` command as a user runs it: deploy, job schema/submit errors, devnet up and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hepx.anvil import free_port, start_anvil
from hepx.deployment import Deployment

REPO = Path(__file__).resolve().parents[3]


def hepx(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepx", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_deploy_writes_a_deployment_file_the_chain_agrees_with(tmp_path: Path) -> None:
    with start_anvil() as anvil:
        out = tmp_path / "deployment.json"
        done = hepx(
            "deploy", "--rpc", anvil.url, "--key", anvil.accounts[0].private_key, "--out", str(out)
        )
        assert done.returncode == 0, done.stderr
        deployment = Deployment.load(out)
        assert deployment.chain_id == anvil.chain_id
        assert deployment.job_market in done.stdout
        code = httpx_code(anvil.url, deployment.job_market)
        assert len(code) > 2  # a contract lives at the address written


def httpx_code(url: str, address: str) -> str:
    import httpx

    reply = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [address, "latest"]},
    )
    return str(reply.json()["result"])


def test_deploy_without_a_key_says_how_to_give_one(tmp_path: Path) -> None:
    env = {"HEPX_PRIVATE_KEY": "", "HEPX_HOME": str(tmp_path)}
    done = hepx("deploy", "--rpc", "http://127.0.0.1:9", env={k: v for k, v in env.items() if v})
    assert done.returncode == 2
    assert "--key" in done.stderr and "HEPX_PRIVATE_KEY" in done.stderr


def test_deploy_to_unreachable_rpc_names_the_url(tmp_path: Path) -> None:
    key = "0x" + "01" * 32
    done = hepx(
        "deploy", "--rpc", "http://127.0.0.1:9", "--key", key, "--out", str(tmp_path / "d.json")
    )
    assert done.returncode == 1
    assert "127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "d.json").exists()


def test_job_schema_prints_json_schema_with_kinds() -> None:
    done = hepx("job", "schema")
    schema = json.loads(done.stdout)
    assert "hep.pythia" in json.dumps(schema) and "echo" in json.dumps(schema)


def test_job_submit_rejects_an_invalid_spec_before_contacting_the_api(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "apiVersion: hepx/v1\nkind: hep.pythia\nmetadata: {name: x}\nparams: {events: -1}\n"
    )
    done = hepx("job", "submit", str(spec), "--api", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "params.events" in done.stderr or "events" in done.stderr
    assert "unreachable" not in done.stderr  # never got as far as the API


def test_job_submit_with_api_down_says_so(tmp_path: Path) -> None:
    done = hepx(
        "job", "submit", str(REPO / "examples" / "echo.yaml"), "--api", "http://127.0.0.1:9"
    )
    assert done.returncode == 3
    assert "unreachable" in done.stderr


def test_devnet_up_serves_the_stack_and_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    anvil_port, api_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hepx",
            "devnet",
            "up",
            "--workers",
            "1",
            "--anvil-port",
            str(anvil_port),
            "--api-port",
            str(api_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HEPX_HOME": str(tmp_path)},
    )
    banner = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        banner.append(line)
        if "stop: Ctrl-C" in line or not line:
            break
    text = "".join(banner)
    assert f"127.0.0.1:{anvil_port}" in text and f"127.0.0.1:{api_port}" in text, text
    children = psutil.Process(proc.pid).children(recursive=True)
    names = " ".join(" ".join(c.cmdline()) for c in children)
    assert "anvil" in names and "agent" in names and "api" in names

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    time.sleep(0.2)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_devnet_up_refuses_a_busy_port(tmp_path: Path) -> None:
    with start_anvil() as anvil:
        port = int(anvil.url.rsplit(":", 1)[1])
        done = hepx(
            "devnet",
            "up",
            "--anvil-port",
            str(port),
            "--api-port",
            str(free_port()),
            env={"HEPX_HOME": str(tmp_path)},
        )
    assert done.returncode == 2
    assert f"port {port}" in done.stderr and "in use" in done.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["store", "--help"], ["job", "--help"], ["agent", "--help"]]
)
def test_help_works(args: list[str]) -> None:
    assert hepx(*args).returncode == 0
