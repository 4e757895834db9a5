"""What the agent's flows (auctions in agent/bidding.py, replicas in agent/replication.py,
dispute panels in agent/verification.py)
need from the agent that runs them, and the book of every job it took.

The flows depend on ``FlowHost``, not on ``WorkerAgent``, so the worker imports them and
nothing imports the worker back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.phases import Phase, check_step
from agent.policy import Policy
from agent.specs import SpecCache
from hepx.chain import MarketClient, TxResult
from hepx.digest import Digest
from hepx.errors import DigestError
from hepx.files import write_atomic
from hepx.spec import JobSpec
from hepx.store import LocalStore


@dataclass(frozen=True)
class Produced:
    """A job's stored result folder (``result_cid``) and the local copy of its outputs."""

    result_cid: str
    outputs: Path
    workdir: Path
    seconds: float
    # The outputs' canonical digest, or why there is none: worked out once, for provenance
    # and for what goes on chain (a ROOT file's is read whole, and was read twice).
    digest: Digest | DigestError

    def digest_bytes32(self) -> bytes:
        """The digest a submission or commitment carries; raises its DigestError."""
        if isinstance(self.digest, DigestError):
            raise self.digest
        return self.digest.bytes32()


@dataclass
class AgentPaths:
    """Where an agent keeps its state: cursor, job book, saved waits, work folders."""

    state_dir: Path

    @property
    def cursor(self) -> Path:
        return self.state_dir / "cursor.json"

    @property
    def jobs(self) -> Path:
        return self.state_dir / "jobs.json"

    @property
    def work(self) -> Path:
        return self.state_dir / "work"

    @property
    def waiting(self) -> Path:
        return self.state_dir / "waiting.json"

    @property
    def sweeps(self) -> Path:
        return self.state_dir / "sweeps.json"


# Journal lines below which the book is never folded: a small book is not rewritten often.
_JOURNAL_MIN = 256
# Done jobs the book keeps before the settled ones, past reorg reach, go to its archive.
KEEP_DONE = 1000


