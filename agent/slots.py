"""Job slots: how many jobs an agent runs at once, as a partitionable batch slot does.

The agent's capacity is CPUs and memory (the policy's ``slots`` and ``memory_mb``, by default
this machine's). A job needs its spec's ``resources.cpus`` and ``resources.memory_mb``. The
agent reserves a job's share *before* it claims, so a full agent leaves jobs to others instead
of holding them; a job it already holds (an award, a restart) waits in a queue for capacity.
Each job runs in a thread of its own while the agent's loop goes on following the chain,
claiming, committing and settling.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hepx.agent")


@dataclass(frozen=True)
class Need:
    """What one job takes from the agent's capacity while it runs."""

    cpus: int = 1
    memory_mb: int = 0


def machine_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


class Slots:
    """Capacity accounting and one thread per running job."""

    def __init__(self, cpus: int, memory_mb: int) -> None:
        self.cpus, self.memory_mb = cpus, memory_mb
        self._lock = threading.Lock()
        self._free = Need(cpus, memory_mb)
        self._reserved: dict[int, Need] = {}  # reserved or running
        self._threads: dict[int, threading.Thread] = {}
        self._queue: deque[tuple[int, Need, Callable[[], None]]] = deque()

    def never_fits(self, need: Need) -> str | None:
        """Why a job can never run here, or None."""
        if need.cpus > self.cpus:
            return f"needs {need.cpus} CPUs, this agent has {self.cpus}"
        if need.memory_mb > self.memory_mb:
            return f"needs {need.memory_mb} MB of memory, this agent has {self.memory_mb}"
        return None

    def reserve(self, job_id: int, need: Need) -> bool:
        """Take ``need`` for ``job_id`` now if it is free (before a claim); False if not."""
        with self._lock:
            if job_id in self._reserved:
                return True
            if self._queue or not self._fits(need):
                return False  # queued jobs we already hold come first
            self._take(job_id, need)
            return True

    def release(self, job_id: int) -> None:
        """Give back a reservation that will not run (the claim was refused)."""
        with self._lock:
            if job_id not in self._threads:
                self._give_back(job_id)
                self._start_queued()

    def holds(self, job_id: int) -> bool:
        """True while ``job_id`` is reserved, queued or running here."""
        with self._lock:
            return job_id in self._reserved or any(q[0] == job_id for q in self._queue)

    def run(self, job_id: int, need: Need, work: Callable[[], None]) -> None:
        """Run ``work`` for a job this agent holds: now if reserved or free, else once capacity
        frees. A job already running or queued is left as it is."""
        with self._lock:
            if job_id in self._threads or any(q[0] == job_id for q in self._queue):
                return
            if job_id not in self._reserved:
                if self._queue or not self._fits(need):
                    self._queue.append((job_id, need, work))
                    log.info("event=queued job=%d running=%d", job_id, len(self._threads))
                    return
                self._take(job_id, need)
            self._launch(job_id, work)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._threads)

    @property
    def full(self) -> bool:
        """True while no job could start now: none fits, or jobs we hold wait in the queue."""
        with self._lock:
            return bool(self._queue) or not self._fits(Need())

    @property
    def free(self) -> Need:
        with self._lock:
            return self._free

    def join(self, timeout: float | None = None) -> int:
        """Wait until no job runs (queued ones start as others end); how many still run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads.values())
            if not threads:
                return 0
            for thread in threads:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                return self.running

    # -- internals (callers hold self._lock where noted) ------------------------------------

    def _fits(self, need: Need) -> bool:  # lock held
        return need.cpus <= self._free.cpus and need.memory_mb <= self._free.memory_mb

    def _take(self, job_id: int, need: Need) -> None:  # lock held
        self._reserved[job_id] = need
        self._free = Need(self._free.cpus - need.cpus, self._free.memory_mb - need.memory_mb)

    def _give_back(self, job_id: int) -> None:  # lock held
        need = self._reserved.pop(job_id, None)
        self._threads.pop(job_id, None)
        if need is not None:
            self._free = Need(self._free.cpus + need.cpus, self._free.memory_mb + need.memory_mb)

    def _launch(self, job_id: int, work: Callable[[], None]) -> None:  # lock held
        thread = threading.Thread(
            target=self._body, args=(job_id, work), name=f"job-{job_id}", daemon=True
        )
        self._threads[job_id] = thread
        thread.start()

    def _body(self, job_id: int, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            # The job's phase in the book is unchanged, so the agent's loop takes it up again
            # (see WorkerAgent.resume_held); the traceback says what went wrong.
            log.exception("event=job_thread_error job=%d", job_id)
        finally:
            # One critical section, so join() never sees no thread while a queued job waits.
            with self._lock:
                self._give_back(job_id)
                self._start_queued()

    def _start_queued(self) -> None:  # lock held
        while self._queue and self._fits(self._queue[0][1]):
            job_id, need, work = self._queue.popleft()
            self._take(job_id, need)
            self._launch(job_id, work)
