"""``make up``'s own devnet (``hepx devnet up``, the local LLM on by default): its workers take
every kind the registry has, so the README's dijet workflow is claimed.

Bug on main: with the LLM on, the devnet wrote its workers a policy from a hand-kept list of
"the default kinds" without hep.generate, hep.analyze, hep.merge, container and key4hep, so
the workflow's generate jobs sat unclaimed ("kind hep.generate not in policy").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agent.policy import Policy
from hepx.anvil import free_port
from hepx.kinds import REGISTRY
from hepx.llm_build import llm_extra_missing
from hepx.workflow import expand, load_workflow

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.mark.skipif(
    llm_extra_missing() is not None, reason=f"devnet without its LLM: {llm_extra_missing()}"
)
def test_make_up_devnet_with_llm_claims_the_readme_workflows_generate_job(tmp_path: Path) -> None:
    anvil_port, api_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hepx", "devnet", "up", "--workers", "1",
         "--anvil-port", str(anvil_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "HEPX_HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        banner: list[str] = []
        deadline = time.monotonic() + 180  # the LLM server warms up first
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            banner.append(line)
            if "stop: Ctrl-C" in line or not line:
                break
        assert f"127.0.0.1:{api_port}" in "".join(banner), "".join(banner)

        policy = Policy.load(tmp_path / "devnet" / "policy.yaml")
        assert policy.llm is not None  # the LLM is on: this is the policy it writes
        assert set(policy.kinds) == set(REGISTRY)

        generate = expand(load_workflow(REPO / "examples" / "dijet-workflow.yaml"))[0]
        assert generate.spec["kind"] == "hep.generate"
        api = f"http://127.0.0.1:{api_port}"
        posted = httpx.post(f"{api}/jobs", json=generate.spec, timeout=60)
        assert posted.status_code == 201, posted.text
        job_id = posted.json()["job_id"]
        state = "open"
        until = time.monotonic() + 90
        while state == "open" and time.monotonic() < until:
            time.sleep(0.5)
            state = httpx.get(f"{api}/jobs/{job_id}", timeout=30).json()["state"]
        worker_log = (tmp_path / "devnet" / "logs" / "worker-1.log").read_text()
        assert state != "open", worker_log[-2000:]
        assert "not in policy" not in worker_log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
