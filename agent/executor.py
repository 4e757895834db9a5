"""Runs one job's runner as a process of its own with a wall-clock limit.

A process (not a thread) so a hung or crashing job cannot take the agent down with it, and a
timeout can kill everything the job started (its whole process group, a session of its own).
The process is forked from a warm one (multiprocessing's fork server, which imported the
runners' common modules once) rather than a fresh interpreter: `python -m agent.kinds` spends
about 0.25 s importing before a no-op job does anything, half of such a job's whole latency.

A kind whose runner keeps no state in its process (``Kind.reuses_process``: echo, the LLM
kinds) runs in a kept process instead, one job after another: forking and reaping a process
cost a no-op job about 12 ms of CPU, more than all the rest of its run. The same wall-clock
limit holds (a job over it takes its process down with it; the next job gets a new one),
and a kept process is replaced after ``_JOBS_PER_KEPT_PROCESS`` jobs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.kinds import REUSES_PROCESS, runner_args
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
# Jobs a kept process runs before it is replaced: bounds what a slow leak in a runner grows to.
_JOBS_PER_KEPT_PROCESS = 1000


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
    args = runner_args(kind, str(spec_path), str(inputs_dir), str(outputs_dir))[2:]
    run = _run_kept if kind in REUSES_PROCESS else _run_forked

    def start() -> Execution:
        log_path.write_bytes(b"")
        started = time.monotonic()
        progress = _Progress(log_path, job_id)
        try:
            code = run(args, log_path, timeout, progress, env or {})
        finally:
            progress.close()  # its last lines too
        return _ended(kind, job_id, code, timeout, started, log_path)

    try:
        return start()
    except _ForkLost:
        log.warning("event=fork_lost job=%d starting_again", job_id)
        return start()


class _ForkLost(ExecutionError):
    """The fork server reported the job's process gone (exit 255) before it wrote anything."""


def _run_forked(
    args: list[str], log_path: Path, timeout: float, progress: _Progress, env: dict[str, str]
) -> int | None:
    """Run the job in a process forked for it; its exit code, None if it timed out."""
    process = _warm().Process(
        target=_job_main, args=(args, str(log_path), env), name=f"job-{progress.job_id}"
    )
    process.start()

    def ended(seconds: float) -> bool:
        process.join(seconds)
        return process.exitcode is not None

    if not _wait_relaying(ended, timeout, progress):
        _kill(process)
        return None
    return int(process.exitcode)


def start_runners(kinds: Iterable[str], count: int) -> None:
    """Start the fork server now, and ``count`` kept processes if any of ``kinds`` reuses
    its process: at the agent's start, not under its first jobs (the fork server imports
    the runners' modules, a second or more of CPU that several agents starting jobs at once
    used to spend while their jobs waited)."""
    _warm()
    multiprocessing.forkserver.ensure_running()
    if REUSES_PROCESS.intersection(kinds):
        started = [_KEPT.take() for _ in range(count)]
        for kept in started:
            _KEPT.give_back(kept)


def _run_kept(
    args: list[str], log_path: Path, timeout: float, progress: _Progress, env: dict[str, str]
) -> int | None:
    """Run the job in a kept process; its exit code, None if it timed out."""
    kept = _KEPT.take()
    code: int | None
    try:
        kept.connection.send((args, str(log_path), env))
        if _wait_relaying(kept.connection.poll, timeout, progress):
            code = int(kept.connection.recv())
        else:
            code = None  # over its limit: the process goes, with all the job started
            _kill(kept.process)
    except (EOFError, OSError):  # the process died under the job (or before it)
        kept.process.join()
        died = kept.process.exitcode
        # No output: the job never started (or died at once), started once more as a lost
        # fork is; else it failed, whatever code its process left with.
        code = 255 if not log_path.stat().st_size else (died or 1)
    if code is not None and kept.process.is_alive():
        _KEPT.give_back(kept)
    return code