class JobBook:
    """The phase (``agent.phases``) of every job this agent took, and what it knows of it.
    Each starts at claiming, booked before its claim or bid is sent: an agent killed before
    the answer came asks the chain what the transaction did (``agent.recovery``).

    On disk: the book as of its last compaction (``path``) and a journal beside it with a
    line per change since (the job's whole record, or null when it was forgotten). A change
    appends its lines instead of rewriting the book, whose size grows with every job of a
    sweep: rewritten at each step of each job, it cost a 600-job sweep more than its runs.
    The journal is folded into the book once it outgrows it. A kill leaves at worst a torn
    last line, which is skipped (that change is lost as an unwritten one would be).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = path.with_name(path.name + ".journal")
        # Settled jobs moved out of the book, a JSON line each (archive_done).
        self.archive = path.with_name(path.name + ".archive")
        self._archived: int | None = None  # its lines, counted when first asked (metrics)
        self.jobs: dict[int, dict[str, Any]] = {}
        # Jobs in slots update their records from their own threads.
        self._lock = threading.Lock()
        if path.exists():
            self.jobs = {int(k): v for k, v in json.loads(path.read_text()).items()}
        self._journaled = 0
        if self.journal.exists():
            for line in self.journal.read_text().splitlines():
                try:
                    job_id, rec = json.loads(line)
                except ValueError:
                    continue  # torn by a kill mid-write
                self._journaled += 1
                if rec is None:
                    self.jobs.pop(int(job_id), None)
                else:
                    self.jobs[int(job_id)] = rec
        # Jobs by phase: a round asks for a few phases many times, and the book keeps every
        # job it ever took (a scan per ask grew with all of them).
        self._phases: dict[str | None, set[int]] = {}
        for job_id, rec in self.jobs.items():
            self._phases.setdefault(rec.get("phase"), set()).add(job_id)

    def set(self, job_id: int, **fields: Any) -> None:
        self.set_many({job_id: fields})

    def set_many(self, jobs: dict[int, dict[str, Any]], **fields: Any) -> None:
        """``set`` for each of ``jobs`` (id -> its own fields, besides ``fields``), written
        once: a lot's jobs move together."""
        with self._lock:
            for job_id, own in jobs.items():
                merged = {**own, **fields}
                old = self.jobs.get(job_id, {}).get("phase")
                if "phase" in merged:
                    merged["phase"] = check_step(job_id, old, merged["phase"])
                self.jobs.setdefault(job_id, {}).update(merged)
                self._file(job_id, old)
            self._write(jobs)

    def _file(self, job_id: int, old: str | None) -> None:  # lock held
        """Move the job in the phase index from ``old`` to its phase now (None: gone)."""
        self._phases.get(old, set()).discard(job_id)
        if (rec := self.jobs.get(job_id)) is not None:
            self._phases.setdefault(rec.get("phase"), set()).add(job_id)

    def drop_field(self, job_id: int, name: str) -> None:
        with self._lock:
            if self.jobs.get(job_id, {}).pop(name, None) is not None:
                self._write([job_id])

    def lot(self, job_id: int) -> int | None:
        """The lot (agent/sweeps.py) the job belongs to, or None for a job of its own."""
        lot = self.jobs.get(job_id, {}).get("lot")
        return None if lot is None else int(lot)

    def _write(self, changed: Iterable[int]) -> None:  # lock held
        """Journal the records of ``changed``; fold the journal into the book when it has
        more lines than the book has jobs (so both stay within twice the book's size)."""
        # Compact JSON: an indent makes json use its pure-Python encoder, ~10x slower.
        lines = [json.dumps([j, self.jobs.get(j)], separators=(",", ":")) for j in changed]
        self._journaled += len(lines)
        if self._journaled <= max(_JOURNAL_MIN, len(self.jobs)):
            try:
                self._append(lines)
            except FileNotFoundError:  # the agent's first job: its folder comes with it
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._append(lines)
            return
        # The book first: a kill before the journal goes leaves lines the book already has,
        # and replaying them gives the same records.
        write_atomic(self.path, json.dumps(self.jobs, separators=(",", ":")))
        self.journal.unlink(missing_ok=True)
        self._journaled = 0

    def _append(self, lines: list[str]) -> None:
        with open(self.journal, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def forget(self, job_id: int) -> None:
        with self._lock:
            if (rec := self.jobs.pop(job_id, None)) is not None:
                self._file(job_id, rec.get("phase"))
                self._write([job_id])

    def archive_done(self, through_block: int) -> list[int]:
        """Once the book holds more than KEEP_DONE done jobs, move those done by
        ``through_block`` (beyond a reorg's reach) whose pins are released to the archive.
        A round reads the book by phase, and a book that kept every job ever taken made a
        long-running agent's rounds, metrics and folds grow with all of them."""
        with self._lock:
            done = self._phases.get(Phase.DONE, set())
            if len(done) <= KEEP_DONE:
                return []
            old = sorted(j for j in done if self.jobs[j].get("pins_released")
                         and int(self.jobs[j].get("done_block", 0)) <= through_block)  # fmt: skip
            if not old:
                return []
            # The archive first: a kill before the book's lines leaves them in both, and the
            # next archive_done writes them again (the count then runs over, never under).
            with open(self.archive, "a", encoding="utf-8") as out:
                out.writelines(json.dumps([j, self.jobs[j]]) + "\n" for j in old)
            for job_id in old:
                self._file(job_id, self.jobs.pop(job_id).get("phase"))
            self._write(old)
            if self._archived is not None:
                self._archived += len(old)
            return old

    @property
    def archived(self) -> int:
        """Jobs moved to the archive. Counted from the file once, not at every start: a
        long-running agent's archive holds every job it ever settled."""
        with self._lock:  # not while archive_done() appends
            if self._archived is None:
                self._archived = _lines(self.archive)
            return self._archived

    def phase(self, job_id: int) -> Phase | None:
        phase = self.jobs.get(job_id, {}).get("phase")
        return None if phase is None else Phase(phase)

    def in_phase(self, *phases: Phase) -> list[int]:
        """The jobs in any of ``phases``, by id."""
        with self._lock:
            return sorted(j for phase in set(phases) for j in self._phases.get(phase, ()))


class FlowHost(Protocol):
    """The agent as its flows see it."""

    client: MarketClient
    store: LocalStore
    specs: SpecCache
    policy: Policy
    book: JobBook
    address: str

    def send_claim(
        self, job_id: int, sent: str, send: Callable[[], TxResult], **record: Any
    ) -> TxResult | None:
        """Book the job as claiming, then send its claim or bid (``sent``); None if refused."""

    def consider(self, job_id: int, spec_cid: str) -> None:
        """Decide on an open job as when its JobPosted is read: claim, bid, wait or decline."""

    def run_job(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        """Run a single-replica job this worker holds and submit its result (in a slot: it
        returns at once)."""

    def run_replica(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        """Run one replica of a replicated job this worker holds and commit its digest."""

    def running(self, job_id: int) -> bool:
        """True while the job is queued for or running in one of this worker's slots."""

    def claim_queued_for(self, job_id: int) -> bool:
        """True while this process holds the job's claim for its next claimJobs batch (booked
        as claiming, not sent yet)."""

    def produce_result(
        self, job_id: int, spec_cid: str, spec: JobSpec | None = None
    ) -> Produced | None:
        """Run the job and store its result folder; None if it failed."""


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as lines:
        return sum(1 for _ in lines)
