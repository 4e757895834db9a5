"""Jobs an agent considered and left for later, by why: saved before the event follower's
cursor moves past the JobPosted that brought them, so an agent killed while jobs waited takes
them up again after a restart."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from hepx.files import write_atomic


class WaitReason(StrEnum):
    SLOT = "slot"  # every slot was taken: considered again when one frees
    LLM = "llm"  # an llm.* job while the LLM endpoint was down: again once it answers
    TURN = "turn"  # others rank first for it (agent/claim_order.py): again when ours comes


class Waiting:
    """The waiting jobs (job id -> spec CID) for each reason, kept in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: dict[WaitReason, dict[int, str]] = {reason: {} for reason in WaitReason}
        self._due: dict[int, float] = {}  # monotonic time a TURN job's turn comes
        self._deferred = False  # in saved_once(): put() leaves the save to its end
        self._unsaved = False
        if path.exists():
            saved = json.loads(path.read_text())
            for reason in WaitReason:
                self.jobs[reason] = {int(k): v for k, v in saved.get(reason, {}).items()}

    def put(self, reason: WaitReason, job_id: int, spec_cid: str, after: float = 0.0) -> None:
        self.jobs[reason][job_id] = spec_cid
        if after:
            self._due[job_id] = time.monotonic() + after
        if self._deferred:
            self._unsaved = True
        else:
            self.save()

    def drop(self, job_id: int) -> None:
        """Forget the job, whatever it waits for: it is no longer open (another worker took
        it), so considering it again would only ask the chain to hear so. Saved with the next
        save; a kill before that only brings it to be considered again."""
        for jobs in self.jobs.values():
            if jobs.pop(job_id, None) is not None:
                self._unsaved = True
        self._due.pop(job_id, None)

    @contextlib.contextmanager
    def saved_once(self) -> Iterator[None]:
        """Save once, at the body's end, however many jobs it puts (a range's posts: a write
        per deferred post was a file per job per agent)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False
            if self._unsaved:
                self.save()

    def due(self, reason: WaitReason) -> list[int]:
        """The jobs waiting for ``reason`` whose time has come (after a restart: all)."""
        now = time.monotonic()
        return [j for j in self.jobs[reason] if self._due.get(j, 0.0) <= now]

    def take(self, reason: WaitReason, job_id: int) -> str:
        """Its spec CID; the job stays saved until ``save`` (a crash meanwhile keeps it)."""
        self._due.pop(job_id, None)
        return self.jobs[reason].pop(job_id)

    def restore(self, reason: WaitReason, job_id: int, spec_cid: str) -> None:
        """Put back a job taken but not considered (the chain failed meanwhile)."""
        self.jobs[reason].setdefault(job_id, spec_cid)

    def save(self) -> None:
        write_atomic(self.path, json.dumps({r.value: jobs for r, jobs in self.jobs.items()}))
        self._unsaved = False
