"""Jobs an agent considered and left for later, by why: written whenever the event follower's
cursor is, before it (``Cursor.before_write``), so the cursor on disk never passes the
JobPosted of a job the list on disk lacks, and an agent killed while jobs waited takes them up
again after a restart (those it put after the last write come back with the blocks read
again). Written each round, the list cost every agent ranked behind a file per post.

A first-come job waits with the job and its terms as the agent last knew them (in memory
only): nothing but an event that closes it (``drop``) changes such a job, so its turn or a
free slot takes it up without asking the chain again. Standing in for the ranks ahead, eight
agents on a burst of 200 jobs asked for ~600 jobs and their terms; a claim that lost a race
meanwhile is refused by its simulation, for free. After a reorg (``forget_known``) and a
restart they are asked again."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from hepx.chain import Job, JobTerms
from hepx.files import write_atomic

# A job and its terms as last read (from its post's events or the chain).
Known = tuple[Job, JobTerms]


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
        self._unsaved = False
        # Taken out to be considered again, still written as waiting until that is done.
        self._considered: dict[int, tuple[WaitReason, str]] = {}
        self._known: dict[int, Known] = {}
        # The cursor is written from the threads that mine our transactions too.
        self._lock = threading.Lock()
        if path.exists():
            saved = json.loads(path.read_text())
            for reason in WaitReason:
                self.jobs[reason] = {int(k): v for k, v in saved.get(reason, {}).items()}

    def put(
        self,
        reason: WaitReason,
        job_id: int,
        spec_cid: str,
        after: float = 0.0,
        known: Known | None = None,
    ) -> None:
        """Leave the job waiting (``known``: a first-come job as it stands now, which only
        an event that closes it can change)."""
        with self._lock:
            self.jobs[reason][job_id] = spec_cid
            if after:
                self._due[job_id] = time.monotonic() + after
            if known is not None:
                self._known[job_id] = known
            self._unsaved = True

    def drop(self, job_id: int) -> None:
        """Forget the job, whatever it waits for: it is no longer open (another worker took
        it), so considering it again would only ask the chain to hear so."""
        with self._lock:
            for jobs in self.jobs.values():
                if jobs.pop(job_id, None) is not None:
                    self._unsaved = True
            self._due.pop(job_id, None)
            self._known.pop(job_id, None)

    def forget_known(self) -> None:
        """A reorg may have taken a job's post or its closing event back: ask again."""
        with self._lock:
            self._known.clear()

    def due(self, reason: WaitReason) -> list[int]:
        """The jobs waiting for ``reason`` whose time has come (after a restart: all)."""
        now = time.monotonic()
        with self._lock:
            return [j for j in self.jobs[reason] if self._due.get(j, 0.0) <= now]

    @contextlib.contextmanager
    def considering(self, reason: WaitReason, job_id: int) -> Iterator[tuple[str, Known | None]]:
        """Its spec CID and what is known of it (None: ask the chain), for the body to consider
        the job again (and put it back with what it knows, if it waits on). It leaves the
        list only once the body returns (claimed, declined, or put back to wait): a write
        meanwhile keeps it, and if the body raises (an RPC outage) it stays waiting; dropping
        it then lost the job for good (found by bench/chaos.py)."""
        with self._lock:
            self._due.pop(job_id, None)
            spec_cid = self.jobs[reason].pop(job_id)
            known = self._known.pop(job_id, None)
            self._considered[job_id] = (reason, spec_cid)
        try:
            yield spec_cid, known
        except BaseException:
            with self._lock:
                self.jobs[reason].setdefault(job_id, spec_cid)
                if known is not None:
                    self._known.setdefault(job_id, known)
            raise
        finally:
            with self._lock:
                self._considered.pop(job_id, None)
                self._unsaved = True

    def flush(self) -> None:
        """Write the list if it changed since it was last written."""
        with self._lock:
            if not self._unsaved:
                return
            listed = {reason.value: dict(jobs) for reason, jobs in self.jobs.items()}
            for job_id, (reason, spec_cid) in self._considered.items():
                listed[reason.value].setdefault(job_id, spec_cid)
            write_atomic(self.path, json.dumps(listed))
            self._unsaved = False
