"""The workflow runner's state file: one run of a workflow, resumable after a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hepx.errors import WorkflowError
from hepx.files import write_atomic

STATE_VERSION = 1


class RunStateFile:
    """The runner's record of one run of a workflow: every task's state and on-chain jobs,
    and the POST /jobs in flight. Written after every change, so a runner killed at any point
    and started again resumes the run without posting a job twice."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint

    def load(self) -> dict[str, Any] | None:
        """The unfinished run saved here, or None (no file, or its run has finished)."""
        try:
            saved: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise WorkflowError(f"cannot read the run's state file {self.path}: {exc}") from exc
        if saved.get("finished"):
            return None
        if saved.get("version") != STATE_VERSION or saved.get("fingerprint") != self.fingerprint:
            raise WorkflowError(
                f"{self.path} holds an unfinished run of another version of this workflow "
                f"(run {saved.get('run_id')}, jobs {saved.get('jobs_posted', '?')} posted): "
                "finish it with that file, or start anew with --fresh (its jobs go on)"
            )
        return saved

    def save(
        self,
        run_id: str,
        workflow: str,
        finished: bool,
        jobs_posted: int,
        tasks: dict[str, dict[str, Any]],
    ) -> None:
        state = {
            "version": STATE_VERSION,
            "workflow": workflow,
            "fingerprint": self.fingerprint,
            "run_id": run_id,
            "finished": finished,
            "jobs_posted": jobs_posted,
            "tasks": tasks,
        }
        try:
            write_atomic(self.path, json.dumps(state, indent=1))
        except OSError as exc:
            raise WorkflowError(f"cannot write the run's state file {self.path}: {exc}") from exc
