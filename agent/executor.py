"""Runs one job's runner as a process of its own with a wall-clock limit.

A process (not a thread) so a hung or crashing job cannot take the agent down with it, and a
timeout can kill everything the job started (its whole process group, a session of its own).
The process is forked from a warm one (multiprocessing's fork server, which imported the
runners' common modules once) rather than a fresh interpreter: `python -m agent.kinds` spends
about 0.25 s importing before a no-op job does anything, half of such a job's whole latency.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.kinds import runner_args
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


# What the fork server imports once, so that a job's process starts with it.
_PRELOAD = ["agent.kinds.__main__", "hepx.spec", "hepx.kinds"]
_FOLLOW_INTERVAL = 0.1  # seconds between reads of a running job's log for progress lines


@functools.cache
def _warm() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


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
    non-zero exit or a timeout. A process the fork server lost before it wrote a line (exit
    255, seen under load with several slots starting jobs at once) is the executor's failure,
    not the job's: it is started once more."""
    start = functools.partial(
        _execute_once, kind, spec_path, inputs_dir, outputs_dir, log_path, timeout, job_id, env
    )
    try:
        return start()
    except _ForkLost:
        log.warning("event=fork_lost job=%d starting_again", job_id)
        return start()


class _ForkLost(ExecutionError):
    """The fork server reported the job's process gone (exit 255) before it wrote anything."""


def _execute_once(
    kind: str,
    spec_path: Path,
    inputs_dir: Path,
    outputs_dir: Path,
    log_path: Path,
    timeout: float,
    job_id: int,
    env: dict[str, str] | None,
) -> Execution:
    args = runner_args(kind, str(spec_path), str(inputs_dir), str(outputs_dir))[2:]
    log_path.write_bytes(b"")
    started = time.monotonic()
    process = _warm().Process(
        target=_job_main, args=(args, str(log_path), env or {}), name=f"job-{job_id}"
    )
    process.start()
    done = threading.Event()
    relay = threading.Thread(target=_relay_progress, args=(log_path, done, job_id), daemon=True)
    relay.start()
    process.join(timeout)
    timed_out = process.exitcode is None
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the job's session: all it started
        process.join()
    done.set()
    relay.join(timeout=5)
    if timed_out:
        raise ExecutionError(f"job {job_id}: {kind} timed out after {timeout:.0f} s")
    code = int(process.exitcode)
    seconds = time.monotonic() - started
    if code != 0:
        last = _last_line(log_path)
        lost = code == 255 and not log_path.stat().st_size
        error = _ForkLost if lost else ExecutionError
        raise error(f"job {job_id}: {kind} exited with code {code}: {last}")
    return Execution(code, seconds, log_path)


def _job_main(args: list[str], log_path: str, env: dict[str, str]) -> None:
    """In the job's process: a session of its own, output to the job's log, then the runner."""
    os.setsid()
    os.environ.update(env)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    from agent.kinds.__main__ import main  # preloaded: no import cost here

    code = main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _relay_progress(log_path: Path, done: threading.Event, job_id: int) -> None:
    """Log the job's ``progress:`` lines as they appear in its log, until it ends."""
    with open(log_path, "rb") as log_file:
        pending = b""
        while True:
            finished = done.is_set()  # read once more after the job ended
            pending += log_file.read()
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip()
                if line.startswith("progress:"):
                    log.info("job=%d %s", job_id, line)
            if finished:
                return
            done.wait(_FOLLOW_INTERVAL)


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"
