"""Blocks on disk: one file per block, written atomically, verified on every read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hepx.errors import BlockCorrupted, BlockNotFound, StoreError
from hepx.store._cid import BlockId


class Blockstore:
    """``<root>/blocks/<2 chars>/<cid>``: the shard is the next-to-last two characters of the
    CID text (as Kubo's flatfs does), which are uniformly distributed digest bits."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._fsync = fsync

    def path_for(self, bid: BlockId) -> Path:
        text = str(bid)
        return self._blocks / text[-3:-1] / text

    def has(self, bid: BlockId) -> bool:
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

    def put(self, bid: BlockId, data: bytes) -> None:
        """Store ``data`` under ``bid`` (the caller computed ``bid`` from ``data``).

        An existing intact block is kept; a damaged one is replaced, so re-adding heals it.
        """
        path = self.path_for(bid)
        if path.is_file():
            try:
                self.get(bid)
                return
            except BlockCorrupted:
                pass
        # Write to a unique temporary name in the same directory, then rename: a crash leaves
        # at worst a stray temp file, never a partial block under a CID name.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
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
