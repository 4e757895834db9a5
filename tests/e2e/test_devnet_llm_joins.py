"""The first ``make up``: the devnet starts while llama.cpp still builds; the LLM joins later.

A build in progress is what hepx.llm_build's lock says; the test holds that lock itself (as a
running build does), so everything but the compile is the real path: the devnet starts without
a server, its worker keeps an llm.chat job waiting with a reason instead of claiming it, and
when the "build" ends the devnet starts the server on the port the policy named and the job
settles.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hepx.anvil import free_port
from hepx.devnet import start_devnet
from hepx.llm_build import BUILD_LOCK, build_running, llm_extra_missing
from hepx.llm_server import MODEL_ALIAS, llm_plan

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        llm_extra_missing() is not None, reason=f"llm extra not installed: {llm_extra_missing()}"
    ),
]


@pytest.fixture
def end_build() -> Iterator[Callable[[], None]]:
    """Hold the build lock, as a running build does; calling the result ends the "build"."""
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield lambda: fcntl.flock(lock, fcntl.LOCK_UN)


def _log_has(path: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.3)
    return False


def test_llm_job_waits_for_the_build_then_settles_when_the_server_joins(
    tmp_path: Path, end_build: Callable[[], None]
) -> None:
    assert build_running()
    assert llm_plan(None) == "now"  # installed here: the lock alone does not defer it
    devnet = start_devnet(
        tmp_path, workers=1, anvil_port=free_port(), api_port=free_port(),
        challenge_window=1, llm="when_built",
    )  # fmt: skip
    try:
        assert "joins when its llama.cpp build ends" in devnet.summary()
        assert "llm" not in devnet.processes
        params = {
            "model": MODEL_ALIAS,
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 4,
        }
        spec = {
            "apiVersion": "hepx/v1",
            "kind": "llm.chat",
            "metadata": {"name": "waits-for-llm"},
            "params": params,
            "resources": {"max_runtime": 300},
            "payment": {"max_price": "0.001 ether", "claim_window": 600, "run_window": 600},
        }
        posted = httpx.post(f"{devnet.api_url}/jobs", json=spec, timeout=60)
        assert posted.status_code == 201, posted.text
        job_id = posted.json()["job_id"]
        worker_log = devnet.logs / "worker-1.log"
        assert _log_has(worker_log, f"event=waiting job={job_id} reason=", 60), (
            worker_log.read_text()[-2000:]
        )
        assert "does not answer" in worker_log.read_text()
        time.sleep(2)
        job = httpx.get(f"{devnet.api_url}/jobs/{job_id}", timeout=10).json()
        assert job["state"] == "open"  # waiting, not claimed and failed

        end_build()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = httpx.get(f"{devnet.api_url}/jobs/{job_id}", timeout=10).json()
            if job["state"] == "settled":
                break
            assert job["state"] not in {"expired", "cancelled", "failed"}, job
            time.sleep(0.5)
        assert job["state"] == "settled", worker_log.read_text()[-2000:]
        assert "llm" in devnet.processes
        assert f"event=llm_ready job={job_id}" in worker_log.read_text()
    finally:
        devnet.stop()
