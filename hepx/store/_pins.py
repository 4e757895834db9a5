"""Pins: named roots that garbage collection keeps, each until an expiry time or for good.

One SQLite table (``<dir>/pins.sqlite``, WAL mode), which the store's processes (the API,
every agent of a devnet) share: each pin is a row, so agents pinning different jobs never
rewrite each other's, and a round's pins change in one transaction. A file per pin, as
stores before kept them, cost a file created and renamed per pin in one folder all of them
wrote into (several per job); such files are moved into the table when the store opens.
"""

from __future__ import annotations

import builtins
import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hepx.errors import StoreError
from hepx.store._sqlite import open_shared

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    cid: str
    expires_at: float | None  # epoch seconds; None keeps it until unpinned


def _check(name: str) -> str:
    if not _NAME.match(name):
        raise StoreError(
            f"bad pin name {name!r}: use letters, digits, '.', '_' or '-' (e.g. job-7-spec)"
        )
    return name


class Pins:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, shared by the process's threads

    def _open(self) -> sqlite3.Connection:  # lock held
        if self._db is None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._db = _connect(self.folder / "pins.sqlite")
                _adopt_pin_files(self._db, self.folder)
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the pins in {self.folder}: {exc}") from exc
        return self._db

    def _run(
        self, sql: str, rows: Iterable[tuple[object, ...]] = ((),)
    ) -> builtins.list[tuple[object, ...]]:
        """Run ``sql`` for each of ``rows`` in one transaction; the rows they return."""
        with self._lock:
            db = self._open()
            try:
                db.execute("BEGIN IMMEDIATE")
                found: builtins.list[tuple[object, ...]] = []
                for row in rows:
                    found += db.execute(sql, row).fetchall()
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"pins in {self.folder}: {exc}") from exc
            return found

    def set(self, name: str, cid: str, expires_at: float | None = None) -> Pin:
        self._run("INSERT OR REPLACE INTO pins VALUES (?, ?, ?)", [(_check(name), cid, expires_at)])
        return Pin(name, cid, expires_at)

    def get(self, name: str) -> Pin | None:
        rows = self._run("SELECT name, cid, expires_at FROM pins WHERE name = ?", [(_check(name),)])
        return _pins(rows)[0] if rows else None

    def remove(self, name: str) -> bool:
        return bool(self._run("DELETE FROM pins WHERE name = ? RETURNING name", [(_check(name),)]))

    def list(self) -> builtins.list[Pin]:
        return _pins(self._run("SELECT name, cid, expires_at FROM pins ORDER BY name"))

    def release(self, prefixes: Iterable[str], expires_at: float) -> builtins.list[Pin]:
        """Give every pin kept for good whose name starts with one of ``prefixes`` an expiry
        at ``expires_at``; returns them. One transaction, a range of the index per prefix."""
        rows = [(expires_at, p, p[:-1] + chr(ord(p[-1]) + 1)) for p in prefixes if p]
        sql = ("UPDATE pins SET expires_at = ? WHERE name >= ? AND name < ? "
               "AND expires_at IS NULL RETURNING name, cid, expires_at")  # fmt: skip
        return _pins(self._run(sql, rows)) if rows else []

    def expire(self, now: float) -> builtins.list[str]:
        """Remove pins whose time has passed; return their names."""
        rows = self._run("DELETE FROM pins WHERE expires_at <= ? RETURNING name", [(now,)])
        return sorted(str(row[0]) for row in rows)


def _pins(rows: Iterable[tuple[object, ...]]) -> builtins.list[Pin]:
    return [
        Pin(str(name), str(cid), None if expires is None else float(str(expires)))
        for name, cid, expires in rows
    ]


def _connect(path: Path) -> sqlite3.Connection:
    # NORMAL in WAL mode: a killed process loses nothing; only a power cut may lose the
    # last pins (the pin files before were not fsynced either).
    return open_shared(
        path,
        "NORMAL",
        "CREATE TABLE IF NOT EXISTS pins (name TEXT PRIMARY KEY, cid TEXT NOT NULL, "
        "expires_at REAL) WITHOUT ROWID",
    )


def _adopt_pin_files(db: sqlite3.Connection, folder: Path) -> None:
    """Move pins a store of an earlier version kept as ``<name>.json`` files into the table
    (a file is deleted once its row is in)."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)  # a write a kill interrupted
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            row = (path.stem, str(raw["cid"]), raw.get("expires_at"))
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"pin file {path} is unreadable: {exc}") from exc
        db.execute("INSERT OR IGNORE INTO pins VALUES (?, ?, ?)", row)
        path.unlink()
