"""Runs one job's runner as a subprocess with a wall-clock limit.

A subprocess (not a thread) so a hung or crashing job cannot take the agent down with it, and
a timeout can kill everything the job started (its whole process group).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.kinds import runner_command
from hepx.errors import ExecutionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """How a job's run ended; ``container`` records the container it ran in and ``batch``
    the batch job, if any (the provenance carries both)."""

    exit_code: int
    seconds: float
    log_path: Path
    container: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None


def execute(
    kind: str,
    spec_path: Path,
    inputs_dir: Path,
    outputs_dir: Path,
    log_path: Path,
    timeout: float,
    job_id: int,
    env: dict[str, str] | None = None,
) -> Execution:
    """Run the job (``env`` adds to this process's environment); raise ExecutionError on a
    non-zero exit or a timeout."""
    cmd = runner_command(kind, spec_path, inputs_dir, outputs_dir)
    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        assert process.stderr is not None
        relay = threading.Thread(
            target=_relay_stderr, args=(process.stderr, log_file, job_id), daemon=True
        )
        relay.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            relay.join(timeout=5)
            raise ExecutionError(f"job {job_id}: {kind} timed out after {timeout:.0f} s") from None
        relay.join(timeout=5)
    seconds = time.monotonic() - started
    if code != 0:
        last = _last_line(log_path)
        raise ExecutionError(f"job {job_id}: {kind} exited with code {code}: {last}")
    return Execution(code, seconds, log_path)


def _relay_stderr(stream: object, log_file: object, job_id: int) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        log_file.write(raw)  # type: ignore[attr-defined]
        line = raw.decode(errors="replace").rstrip()
        if line.startswith("progress:"):
            log.info("job=%d %s", job_id, line)


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"
