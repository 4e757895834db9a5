"""What a worker keeps in its store: a job's spec, inputs and result stay pinned while the job
is open, then for a retention period after it settled, after which ``hepx store gc`` may
collect them. Pin names are ``job-<id>-<role>``, so one job's pins are found by prefix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from agent.phases import Phase
from hepx.errors import StoreError
from hepx.store import LocalStore

log = logging.getLogger("hepx.agent")

DEFAULT_RETENTION = 7 * 86400.0


def _prefix(job_id: int) -> str:
    return f"job-{job_id}-"


def pin_job(store: LocalStore, job_id: int, spec_cid: str, input_cids: Iterable[str]) -> None:
    """Pin a job's spec and inputs until it settles (no expiry yet)."""
    try:
        store.pin(f"{_prefix(job_id)}spec", spec_cid)
        for i, cid in enumerate(input_cids):
            store.pin(f"{_prefix(job_id)}input-{i}", cid)
    except StoreError as exc:  # housekeeping: never the reason a job fails
        log.warning("event=pin_failed job=%d error=%s", job_id, exc)


def pin_result(store: LocalStore, job_id: int, result_cid: str) -> None:
    try:
        store.pin(f"{_prefix(job_id)}result", result_cid)
    except StoreError as exc:
        log.warning("event=pin_failed job=%d error=%s", job_id, exc)


class _Book(Protocol):
    jobs: dict[int, dict[str, Any]]

    def in_phase(self, *phases: Phase) -> list[int]: ...

    def set_many(self, jobs: dict[int, dict[str, Any]], **fields: Any) -> None: ...


def release_settled(
    store: LocalStore, book: _Book, retention: float, now: float | None = None
) -> list[int]:
    """Give the pins of jobs the book says are done an expiry ``retention`` seconds from now,
    once per job (the book remembers); returns the job ids released.

    Store errors are logged, not raised: pins are housekeeping and must not stop the agent.
    """
    now = time.time() if now is None else now
    done = [j for j in book.in_phase(Phase.DONE) if not book.jobs[j].get("pins_released")]
    if not done:
        return []
    try:
        store.release_pins([_prefix(job_id) for job_id in done], now + retention)
    except StoreError as exc:
        log.warning("event=pin_release_failed jobs=%s error=%s", done, exc)
        return []
    book.set_many(dict.fromkeys(done, {}), pins_released=True)  # one write for the round
    return done
