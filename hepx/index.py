"""A SQLite index of JobMarket events: jobs by state, kind, requester and worker, fast.

The chain is the truth; the index is a cache that can be deleted and rebuilt from the deploy
block. ``sync()`` catches up in block ranges and, before each catch-up, checks that the blocks
it indexed are still on the chain (tip and last event block hashes); on a mismatch it rolls
back to the newest block whose hash still matches and re-reads from there (a reorg).

Amounts are wei and can exceed SQLite's 64-bit integers, so they are stored as decimal text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hepx.chain import (
    STATE_AFTER_EVENT,
    SWEEP_EVENTS,
    JobState,
    MarketClient,
    MarketEvent,
    confirmed_ranges,
    json_safe,
)
from hepx.errors import EventIndexError
from hepx.index_sweeps import apply_sweep_event, replay_sweeps, sweeps_touched
from hepx.indexed import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_SWEEPS,
    SCHEMA_VERSION,
    IndexedEvent,
    IndexedJob,
    JobPage,
    SyncResult,
    WorkerStats,
    normalize_address,
)

# The labels of hepx.chain.JobState without NONE, in the contract's order.
STATES = tuple(state.label for state in JobState if state is not JobState.NONE)
MAX_PER_PAGE = 500
# Far beyond any market's job count, and (page - 1) * per_page stays inside SQLite's int64.
MAX_PAGE = 10**9
_STATE_AFTER = {
    name: state.label
    for name, state in STATE_AFTER_EVENT.items()
    if name != "JobPosted" and name not in SWEEP_EVENTS
}
# Which argument names the account an event is about (for address pages).
_ADDRESS_ARG = {
    "JobPosted": "requester",
    "JobClaimed": "worker",
    "ResultSubmitted": "worker",
    "JobSettled": "worker",
    "Payment": "payee",
    "BidPlaced": "worker",
    "BidOutbid": "worker",
    "ReplicaDrawn": "worker",
    "ReplicaDisplaced": "worker",
    "ResultCommitted": "worker",
    "ResultRevealed": "worker",
}


class MarketIndex:
    """The index file at ``path`` for the market ``client`` talks to.

    ``kind_of`` maps a spec CID to the job's kind (None if the spec cannot be read); the index
    stays usable without it, with the kind column empty.
    """

    def __init__(
        self,
        path: Path,
        client: MarketClient,
        deploy_block: int,
        *,
        kind_of: Callable[[str], str | None] | None = None,
        confirmations: int = 0,
        chunk: int = 2000,
    ) -> None:
        self.path = path
        self.client = client
        self.deploy_block = deploy_block
        self.kind_of = kind_of
        self.confirmations = confirmations
        self.chunk = chunk
        self._local = threading.local()
        self._write_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db()
        db.executescript(SCHEMA)  # executescript commits on its own
        for table, columns in MIGRATIONS.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        db.executescript(SCHEMA_SWEEPS)
        with self._tx() as db:
            self._check_identity(db)

    # ------------------------------------------------------------ connections

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise EventIndexError(
                    f"index {self.path} is not a usable SQLite file ({exc}): delete it and it "
                    "is rebuilt from the chain"
                ) from exc
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _check_identity(self, db: sqlite3.Connection) -> None:
        """Refuse a file built for another market or chain: its rows would be wrong here."""
        identity = {
            "schema": str(SCHEMA_VERSION),
            "market": self.client.address,
            "chain_id": str(self.client.chain_id()),
            "deploy_block": str(self.deploy_block),
        }
        stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
        for key, value in identity.items():
            if key in stored and stored[key] != value:
                raise EventIndexError(
                    f"index {self.path} was built for {key}={stored[key]}, not {value}: delete "
                    "it (or set HEPX_INDEX_PATH elsewhere) and it is rebuilt from the chain"
                )
        for key, value in identity.items():
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))

    def _meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def synced_block(self) -> int:
        """The last block whose events are all in the index."""
        value = self._meta("synced_block")
        return int(value) if value is not None else self.deploy_block - 1

    # ------------------------------------------------------------ sync

    def _find_fork_point(self) -> int | None:
        """The newest indexed block still on the chain if a reorg dropped later ones, else None."""
        synced = self.synced_block
        if synced < self.deploy_block:
            return None
        tip_hash = self._meta("synced_hash")
        head = self.client.block_number()
        if (
            tip_hash is not None
            and synced <= head
            and self.client.rpc.block_hash(synced) == tip_hash
        ):
            # The tip is canonical, so (hashes chain back) every block below it is too.
            return None
        rows = (
            self._db()
            .execute("SELECT DISTINCT block, block_hash FROM events ORDER BY block DESC")
            .fetchall()
        )
        for row in rows:
            if (
                row["block"] <= head
                and self.client.rpc.block_hash(row["block"]) == row["block_hash"]
            ):
                return int(row["block"])
        return self.deploy_block - 1

    def _rollback(self, db: sqlite3.Connection, to_block: int) -> None:
        names = ",".join("?" * len(SWEEP_EVENTS))
        sweeps = sweeps_touched(db.execute(
            f"SELECT args FROM events WHERE block > ? AND name IN ({names})",
            (to_block, *SWEEP_EVENTS),
        ).fetchall(), db)  # fmt: skip
        touched = [
            int(r[0])
            for r in db.execute(
                "SELECT DISTINCT job_id FROM events WHERE block > ? AND job_id IS NOT NULL",
                (to_block,),
            )
        ]
        # A sweep's job (one opened to a dispute) is rebuilt with its sweep.
        for job_id in list(touched):
            row = db.execute("SELECT sweep_id FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None and row[0] is not None:
                sweeps.add(int(row[0]))
                touched.remove(job_id)
        db.execute("DELETE FROM events WHERE block > ?", (to_block,))
        for job_id in touched:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            for row in db.execute(
                "SELECT * FROM events WHERE job_id = ? ORDER BY block, log_index", (job_id,)
            ).fetchall():
                self._apply(db, self._row_event(row))
        replay_sweeps(db, sweeps, lambda row: self._apply(db, self._row_event(row)))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('synced_block', ?)", (str(to_block),))
        db.execute("DELETE FROM meta WHERE key = 'synced_hash'")
        db.execute(
            "INSERT INTO meta VALUES ('reorgs', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def sync(self) -> SyncResult:
        """Index every new confirmed block (after undoing a reorg); say what was done."""
        rolled_back_to = None
        fork = self._find_fork_point()
        if fork is not None:
            with self._tx() as db:
                self._rollback(db, fork)
            rolled_back_to = fork
        first = self.synced_block + 1
        head, ranges = confirmed_ranges(
            self.client.rpc, self.synced_block, self.confirmations, self.chunk
        )
        count = 0
        for start, end in ranges:
            end_hash = self.client.rpc.block_hash(end)
            events = list(self.client.iter_events(start, end, chunk=self.chunk))
            with self._tx() as db:
                for event in events:
                    if self._insert(db, event):
                        self._apply(db, self._as_indexed(event))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('synced_block', ?)", (str(end),))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('synced_hash', ?)", (end_hash,))
            count += len(events)
        return SyncResult(first, head, count, rolled_back_to)

    def rebuild(self) -> SyncResult:
        """Forget everything and index again from the deploy block."""
        with self._tx() as db:
            db.execute("DELETE FROM events")
            db.execute("DELETE FROM jobs")
            db.execute("DELETE FROM meta WHERE key IN ('synced_block', 'synced_hash')")
        return self.sync()

    def _insert(self, db: sqlite3.Connection, event: MarketEvent) -> bool:
        arg = _ADDRESS_ARG.get(event.name)
        address = str(event.args[arg]) if arg else None
        cursor = db.execute(
            "INSERT OR IGNORE INTO events "
            "(block, block_hash, tx_hash, log_index, name, job_id, address, args) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.block_number,
                event.block_hash,
                event.tx_hash,
                event.log_index,
                event.name,
                event.job_id,
                address,
                json.dumps(json_safe(event.args)),
            ),
        )
        return cursor.rowcount == 1

    @staticmethod
    def _as_indexed(event: MarketEvent) -> IndexedEvent:
        return IndexedEvent(
            0,
            event.block_number,
            event.block_hash,
            event.tx_hash,
            event.log_index,
            event.name,
            event.job_id,
            None,
            json_safe(event.args),
        )

    def _apply(self, db: sqlite3.Connection, ev: IndexedEvent) -> None:
        """Move the job row along for one event."""
        if ev.name in SWEEP_EVENTS:
            apply_sweep_event(db, ev.name, ev.args, ev.block, self.kind_of)
            return
        if ev.job_id is None or ev.name == "Payment":
            return
        args = ev.args
        if ev.name == "JobPosted":
            spec_cid = str(args["specCid"])
            kind = self.kind_of(spec_cid) if self.kind_of else None
            db.execute(
                "INSERT OR REPLACE INTO jobs (job_id, state, kind, requester, max_price, "
                "spec_cid, posted_block, updated_block) VALUES (?, 'open', ?, ?, ?, ?, ?, ?)",
                (
                    ev.job_id,
                    kind,
                    str(args["requester"]),
                    str(args["maxPrice"]),
                    spec_cid,
                    ev.block,
                    ev.block,
                ),
            )
            return
        state = _STATE_AFTER.get(ev.name)
        if state is not None:
            db.execute(
                "UPDATE jobs SET state = ?, updated_block = ? WHERE job_id = ?",
                (state, ev.block, ev.job_id),
            )
        if ev.name == "ReplicaDrawn":
            # A replicated job has several workers: the row shows one that holds a seat.
            db.execute(
                "UPDATE jobs SET worker = COALESCE(worker, ?), price = COALESCE(price, ?), "
                "updated_block = ? WHERE job_id = ?",
                (str(args["worker"]), str(args["price"]), ev.block, ev.job_id),
            )
        elif ev.name == "ReplicaDisplaced":
            db.execute(
                "UPDATE jobs SET worker = NULL, price = NULL, updated_block = ? "
                "WHERE job_id = ? AND worker = ?",
                (ev.block, ev.job_id, str(args["worker"])),
            )
        elif ev.name == "ResultRevealed":
            db.execute(
                "UPDATE jobs SET result_cid = ? WHERE job_id = ?",
                (str(args["resultCid"]), ev.job_id),
            )
        elif ev.name == "JobClaimed":
            db.execute(
                "UPDATE jobs SET worker = ?, price = ? WHERE job_id = ?",
                (str(args["worker"]), str(args["price"]), ev.job_id),
            )
        elif ev.name == "ResultSubmitted":
            db.execute(
                "UPDATE jobs SET result_cid = ? WHERE job_id = ?",
                (str(args["resultCid"]), ev.job_id),
            )
        elif ev.name == "JobExpired":
            index = int(args["fromState"])
            labels = [state.label for state in JobState]
            origin = labels[index] if 0 <= index < len(labels) else str(index)
            db.execute("UPDATE jobs SET expired_from = ? WHERE job_id = ?", (origin, ev.job_id))

    # ------------------------------------------------------------ queries

    @staticmethod
    def _row_event(row: sqlite3.Row) -> IndexedEvent:
        return IndexedEvent(
            id=int(row["id"]),
            block=int(row["block"]),
            block_hash=str(row["block_hash"]),
            tx_hash=str(row["tx_hash"]),
            log_index=int(row["log_index"]),
            name=str(row["name"]),
            job_id=None if row["job_id"] is None else int(row["job_id"]),
            address=row["address"],
            args=json.loads(row["args"]),
        )

    @staticmethod
    def _row_job(row: sqlite3.Row) -> IndexedJob:
        return IndexedJob(
            job_id=int(row["job_id"]),
            state=str(row["state"]),
            kind=row["kind"],
            requester=str(row["requester"]),
            worker=row["worker"],
            price=None if row["price"] is None else int(row["price"]),
            max_price=int(row["max_price"]),
            spec_cid=str(row["spec_cid"]),
            result_cid=row["result_cid"],
            posted_block=int(row["posted_block"]),
            updated_block=int(row["updated_block"]),
            expired_from=row["expired_from"],
            sweep_id=row["sweep_id"],
            lot_id=row["lot_id"],
        )

    def jobs(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        requester: str | None = None,
        worker: str | None = None,
        result_cid: str | None = None,
        spec_cid: str | None = None,
        page: int = 1,
        per_page: int = 25,
    ) -> JobPage:
        """Jobs matching every filter given, newest first, one page of them."""
        if state is not None and state not in STATES:
            raise EventIndexError(f"unknown state {state!r}: choose one of {', '.join(STATES)}")
        if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
            raise EventIndexError(
                f"page must be between 1 and {MAX_PAGE} and per_page between 1 and {MAX_PER_PAGE}"
            )
        where: list[str] = []
        params: list[Any] = []
        exact = {"state": state, "kind": kind, "result_cid": result_cid, "spec_cid": spec_cid}
        for column, value in exact.items():
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        for column, value in (("requester", requester), ("worker", worker)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(normalize_address(value, column))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        db = self._db()
        total = int(db.execute(f"SELECT COUNT(*) FROM jobs {clause}", params).fetchone()[0])
        rows = db.execute(
            f"SELECT * FROM jobs {clause} ORDER BY job_id DESC LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        ).fetchall()
        return JobPage([self._row_job(r) for r in rows], total, page, per_page)

    def job(self, job_id: int) -> IndexedJob | None:
        if not 0 <= job_id < 2**63:  # beyond SQLite's integers: no job has such an id
            return None
        row = self._db().execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else self._row_job(row)

    def events(
        self,
        *,
        job_id: int | None = None,
        address: str | None = None,
        tx_hash: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[IndexedEvent]:
        where: list[str] = ["id > ?"]
        params: list[Any] = [after_id]
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if address is not None:
            where.append("address = ?")
            params.append(normalize_address(address))
        if tx_hash is not None:
            where.append("tx_hash = ?")
            params.append(tx_hash.lower())
        order = "DESC" if newest_first else "ASC"
        rows = (
            self._db()
            .execute(
                f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",
                [*params, limit],
            )
            .fetchall()
        )
        return [self._row_event(r) for r in rows]

    def last_event_id(self) -> int:
        row = self._db().execute("SELECT MAX(id) FROM events").fetchone()
        return int(row[0] or 0)

    def state_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for row in self._db().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[str(row[0])] = int(row[1])
        return counts

    def block_gaps(self, first: str, then: tuple[str, ...]) -> list[int]:
        """Per job, blocks from its first ``first`` event to its first event named in ``then``."""
        marks = ", ".join("?" * len(then))
        rows = self._db().execute(
            "SELECT b.block - a.block FROM "
            "(SELECT job_id, MIN(block) AS block FROM events WHERE name = ? GROUP BY job_id) a "
            "JOIN (SELECT job_id, MIN(block) AS block FROM events "
            f"WHERE name IN ({marks}) GROUP BY job_id) b USING (job_id)",
            (first, *then),
        )
        return [int(r[0]) for r in rows]

    def workers(self) -> list[WorkerStats]:
        """Every worker that claimed a job: jobs won, outcomes and wei earned."""
        stats: dict[str, WorkerStats] = {}
        for row in self._db().execute(
            "SELECT worker, state, price, expired_from FROM jobs WHERE worker IS NOT NULL"
        ):
            s = stats.setdefault(row["worker"], WorkerStats(row["worker"]))
            s.jobs_won += 1
            s.states[row["state"]] = s.states.get(row["state"], 0) + 1
            if row["state"] == "settled":
                s.settled += 1
                s.earnings += int(row["price"])
            elif row["state"] in ("expired", "no_quorum"):
                s.failures += 1  # no result before the deadline, or outvoted
            else:
                s.in_progress += 1
        return sorted(stats.values(), key=lambda s: (-s.jobs_won, s.address))

    def status(self) -> dict[str, Any]:
        db = self._db()
        return {
            "path": str(self.path),
            "market": self.client.address,
            "deploy_block": self.deploy_block,
            "synced_block": self.synced_block,
            "events": int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0]),
            "jobs": int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]),
            "reorgs": int(self._meta("reorgs") or 0),
        }
