"""The event index's tables (hepx/index.py) and the rows it answers with: events, jobs,
pages of jobs, worker statistics and what a sync did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from hepx.errors import EventIndexError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    block INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    job_id INTEGER,
    address TEXT,
    args TEXT NOT NULL,
    UNIQUE (block, log_index)
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, id);
CREATE INDEX IF NOT EXISTS events_address ON events (address, id);
CREATE INDEX IF NOT EXISTS events_tx ON events (tx_hash);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    kind TEXT,
    requester TEXT NOT NULL,
    worker TEXT,
    price TEXT,
    max_price TEXT NOT NULL,
    spec_cid TEXT NOT NULL,
    result_cid TEXT,
    posted_block INTEGER NOT NULL,
    updated_block INTEGER NOT NULL,
    expired_from TEXT,
    sweep_id INTEGER,
    lot_id INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, job_id);
CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind, job_id);
CREATE INDEX IF NOT EXISTS jobs_requester ON jobs (requester, job_id);
CREATE INDEX IF NOT EXISTS jobs_worker ON jobs (worker, job_id);
CREATE INDEX IF NOT EXISTS jobs_result ON jobs (result_cid);
"""
# Created after the columns a file made before sweeps lacks (MIGRATIONS adds them first).
SCHEMA_SWEEPS = """
CREATE INDEX IF NOT EXISTS jobs_sweep ON jobs (sweep_id);
CREATE INDEX IF NOT EXISTS jobs_lot ON jobs (lot_id);
"""
# Columns added since a file's schema; no market before them had sweeps, so adding them
# empty is exact.
MIGRATIONS = {"jobs": {"sweep_id": "INTEGER", "lot_id": "INTEGER"}}


@dataclass(frozen=True)
class IndexedEvent:
    id: int
    block: int
    block_hash: str
    tx_hash: str
    log_index: int
    name: str
    job_id: int | None
    address: str | None
    args: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.name,
            "block": self.block,
            "block_hash": self.block_hash,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "job_id": self.job_id,
            "address": self.address,
            "args": self.args,
        }


@dataclass(frozen=True)
class IndexedJob:
    job_id: int
    state: str
    kind: str | None
    requester: str
    worker: str | None
    price: int | None
    max_price: int
    spec_cid: str
    result_cid: str | None
    posted_block: int
    updated_block: int
    expired_from: str | None
    sweep_id: int | None = None  # a sweep's job: the sweep's id (its first job's)
    lot_id: int | None = None  # and, once claimed, its lot's

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class JobPage:
    items: list[IndexedJob]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass
class WorkerStats:
    address: str
    jobs_won: int = 0
    settled: int = 0
    in_progress: int = 0
    failures: int = 0
    earnings: int = 0
    states: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    from_block: int
    to_block: int
    events: int
    rolled_back_to: int | None = None


def normalize_address(value: str, what: str = "address") -> str:
    """Checksummed form of ``value``; EventIndexError naming ``what`` if it is not one."""
    if not Web3.is_address(value):
        raise EventIndexError(f"{what} {value!r} is not an address (expected 0x + 40 hex digits)")
    return str(Web3.to_checksum_address(value))