def _kill(process: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the job's session: all it started
    process.join()


def _wait_relaying(ended: Callable[[float], bool], timeout: float, progress: _Progress) -> bool:
    """Wait until ``ended(seconds)`` says the job ended (True) or ``timeout`` passes (False),
    relaying its progress lines between waits of at most ``_FOLLOW_INTERVAL``."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if ended(max(0.0, min(_FOLLOW_INTERVAL, left))):
            return True
        if left <= _FOLLOW_INTERVAL:
            return False
        progress.relay()


def _ended(
    kind: str, job_id: int, code: int | None, timeout: float, started: float, log_path: Path
) -> Execution:
    """The run's Execution, or its error: timed out (``code`` None), failed, or lost."""
    if code is None:
        raise ExecutionError(f"job {job_id}: {kind} timed out after {timeout:.0f} s")
    if code != 0:
        last = _last_line(log_path)
        lost = code == 255 and not log_path.stat().st_size
        error = _ForkLost if lost else ExecutionError
        raise error(f"job {job_id}: {kind} exited with code {code}: {last}")
    return Execution(code, time.monotonic() - started, log_path)


@dataclass
class _Kept:
    """A kept process (``_serve``) and the agent's end of its pipe."""

    process: Any
    connection: Any
    jobs: int = 0


class _KeptProcesses:
    """The idle kept processes: a slot takes one (or starts one) per job and gives it back.
    As many exist as jobs of such kinds ran at once, so the agent's slots bound them."""

    def __init__(self) -> None:
        self._idle: list[_Kept] = []
        self._lock = threading.Lock()

    def take(self) -> _Kept:
        with self._lock:
            while self._idle:
                kept = self._idle.pop()
                if kept.process.is_alive():
                    kept.jobs += 1
                    return kept
        ours, theirs = _warm().Pipe()
        process = _warm().Process(target=_serve, args=(theirs,), name="kept-runner", daemon=True)
        process.start()
        theirs.close()
        return _Kept(process, ours, 1)

    def give_back(self, kept: _Kept) -> None:
        if kept.jobs >= _JOBS_PER_KEPT_PROCESS:
            kept.connection.close()  # it reads the end of its pipe and exits
            return
        with self._lock:
            self._idle.append(kept)


_KEPT = _KeptProcesses()


def _serve(connection: Any) -> None:
    """In a kept process: run the jobs that come down the pipe, each with its output in its
    log and its environment added for its run only, until the pipe closes."""
    os.setsid()
    base_env = dict(os.environ)
    while True:
        try:
            args, log_path, env = connection.recv()
        except EOFError:  # the agent closed the pipe, or is gone
            os._exit(0)
        os.environ.update(env)
        _output_to(log_path)
        code = _run_runner(args)
        _output_to(os.devnull)  # nothing of the next job's lands in this one's log
        os.environ.clear()
        os.environ.update(base_env)
        connection.send(code)


def _job_main(args: list[str], log_path: str, env: dict[str, str]) -> None:
    """In the job's process: a session of its own, output to the job's log, then the runner."""
    os.setsid()
    os.environ.update(env)
    _output_to(log_path)
    os._exit(_run_runner(args))


def _output_to(path: str) -> None:
    """This process's stdout and stderr to ``path``, appended."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _run_runner(args: list[str]) -> int:
    """``python -m agent.kinds ARGS`` in this process; its exit code, its output flushed."""
    from agent.kinds.__main__ import main  # preloaded: no import cost here

    try:
        code = main(args)
    except SystemExit as exc:  # argparse's refusal of the arguments
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


class _Progress:
    """Logs the job's ``progress:`` lines as they appear in its log. Read by the thread that
    waits for the job, between its waits: a thread of its own per job cost a no-op job a
    thread's start and join, and one more thread in the agent's contention for the GIL."""

    def __init__(self, log_path: Path, job_id: int) -> None:
        self.job_id = job_id
        self._file = open(log_path, "rb")  # noqa: SIM115 (closed by close())
        self._pending = b""

    def relay(self) -> None:
        self._pending += self._file.read()
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("progress:"):
                log.info("job=%d %s", self.job_id, line)

    def close(self) -> None:
        """Relay the lines written since the last read, and let go of the log."""
        try:
            self.relay()
        finally:
            self._file.close()


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"
