"""Workers on other hosts: the chain and API on one network namespace, each worker on its own.

Each worker has its own store and state folder and reaches data only through the API's
trustless gateway (inputs fetched and verified, results pushed as CARs). The README's dijet
workflow (shortened: fewer events, short windows) runs across the hosts; one worker host is
killed mid-job (its agent and its job process SIGKILLed, its namespace and folder deleted) and
the workflow still ends with its merged result: the lost job is posted again and run on the
other host. The only addresses contacted are loopback and those hepx/hosts.py gives the
namespaces it makes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from hepx.anvil import free_port
from hepx.devnet import start_devnet
from hepx.hosts import hosts_unavailable

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(hosts_unavailable() is not None, reason=str(hosts_unavailable())),
]


def _short_dijet(path: Path) -> Path:
    flow = yaml.safe_load((REPO / "examples" / "dijet-workflow.yaml").read_text())
    flow["defaults"] = {
        "resources": {"max_runtime": 40},
        "payment": {"max_price": "0.01 ether", "claim_window": 60, "run_window": 45},
    }
    flow["steps"][0]["params"]["events"] = 100
    for step in flow["steps"]:
        step["max_retries"] = 2
    path.write_text(yaml.safe_dump(flow))
    return path


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_dijet_workflow_runs_across_hosts_and_survives_a_dead_worker_host(
    tmp_path: Path,
) -> None:
    devnet = start_devnet(
        tmp_path, workers=2, anvil_port=free_port(), api_port=free_port(),
        challenge_window=2, separate_hosts=True,
    )  # fmt: skip
    try:
        assert devnet.network is not None
        chain = devnet.network.chain_address
        assert devnet.api_url.startswith(f"http://{chain}:")
        assert not devnet.api_url.startswith("http://127.")
        logs = [devnet.logs / f"worker-{i}.log" for i in (1, 2)]

        runner = subprocess.Popen(
            [sys.executable, "-m", "hepx", "workflow", "submit", "--wait",
             str(_short_dijet(tmp_path / "dijet.yaml"))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "HEPX_API_URL": devnet.api_url, "HEPX_HOME": str(tmp_path),
                 "HEPX_API_TOKEN": devnet.api_token or ""},
        )  # fmt: skip
        try:
            # Kill the first host seen running a job, mid-job.
            _wait_for(
                lambda: any(p.exists() and "event=running" in p.read_text() for p in logs),
                120,
                "a worker to start a job",
            )
            victim = next(i for i, p in enumerate(logs, 1) if "event=running" in p.read_text())
            survivor_log = logs[2 - victim]
            devnet.kill_host(victim)
            assert not (tmp_path / "devnet" / f"host-{victim}").exists()

            out, _ = runner.communicate(timeout=420)
        finally:
            if runner.poll() is None:
                runner.kill()
        assert runner.returncode == 0, out[-3000:]
        assert "resubmitting" in out, out[-3000:]  # the dead host's job was posted again
        merged = re.search(r"merge\[0\] settled: job \d+ result (\S+)", out)
        assert merged, out[-3000:]
        result_cid = merged.group(1)

        # The merged result is on the chain host's gateway, pushed there by the survivor.
        listing = httpx.get(f"{devnet.api_url}/ipfs/{result_cid}/outputs/", timeout=30)
        assert listing.status_code == 200, listing.text
        survivor = survivor_log.read_text()
        assert "event=published job=" in survivor and devnet.api_url in survivor
        # Its inputs (the other jobs' results) came through the gateway into its own store.
        host = 2 if victim == 1 else 1
        own_store = tmp_path / "devnet" / f"host-{host}" / "store"
        assert own_store.is_dir() and own_store != tmp_path / "store"
    finally:
        devnet.stop()
    assert devnet.network is not None
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert devnet.network.chain.netns not in left
