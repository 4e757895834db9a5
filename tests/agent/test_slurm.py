"""The Slurm executor against a real one-node cluster (slurmctld, slurmd, munge).

``bash scripts/slurm.sh`` starts one and prints the SLURM_CONF to export; CI (.ci/run) does,
and sets HEPX_REQUIRE_SLURM=1, so there a missing cluster fails these tests instead of
skipping them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_helpers import SteppedAgent, client_of

from agent.host import JobBook
from agent.policy import Policy
from agent.slurm import Slurm
from hepx.anvil import Anvil
from hepx.chain import JobState
from hepx.deployment import Deployment
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore


def _cluster_missing() -> str | None:
    if not shutil.which("sbatch"):
        return 'no sbatch on PATH (run `eval "$(bash scripts/slurm.sh)"`)'
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "scontrol ping did not answer"
    if "UP" not in ping.stdout:
        return f"no Slurm controller answers ({ping.stdout.strip() or ping.stderr.strip()})"
    return None


@pytest.fixture(autouse=True)
def _cluster() -> None:
    reason = _cluster_missing()
    if reason is None:
        return
    if os.environ.get("HEPX_REQUIRE_SLURM"):
        pytest.fail(f"HEPX_REQUIRE_SLURM is set but {reason}")
    pytest.skip(reason)


def _policy(**slurm: object) -> Policy:
    return Policy.model_validate(
        {"kinds": {"echo": {"price": 1000}}, "slurm": {"poll_seconds": 0.2, **slurm}}
    )


def _echo(store: LocalStore, sleep_seconds: float = 0, max_runtime: int = 60) -> str:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": "on-slurm"},
            "params": {"message": "from the cluster", "sleep_seconds": sleep_seconds},
            "resources": {"max_runtime": max_runtime},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 120},
        }
    )
    return store.add_bytes(canonical_json(spec))


def _batch_jobs_in(folder: Path) -> dict[str, str]:
    """Every Slurm job (id -> state) whose work folder is under ``folder``."""
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=False
    ).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir", "").startswith(str(folder)):
            jobs[fields["JobId"]] = fields["JobState"]
    return jobs


def test_a_job_runs_as_a_slurm_job_and_its_result_records_which(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 120)
    policy = _policy()
    agent = SteppedAgent(
        client_of(anvil, deployment, 1), store, policy, tmp_path / "w", deployment.deploy_block
    )
    assert policy.slurm is not None
    assert (agent.slots.cpus, agent.slots.memory_mb) == Slurm(policy.slurm).capacity()
    agent.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    result = agent.book.jobs[job_id]["result_cid"]
    provenance = json.loads(store.read_bytes(store.resolve(result, "provenance.json")))
    batch_id = provenance["batch"]["id"]
    assert provenance["batch"]["system"] == "slurm"
    assert _batch_jobs_in(tmp_path) == {batch_id: "COMPLETED"}
    message = store.read_bytes(store.resolve(result, "outputs/message.txt"))
    assert message == b"from the cluster"


def test_a_job_past_its_budget_is_cancelled_on_the_cluster_and_fails(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, sleep_seconds=60, max_runtime=3), 10**6, 60, 120)
    agent = SteppedAgent(
        client_of(anvil, deployment, 1), store, _policy(), tmp_path / "w", deployment.deploy_block
    )
    agent.step()
    record = agent.book.jobs[job_id]
    assert record["phase"] == "failed" and "timed out" in record["error"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = set(_batch_jobs_in(tmp_path).values())
        if states == {"CANCELLED"}:
            break
        time.sleep(0.3)
    assert states == {"CANCELLED"}


def test_a_restarted_agent_follows_the_slurm_job_it_queued_instead_of_queueing_again(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, sleep_seconds=4), 10**6, 60, 120)
    policy = tmp_path / "policy.yaml"
    policy.write_text("kinds: {echo: {price: 1000}}\nslurm: {poll_seconds: 0.2}\n")
    state = tmp_path / "w"
    env = {
        **os.environ,
        "HEPX_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "HEPX_STORE_DIR": str(store.root),
        "HEPX_PRIVATE_KEY": anvil.accounts[1].private_key,
        "HEPX_POLL_INTERVAL": "0.05",
    }
    cmd = [sys.executable, "-m", "hepx", "agent", "run", "--state-dir", str(state)]
    cmd += ["--policy", str(policy)]

    def batch_id() -> str | None:
        return JobBook(state / "jobs.json").jobs.get(job_id, {}).get("batch_id")

    first = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90  # a bound, not a timing
    while batch_id() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    queued = batch_id()
    assert queued is not None
    os.killpg(first.pid, signal.SIGKILL)  # the Slurm job runs on without its agent
    first.wait()

    second = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while requester.job(job_id).state != JobState.SUBMITTED and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        log = second.communicate(timeout=60)[1]
    assert requester.job(job_id).state == JobState.SUBMITTED, log
    assert f"event=batch_followed job={job_id} batch={queued}" in log
    assert _batch_jobs_in(tmp_path) == {queued: "COMPLETED"}  # queued once, not twice
    assert batch_id() == queued
