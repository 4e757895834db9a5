"""The executor: a job runs in a process of its own, forked from a warm server (or, for a
kind that reuses its process, in a kept one), with its output in its log, its progress lines
relayed to the agent's log, and a clear error on failure."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from agent.executor import execute
from hepx.errors import ExecutionError

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def _spec(tmp_path: Path, **params: object) -> Path:
    spec = {
        "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "executor"},
        "params": {"message": "hi", **params}, "resources": {"max_runtime": 30},
        "inputs": [{"name": "a.txt", "cid": CID}],
        "payment": {"max_price": 1, "claim_window": 60, "run_window": 60},
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("input a")
    (tmp_path / "out").mkdir()
    return path


def test_a_job_runs_in_its_own_process_and_its_progress_reaches_the_agent_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path)
    with caplog.at_level(logging.INFO, logger="agent.executor"):
        run = execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 30, 5)
    assert run.exit_code == 0
    assert (tmp_path / "out" / "message.txt").read_text() == "hi"
    assert (tmp_path / "out" / "a.txt").read_text() == "input a"
    assert "progress: copied a.txt (1/1)" in (tmp_path / "job.log").read_text()
    assert "job=5 progress: copied a.txt (1/1)" in caplog.text


@pytest.mark.parametrize("process", ["kept", "forked per job"])
def test_a_failing_job_reports_its_last_line_and_a_hung_one_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process: str
) -> None:
    if process == "forked per job":  # as a kind that does not reuse its process runs
        monkeypatch.setattr("agent.executor.REUSES_PROCESS", frozenset())
    spec = _spec(tmp_path, fail="on purpose")
    with pytest.raises(
        ExecutionError, match="exited with code 1: error: echo job failed on request: on purpose"
    ):
        execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 30, 6)
    spec.write_text(spec.read_text().replace("fail: on purpose", "sleep_seconds: 60"))
    with pytest.raises(ExecutionError, match="timed out after 1 s"):
        execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 1, 7)


def test_a_process_the_fork_server_lost_is_started_once_more_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Exit 255 before any output (seen under load: the fork server lost the process) is the
    executor's failure, not the job's: one more start, then the error as any job's."""
    import agent.executor as executor

    spec = _spec(tmp_path)
    real, starts = executor._run_kept, []  # echo's path; _run_forked's code is read alike

    def lost_first(*args: object) -> int | None:
        starts.append(args)
        return 255 if len(starts) == 1 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(executor, "_run_kept", lost_first)
    with caplog.at_level(logging.WARNING, logger="agent.executor"):
        run = execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 30, 8)
    assert run.exit_code == 0 and len(starts) == 2
    assert "event=fork_lost job=8" in caplog.text

    monkeypatch.setattr(executor, "_run_kept", lambda *args: 255)
    with pytest.raises(ExecutionError, match="exited with code 255: \\(no output\\)"):
        execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 30, 9)

    # Exit 255 after the job wrote a line is the job's own: no second start.
    def wrote_then_255(args: list[str], log: Path, *rest: object) -> int:
        log.write_text("error: the runner's own 255\n")
        starts.append(args)
        return 255

    monkeypatch.setattr(executor, "_run_kept", wrote_then_255)
    with pytest.raises(ExecutionError, match="code 255: error: the runner's own 255"):
        execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 30, 10)
    assert len(starts) == 3


def _kept_pids() -> list[int]:
    import agent.executor as executor

    return [kept.process.pid for kept in executor._KEPT._idle]


def test_jobs_of_a_kind_that_reuses_its_process_run_in_one_kept_process_each_in_its_own_log(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path)
    logs = [tmp_path / f"job{i}.log" for i in range(3)]
    pids = []
    for i, log in enumerate(logs):
        out = tmp_path / f"out{i}"
        out.mkdir()
        assert execute("echo", spec, tmp_path / "in", out, log, 30, 20 + i).exit_code == 0
        assert (out / "message.txt").read_text() == "hi"
        pids.append(_kept_pids())
    assert len(pids[0]) == 1 and pids[0] == pids[1] == pids[2]  # no fork per job
    for log in logs:  # each job's lines in its own log, none of another's
        assert log.read_text().count("progress: copied a.txt (1/1)") == 1


def test_a_kept_process_over_its_limit_or_killed_under_a_job_fails_that_job_only(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path)
    assert execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "a.log", 30, 30)
    (first,) = _kept_pids()
    hung = tmp_path / "hung.yaml"
    hung.write_text(spec.read_text().replace("message: hi", "message: hi\n  sleep_seconds: 60"))
    with pytest.raises(ExecutionError, match="timed out after 1 s"):
        execute("echo", hung, tmp_path / "in", tmp_path / "out", tmp_path / "b.log", 1, 31)
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # the hung job's process is gone, and with it all it started
    assert _kept_pids() == []

    # Killed under a running job: that job fails (never a success), the next one runs.
    killer = threading.Timer(1.0, lambda: os.killpg(_running_kept(), signal.SIGKILL))
    killer.start()
    with pytest.raises(ExecutionError, match="exited with code -9: progress: sleeping 60 s"):
        execute("echo", hung, tmp_path / "in", tmp_path / "out", tmp_path / "c.log", 30, 32)
    killer.join()
    out = tmp_path / "out2"
    out.mkdir()
    assert execute("echo", spec, tmp_path / "in", out, tmp_path / "d.log", 30, 33).exit_code == 0
    assert (out / "message.txt").read_text() == "hi" and _kept_pids() not in ([], [first])


def _running_kept() -> int:
    """The pid of the one kept process that is busy (not idle): the one under a job."""
    import multiprocessing

    idle = set(_kept_pids())
    (busy,) = [p.pid for p in multiprocessing.active_children()
               if p.name == "kept-runner" and p.pid not in idle]  # fmt: skip
    return int(busy)


@pytest.mark.parametrize("process", ["kept", "forked per job"])
def test_progress_lines_reach_the_agent_log_while_the_job_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    process: str,
) -> None:  # fmt: skip
    if process == "forked per job":
        monkeypatch.setattr("agent.executor.REUSES_PROCESS", frozenset())
    spec = _spec(tmp_path, sleep_seconds=60)
    with caplog.at_level(logging.INFO, logger="agent.executor"):
        with pytest.raises(ExecutionError, match="timed out after 2 s"):
            execute("echo", spec, tmp_path / "in", tmp_path / "out", tmp_path / "job.log", 2, 8)
        ended = time.time()
    (line,) = [r for r in caplog.records if "job=8 progress: sleeping 60 s" in r.getMessage()]
    assert line.created < ended - 1.0  # relayed as the job wrote it, not after it ended
