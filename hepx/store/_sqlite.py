"""SQLite files the store's processes share (the pack index, the pins), opened one way."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

# Tries to open a new file: processes opening it at once race for the switch to WAL.
_OPEN_ATTEMPTS = 12


def open_shared(path: Path, synchronous: str, schema: str) -> sqlite3.Connection:
    """``path`` in WAL mode with ``schema`` created, for any thread of this process (callers
    hold their own lock). Two processes opening a new file at once race for the switch to
    WAL, which takes the file's exclusive lock and answers "database is locked" at once, busy
    timeout or not: the loser waits and tries again."""
    for attempt in range(_OPEN_ATTEMPTS):
        db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute(schema)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt))
    raise AssertionError("unreachable")
