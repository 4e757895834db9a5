"""Blocks on disk, verified against their CIDs on every read.

Two layouts live side by side, so stores written by earlier versions need no migration:

- loose: ``blocks/<2 chars>/<cid>``, one file per block (single ``put_block`` calls);
- packs: ``packs/<name>.pack``, the blocks of one add appended to one file, found through
  ``packs/index.sqlite`` (CID -> pack, offset, length).

Creating one file per 256 KiB block costs more here than hashing it, so adds (``batch()``)
write packs: past its first MiB, a background thread appends blocks while the caller reads
and hashes the next chunk. Crash safety: a pack is written under a temporary name, flushed
to disk, renamed, and only then are its blocks entered in the index (one transaction), so a
block never becomes visible incomplete; a crash leaves at worst an unreferenced pack that gc
removes.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hepx.errors import BlockCorrupted, BlockNotFound, StoreError
from hepx.store._cid import BlockId, block_id, block_id_from_binary
from hepx.store._sqlite import open_shared

# Blocks handed to the writer thread but not yet written: bounds the memory of a batch.
_QUEUE_BLOCKS = 8
# Bytes a pack writes in the caller's thread before it starts its writer thread: most adds
# are a spec or a small result of a few KiB, and a thread started for each was a sixth of
# the API's time per POST /jobs.
_INLINE_BYTES = 1 << 20
# A batch closes its pack and starts another past this size, which bounds gc's rewrites.
_PACK_BYTES = 128 << 20
# Temporary packs older than this are debris from a crash (gc removes them).
_STALE_SECONDS = 3600


class _PackWriter:
    """One pack being written: blocks appended by a background thread, indexed at finish."""

    def __init__(self, store: Blockstore) -> None:
        self.store = store
        self.name = f"{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{os.urandom(4).hex()}"
        self.tmp = store.packs / f".{self.name}.pack.tmp"
        self.pending: dict[BlockId, tuple[int, int]] = {}
        self.size = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_BLOCKS)
        try:
            store.packs.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create a pack under {store.packs}: {exc}") from exc
        self.thread: threading.Thread | None = None  # started once past _INLINE_BYTES

    def _write_loop(self) -> None:
        while (data := self.queue.get()) is not None:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.error is None:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except BaseException as exc:  # reported in the caller's thread at finish
                self.error = exc

    def add(self, bid: BlockId, data: bytes) -> None:
        self.pending[bid] = (self.size, len(data))
        self.size += len(data)
        if self.thread is None and self.size <= _INLINE_BYTES:
            self._write(data)  # in order: nothing is queued before the thread starts
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._write_loop, daemon=True)
            self.thread.start()
        self.queue.put(data)

    def finish(self, commit: bool) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        final = self.store.packs / f"{self.name}.pack"
        try:
            try:
                if self.error is not None:
                    raise OSError(f"writing the pack failed: {self.error}")
                if commit and self.pending:
                    if self.store._fsync:
                        os.fsync(self.fd)
                    os.replace(self.tmp, final)
                    if self.store._fsync:
                        _fsync_dir(self.store.packs)
            finally:
                os.close(self.fd)
                self.tmp.unlink(missing_ok=True)
            if commit and self.pending:
                self.store._index_rows(
                    (bid, self.name, off, length) for bid, (off, length) in self.pending.items()
                )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot store blocks under {self.store.root}: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Blockstore:
    """Loose block files plus indexed packs under ``root`` (see the module doc)."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self.packs = self.root / "packs"
        self._fsync = fsync
        self._shards: set[Path] = set()  # loose shard folders known to exist
        self._local = threading.local()  # each thread's open batch (API requests run in threads)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # one sqlite connection, shared by API threads

    @property
    def _writer(self) -> _PackWriter | None:
        writer: _PackWriter | None = getattr(self._local, "writer", None)
        return writer

    @_writer.setter
    def _writer(self, writer: _PackWriter | None) -> None:
        self._local.writer = writer

    # -- the index ----------------------------------------------------------------------

    def _index(self, create: bool) -> sqlite3.Connection | None:
        with self._lock:
            if self._db is None:
                path = self.packs / "index.sqlite"
                if not create and not path.exists():
                    return None
                try:
                    self.packs.mkdir(parents=True, exist_ok=True)
                    self._db = _open_index(path, self._fsync)
                except (OSError, sqlite3.Error) as exc:
                    raise StoreError(f"cannot open the pack index in {self.packs}: {exc}") from exc
            return self._db

    def _index_rows(self, rows: Iterator[tuple[BlockId, str, int, int]]) -> None:
        db = self._index(create=True)
        assert db is not None
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?)",
                    ((bid.binary, pack, off, n) for bid, pack, off, n in rows),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _lookup(self, bid: BlockId) -> tuple[str, int, int] | None:
        db = self._index(create=False)
        if db is None:
            return None
        with self._lock:
            row = db.execute(
                "SELECT pack, offset, length FROM blocks WHERE cid = ?", (bid.binary,)
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    # -- reading ------------------------------------------------------------------------

    def path_for(self, bid: BlockId) -> Path:
        """Where the block's loose file is (or would be)."""
        text = str(bid)
        return self._blocks / text[-3:-1] / text

    def locate(self, bid: BlockId) -> tuple[Path, int, int]:
        """(file, offset, length) holding the block's bytes."""
        path = self.path_for(bid)
        if path.is_file():
            return path, 0, path.stat().st_size
        found = self._lookup(bid)
        if found is None:
            raise BlockNotFound(str(bid))
        pack, offset, length = found
        return self.packs / f"{pack}.pack", offset, length

    def has(self, bid: BlockId) -> bool:
        if self._writer is not None and bid in self._writer.pending:
            return True
        return self.path_for(bid).is_file() or self._lookup(bid) is not None

    def get(self, bid: BlockId) -> bytes:
        """The block's bytes after checking them against the CID's digest."""
        path, offset, length = self.locate(bid)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(length)
        except FileNotFoundError:
            raise BlockNotFound(f"{bid} (its pack {path.name} is missing)") from None
        except OSError as exc:
            raise StoreError(f"cannot read block {bid}: {exc}") from exc
        digest = hashlib.sha256(data).digest()
        if digest != bid.digest:
            raise BlockCorrupted(str(bid), f"its {len(data)} bytes hash to sha2-256 {digest.hex()}")
        return data

    def _intact(self, bid: BlockId) -> bool:
        try:
            self.get(bid)
            return True
        except BlockNotFound:
            return False
        except BlockCorrupted:
            return False  # re-adding heals a damaged block

    # -- writing ------------------------------------------------------------------------

    def put(self, bid: BlockId, data: bytes) -> None:
        """Store ``data`` under ``bid`` (the caller computed ``bid`` from ``data``).

        An existing intact block is kept; a damaged one is replaced, so re-adding heals it.
        """
        writer = self._writer
        if writer is not None:
            if bid in writer.pending or self._present_fast(bid):
                return
            writer.add(bid, data)
            if writer.size >= _PACK_BYTES:
                self._writer = None
                writer.finish(commit=True)
                self._writer = _PackWriter(self)
            return
        if self._intact(bid):
            return
        self._put_loose(bid, data)

    def _present_fast(self, bid: BlockId) -> bool:
        # Only blocks already stored are read back (a re-add), so a fresh add pays one index
        # lookup per block; a damaged copy is rewritten into the new pack, which heals it.
        if not self.path_for(bid).is_file() and self._lookup(bid) is None:
            return False
        return self._intact(bid)

    def _put_loose(self, bid: BlockId, data: bytes) -> None:
        path = self.path_for(bid)
        # Write to a unique temporary name in the same directory, then rename: a crash leaves
        # at worst a stray temp file, never a partial block under a CID name.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            if path.parent not in self._shards:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._shards.add(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write block {bid} under {self.root}: {exc}") from exc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group puts into packs: durable and visible when the block exits; nothing of a
        failed batch becomes visible (except packs already closed at the size limit)."""
        if self._writer is not None:  # nested: the outer batch commits
            yield
            return
        self._writer = _PackWriter(self)
        ok = False
        try:
            yield
            ok = True
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.finish(commit=ok)

    # -- whole-store operations (import commit, gc) ---------------------------------------

    def adopt(self, other: Blockstore) -> None:
        """Move every block of ``other`` (a staging store on the same filesystem) into this
        one; its blocks were verified and made durable when they were staged."""
        try:
            for bid, _size in other._loose():
                path = self.path_for(bid)
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(other.path_for(bid), path)
            rows = other._rows()
            if rows:
                self.packs.mkdir(parents=True, exist_ok=True)
                for pack in sorted({pack for _, pack, _, _ in rows}):
                    os.replace(other.packs / f"{pack}.pack", self.packs / f"{pack}.pack")
                if self._fsync:
                    _fsync_dir(self.packs)
                self._index_rows(iter(rows))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot move imported blocks into {self.root}: {exc}") from exc
        finally:
            other.close()

    def drop(self, bid: BlockId) -> None:
        """Forget one block: its loose file, or its index row (pack space is freed at gc)."""
        try:
            self.path_for(bid).unlink(missing_ok=True)
            db = self._index(create=False)
            if db is not None:
                with self._lock:
                    db.execute("DELETE FROM blocks WHERE cid = ?", (bid.binary,))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot drop block {bid}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _loose(self) -> Iterator[tuple[BlockId, int]]:
        if not self._blocks.is_dir():
            return
        for shard in os.scandir(self._blocks):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                if entry.name.startswith("."):
                    continue
                try:
                    bid = block_id(entry.name)
                except StoreError:
                    continue
                yield bid, entry.stat().st_size

    def _rows(self) -> list[tuple[BlockId, str, int, int]]:
        db = self._index(create=False)
        if db is None:
            return []
        with self._lock:
            rows = db.execute("SELECT cid, pack, offset, length FROM blocks").fetchall()
        return [(block_id_from_binary(bytes(r[0])), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def verify(self) -> tuple[int, int, list[str], list[str], list[str]]:
        """Read and hash every stored block. Returns (blocks, bytes, damaged, debris,
        unreferenced): damaged blocks with what is wrong; leftovers of interrupted writes
        (temporary block files and packs); packs no index row points to any more (a crash
        before indexing, or blocks healed into a newer pack), which gc reclaims."""
        blocks = size = 0
        damaged: list[str] = []
        for bid, _length in self.iter_blocks():
            try:
                size += len(self.get(bid))
            except StoreError as exc:
                damaged.append(str(exc))
            blocks += 1
        debris: list[str] = []
        unreferenced: list[str] = []
        if self._blocks.is_dir():
            for shard in os.scandir(self._blocks):
                if shard.is_dir():
                    debris += [e.path for e in os.scandir(shard.path) if e.name.startswith(".")]
        if self.packs.is_dir():
            referenced = {pack for _, pack, _, _ in self._rows()}
            for entry in os.scandir(self.packs):
                if entry.name.endswith(".pack.tmp"):
                    debris.append(entry.path)
                elif entry.name.endswith(".pack") and entry.name[:-5] not in referenced:
                    unreferenced.append(entry.path)
        return blocks, size, damaged, debris, unreferenced

    def iter_blocks(self) -> Iterator[tuple[BlockId, int]]:
        """(id, size) of every stored block, loose and packed."""
        yield from self._loose()
        for bid, _pack, _off, length in self._rows():
            yield bid, length

    def collect(self, live: set[BlockId]) -> tuple[int, int]:
        """Delete every block not in ``live``: loose files, index rows, then packs with no
        live block left; packs with some live blocks are rewritten without the dead ones.
        Returns (blocks removed, bytes freed)."""
        removed = freed = 0
        for bid, size in list(self._loose()):
            if bid not in live:
                self.path_for(bid).unlink(missing_ok=True)
                removed, freed = removed + 1, freed + size
        rows = self._rows()
        by_pack: dict[str, list[tuple[BlockId, int, int]]] = {}
        for bid, pack, off, length in rows:
            by_pack.setdefault(pack, []).append((bid, off, length))
        try:
            for pack, blocks in by_pack.items():
                dead = [b for b in blocks if b[0] not in live]
                if not dead:
                    continue
                keep = [b for b in blocks if b[0] in live]
                if keep:  # copy the live blocks into a fresh pack, re-pointing their rows
                    source = self.packs / f"{pack}.pack"
                    with self.batch_into_new_pack() as writer, open(source, "rb") as f:
                        for bid, off, length in keep:
                            f.seek(off)
                            writer.add(bid, f.read(length))
                db = self._index(create=True)
                assert db is not None
                with self._lock:
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany(
                        "DELETE FROM blocks WHERE cid = ? AND pack = ?",
                        [(bid.binary, pack) for bid, _, _ in blocks],
                    )
                    db.execute("COMMIT")
                (self.packs / f"{pack}.pack").unlink(missing_ok=True)
                removed += len(dead)
                freed += sum(length for _, _, length in dead)
            self._remove_debris({pack for _, pack, _, _ in self._rows()})
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"gc failed under {self.root}: {exc}") from exc
        return removed, freed

    @contextmanager
    def batch_into_new_pack(self) -> Iterator[_PackWriter]:
        writer = _PackWriter(self)
        ok = False
        try:
            yield writer
            ok = True
        finally:
            writer.finish(commit=ok)

    def _remove_debris(self, referenced: set[str]) -> None:
        """Packs no index row points to (a crash before indexing), stale temp packs and
        stale temp block files (a crash mid-write)."""
        now = time.time()
        if self._blocks.is_dir():
            for shard in os.scandir(self._blocks):
                if not shard.is_dir():
                    continue
                for entry in os.scandir(shard.path):
                    if entry.name.startswith(".") and now - entry.stat().st_mtime > _STALE_SECONDS:
                        os.unlink(entry.path)
        if not self.packs.is_dir():
            return
        for entry in os.scandir(self.packs):
            orphan = entry.name.endswith(".pack") and entry.name[:-5] not in referenced
            old = now - entry.stat().st_mtime > _STALE_SECONDS
            stale = entry.name.endswith(".pack.tmp") and old
            if orphan or stale:
                os.unlink(entry.path)


def _open_index(path: Path, fsync: bool) -> sqlite3.Connection:
    """The pack index (block -> pack, offset, length)."""
    return open_shared(
        path,
        "FULL" if fsync else "OFF",
        "CREATE TABLE IF NOT EXISTS blocks (cid BLOB PRIMARY KEY, "
        "pack TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID",
    )
