"""API tokens: who may spend the API's key or store on its disk, and how much.

A token's secret is shown once, when it is made; the book keeps only its SHA-256, so a copy of
the file grants nothing. Each token has scopes (``jobs``: posts and disputes paid from the
API's key; ``store``: uploads), a spending budget in wei and an upload quota in bytes. A spend
or an upload is reserved before it happens, in one SQLite write transaction, and given back if
it fails: two requests at once cannot both take the last of a budget.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hepx.units import format_wei

TOKEN_PREFIX = "hepx_"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Scope(StrEnum):
    """What a token lets its holder do."""

    JOBS = "jobs"  # post and dispute jobs paid from the API's key (custodial mode)
    STORE = "store"  # upload to the API's store (POST /ipfs)


class TokenRefused(Exception):
    """A call the token does not allow; ``status`` is its HTTP answer (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TokenRecord:
    name: str
    scopes: tuple[Scope, ...]
    budget_wei: int
    spent_wei: int
    upload_quota: int  # bytes
    uploaded: int
    created: float
    revoked: float | None

    @property
    def remaining_wei(self) -> int:
        return max(0, self.budget_wei - self.spent_wei)

    @property
    def remaining_upload(self) -> int:
        return max(0, self.upload_quota - self.uploaded)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    budget_wei TEXT NOT NULL,
    spent_wei TEXT NOT NULL,
    upload_quota INTEGER NOT NULL,
    uploaded INTEGER NOT NULL,
    created REAL NOT NULL,
    revoked REAL
)
"""
_COLUMNS = "name, scopes, budget_wei, spent_wei, upload_quota, uploaded, created, revoked"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: tuple[object, ...]) -> TokenRecord:
    name, scopes, budget, spent, quota, uploaded, created, revoked = row
    return TokenRecord(
        name=str(name),
        scopes=tuple(Scope(s) for s in str(scopes).split(",") if s),
        budget_wei=int(str(budget)),  # wei exceed SQLite's 64-bit integers: kept as text
        spent_wei=int(str(spent)),
        upload_quota=int(str(quota)),
        uploaded=int(str(uploaded)),
        created=float(str(created)),
        revoked=None if revoked is None else float(str(revoked)),
    )


class TokenBook:
    """The tokens in ``path`` (an SQLite file, made on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            # Reading an absent book is common (no tokens made): it must not create the file.
            db = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute(_SCHEMA)
            if write:
                db.execute("BEGIN IMMEDIATE")  # one writer at a time: reservations are atomic
            try:
                yield db
            except BaseException:
                if write:
                    db.execute("ROLLBACK")
                raise
            if write:
                db.execute("COMMIT")
        finally:
            db.close()

    # ------------------------------------------------------------ administration

    def create(
        self, name: str, scopes: tuple[Scope, ...], budget_wei: int, upload_quota: int
    ) -> tuple[str, TokenRecord]:
        """Make a token; return its secret (shown once) and its record."""
        if not name or not set(name) <= _NAME_CHARS or len(name) > 64:
            raise ValueError(f"token name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
        if not scopes:
            raise ValueError("a token needs at least one scope: jobs, store")
        if budget_wei < 0 or upload_quota < 0:
            raise ValueError("a budget or quota cannot be negative")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db(write=True) as db:
            if db.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"a token named {name!r} exists: revoke it or pick another name")
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, '0', ?, 0, ?, NULL)",
                (name, _hash(secret), ",".join(scopes), str(budget_wei), upload_quota,
                 time.time()),
            )  # fmt: skip
        return secret, self.get(name)

    def get(self, name: str) -> TokenRecord:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM tokens WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"no token named {name!r}")
        return _record(row)

    def records(self) -> list[TokenRecord]:
        with self._db() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY created").fetchall()
        return [_record(r) for r in rows]

    def revoke(self, name: str) -> TokenRecord:
        with self._db(write=True) as db:
            changed = db.execute(
                "UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL",
                (time.time(), name),
            ).rowcount
        record = self.get(name)  # KeyError for an unknown name
        if not changed:
            raise ValueError(f"token {name!r} was already revoked")
        return record

    def has_active(self) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM tokens WHERE revoked IS NULL").fetchone() is not None

    # ------------------------------------------------------------ use

    def _lookup(self, secret: str) -> TokenRecord | None:
        with self._db() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE secret_sha256 = ?", (_hash(secret),)
            ).fetchone()
        return None if row is None else _record(row)

    def is_active(self, secret: str) -> bool:
        """True if ``secret`` is a token that is not revoked (whatever its scopes)."""
        record = self._lookup(secret)
        return record is not None and record.revoked is None

    def authenticate(self, secret: str, scope: Scope) -> TokenRecord:
        """The token ``secret`` names, if it is active and has ``scope``."""
        record = self._lookup(secret)
        if record is None:
            raise TokenRefused(401, "unknown API token")
        if record.revoked is not None:
            raise TokenRefused(403, f"API token {record.name!r} was revoked")
        if scope not in record.scopes:
            have = ", ".join(record.scopes)
            raise TokenRefused(403, f"API token {record.name!r} may not {scope} (scopes: {have})")
        return record

    def spending(self, name: str, amount: int, what: str) -> AbstractContextManager[None]:
        """Count ``amount`` wei against the budget of ``name`` while the body runs, or refuse
        (403) if it does not fit, saying what remains; given back if the body fails (its
        transaction did not happen)."""
        return _held(
            functools.partial(self._reserve_spend, name, amount, what),
            functools.partial(self._release_spend, name, amount),
        )

    def uploading(self, name: str, size: int) -> AbstractContextManager[None]:
        """Count ``size`` bytes against the upload quota of ``name`` while the body runs, or
        refuse (403); given back if the body fails (nothing was stored)."""
        return _held(
            functools.partial(self._reserve_upload, name, size),
            functools.partial(self._release_upload, name, size),
        )

    def _reserve_spend(self, name: str, amount: int, what: str) -> None:
        with self._db(write=True) as db:
            row = db.execute(
                "SELECT budget_wei, spent_wei FROM tokens WHERE name = ?", (name,)
            ).fetchone()
            budget, spent = int(row[0]), int(row[1])
            if spent + amount > budget:
                remaining = max(0, budget - spent)
                raise TokenRefused(
                    403,
                    f"API token {name!r} is over budget: {what} needs {format_wei(amount)}, "
                    f"{format_wei(remaining)} ({remaining} wei) of {format_wei(budget)} remain",
                )
            db.execute(
                "UPDATE tokens SET spent_wei = ? WHERE name = ?", (str(spent + amount), name)
            )

    def _release_spend(self, name: str, amount: int) -> None:
        with self._db(write=True) as db:
            (spent,) = db.execute("SELECT spent_wei FROM tokens WHERE name = ?", (name,)).fetchone()
            db.execute(
                "UPDATE tokens SET spent_wei = ? WHERE name = ?",
                (str(max(0, int(spent) - amount)), name),
            )

    def _reserve_upload(self, name: str, size: int) -> None:
        with self._db(write=True) as db:
            quota, used = db.execute(
                "SELECT upload_quota, uploaded FROM tokens WHERE name = ?", (name,)
            ).fetchone()
            if used + size > quota:
                raise TokenRefused(
                    403,
                    f"API token {name!r} is over its upload quota: this upload is {size} "
                    f"bytes, {max(0, quota - used)} of {quota} bytes remain",
                )
            db.execute("UPDATE tokens SET uploaded = ? WHERE name = ?", (used + size, name))

    def _release_upload(self, name: str, size: int) -> None:
        with self._db(write=True) as db:
            db.execute(
                "UPDATE tokens SET uploaded = MAX(0, uploaded - ?) WHERE name = ?", (size, name)
            )


@contextmanager
def _held(reserve: Callable[[], None], release: Callable[[], None]) -> Iterator[None]:
    reserve()
    try:
        yield
    except BaseException:
        release()
        raise
