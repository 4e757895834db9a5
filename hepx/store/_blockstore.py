"""Blocks on disk: one file per block, written atomically, verified on every read.

Crash safety: a block's bytes are written under a temporary name and only renamed to its CID
once they are on disk, so a crash never leaves an incomplete block under a CID name. Adding a
file writes many blocks; doing that one fsync at a time costs more than the whole rest of the
add, so :meth:`Blockstore.batch` writes them from a background thread (while the caller reads
and hashes the next chunk) and makes them durable with one ``syncfs`` before renaming.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hepx.errors import BlockCorrupted, BlockNotFound, StoreError
from hepx.store._cid import BlockId, block_id

# Blocks handed to the writer thread but not yet written: bounds the memory of a batch.
_QUEUE_BLOCKS = 8
# A batch makes its blocks durable and visible every this many bytes, so a huge add does not
# pile up thousands of temporary files.
_BATCH_BYTES = 256 << 20


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs; a global sync elsewhere)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class _Batch:
    """Blocks written by a background thread under temp names, renamed together at flush."""

    def __init__(self, store: Blockstore) -> None:
        self.store = store
        self.pending: dict[BlockId, tuple[Path, Path]] = {}
        self.bytes = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[tuple[Path, bytes] | None] = queue.Queue(_QUEUE_BLOCKS)
        self.thread = threading.Thread(target=self._write_loop, daemon=True)
        self.thread.start()

    def _write_loop(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.store._write(*item, fsync=False)
                except BaseException as exc:  # reported by the caller's thread at flush
                    self.error = exc

    def put(self, bid: BlockId, data: bytes) -> None:
        if bid in self.pending:
            return
        path = self.store.path_for(bid)
        if self.store._intact(bid, path):
            return
        tmp = self.store._tmp_name(path)
        self.pending[bid] = (tmp, path)
        self.queue.put((tmp, data))
        self.bytes += len(data)
        if self.bytes >= _BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Wait for the writer, make the temp files durable, then rename them into place."""
        self.queue.put(None)
        self.thread.join()
        try:
            if self.error is not None:
                raise StoreError(f"cannot write blocks under {self.store.root}: {self.error}")
            if self.pending and self.store._fsync:
                _syncfs(self.store.root)
            for tmp, path in self.pending.values():
                os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot store blocks under {self.store.root}: {exc}") from exc
        finally:
            for tmp, _ in self.pending.values():
                tmp.unlink(missing_ok=True)
        self.pending.clear()
        self.bytes = 0
        self.thread = threading.Thread(target=self._write_loop, daemon=True)
        self.thread.start()

    def close(self, commit: bool) -> None:
        if commit:
            self.flush()
        self.queue.put(None)
        self.thread.join()
        for tmp, _ in self.pending.values():
            tmp.unlink(missing_ok=True)


class Blockstore:
    """``<root>/blocks/<2 chars>/<cid>``: the shard is the next-to-last two characters of the
    CID text (as Kubo's flatfs does), which are uniformly distributed digest bits."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._fsync = fsync
        self._shards: set[Path] = set()  # shard folders known to exist
        self._batch: _Batch | None = None

    def path_for(self, bid: BlockId) -> Path:
        text = str(bid)
        return self._blocks / text[-3:-1] / text

    def has(self, bid: BlockId) -> bool:
        if self._batch is not None and bid in self._batch.pending:
            return True
        return self.path_for(bid).is_file()

    def get(self, bid: BlockId) -> bytes:
        """The block's bytes after checking them against the CID's digest."""
        try:
            data = self.path_for(bid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(str(bid)) from None
        except OSError as exc:
            raise StoreError(f"cannot read block {bid}: {exc}") from exc
        digest = hashlib.sha256(data).digest()
        if digest != bid.digest:
            raise BlockCorrupted(str(bid), f"its {len(data)} bytes hash to sha2-256 {digest.hex()}")
        return data

    def _intact(self, bid: BlockId, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            self.get(bid)
            return True
        except BlockCorrupted:
            return False  # re-adding heals a damaged block

    def _tmp_name(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")

    def _write(self, tmp: Path, data: bytes, *, fsync: bool) -> None:
        parent = tmp.parent
        if parent not in self._shards:
            parent.mkdir(parents=True, exist_ok=True)
            self._shards.add(parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, bid: BlockId, data: bytes) -> None:
        """Store ``data`` under ``bid`` (the caller computed ``bid`` from ``data``).

        An existing intact block is kept; a damaged one is replaced, so re-adding heals it.
        """
        if self._batch is not None:
            self._batch.put(bid, data)
            return
        path = self.path_for(bid)
        if self._intact(bid, path):
            return
        # Write to a unique temporary name in the same directory, then rename: a crash leaves
        # at worst a stray temp file, never a partial block under a CID name.
        tmp = self._tmp_name(path)
        try:
            self._write(tmp, data, fsync=self._fsync)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write block {bid} under {self.root}: {exc}") from exc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group puts: written in the background, durable and visible when the block exits
        (nothing of a failed batch becomes visible, except parts already flushed)."""
        if self._batch is not None:  # nested: the outer batch commits
            yield
            return
        self._batch = batch = _Batch(self)
        ok = False
        try:
            yield
            ok = True
        finally:
            self._batch = None
            batch.close(commit=ok)

    # -- whole-store operations (import commit, gc) ---------------------------------------

    def adopt(self, other: Blockstore) -> None:
        """Move every block of ``other`` (a staging store on the same filesystem) into this
        one. Its blocks were verified and made durable when they were staged."""
        moved = False
        for bid, _size in other.iter_blocks():
            path = self.path_for(bid)
            if path.parent not in self._shards:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._shards.add(path.parent)
            try:
                os.replace(other.path_for(bid), path)
            except OSError as exc:
                raise StoreError(f"cannot move block {bid} into {self.root}: {exc}") from exc
            moved = True
        if moved and self._fsync:
            _syncfs(self.root)

    def iter_blocks(self) -> Iterator[tuple[BlockId, int]]:
        """(id, size) of every stored block; temp files and foreign names are skipped."""
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

    def delete(self, bid: BlockId) -> None:
        try:
            self.path_for(bid).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete block {bid}: {exc}") from exc
