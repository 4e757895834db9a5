"""LocalStore: add, read, list and export UnixFS content in a local blockstore.

Over 500 lines because every operation here walks the same verified DAG nodes (_Node, the
path resolution, the prefetching reader); the block files, CAR codec, pins and remote
fetching each have their own module."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from hepx.errors import BlockNotFound, InvalidCar, MalformedNode, PathNotFound, StoreError
from hepx.store import _importer
from hepx.store._blockstore import Blockstore
from hepx.store._car import CarReader, dag_blocks, links_of, write_car
from hepx.store._cid import RAW, BlockId, block_id, block_id_from_binary, codec_code
from hepx.store._pins import Pin, Pins
from hepx.store._unixfs import (
    DIRECTORY,
    FILE,
    TYPE_NAMES,
    PBNode,
    UnixFsData,
    decode_node,
    decode_unixfs,
)
from hepx.store._unixfs import (
    RAW as UNIXFS_RAW,
)


class BlockSource(Protocol):
    """Where a store reads blocks from (verified against their CIDs)."""

    def has(self, bid: BlockId) -> bool: ...
    def get(self, bid: BlockId) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """A file or directory. ``size`` is the file's byte count (UnixFS filesize); for a
    directory it is the total encoded size of its DAG (the link Tsize, as ``ipfs ls`` shows).
    ``name`` is the link name inside the parent directory ("" for a bare CID)."""

    name: str
    cid: str
    size: int
    is_dir: bool


@dataclass(frozen=True, slots=True)
class _Node:
    bid: BlockId
    block: bytes
    pb: PBNode | None  # None for a raw block
    unixfs: UnixFsData | None

    @property
    def is_dir(self) -> bool:
        return self.unixfs is not None and self.unixfs.type == DIRECTORY


class LocalStore:
    """A content store in a folder. CIDs are those of ``ipfs add --cid-version=1 --raw-leaves``.

    ``fsync=False`` skips flushing each block to disk (for tests and scratch stores); renames
    still keep a partial block from ever appearing under its CID.
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._fsync = fsync
        self._blocks: BlockSource = Blockstore(self.root, fsync=fsync)
        self.pins = Pins(self.root / "pins")

    # -- adding ---------------------------------------------------------------------------

    def _batch(self) -> AbstractContextManager[None]:
        if not isinstance(self._blocks, Blockstore):
            raise StoreError("this view of the store is read-only")
        return self._blocks.batch()

    def batch(self) -> AbstractContextManager[None]:
        """Everything added in the block goes into one pack, durable and visible together
        when it exits (one fsync for many small adds, as a batch of job specs is); nothing
        of it if the block raises. Where the blocks live elsewhere (a Kubo node), no-op."""
        return self._batch() if isinstance(self._blocks, Blockstore) else contextlib.nullcontext()

    def _put(self, codec: int, data: bytes) -> BlockId:
        bid = BlockId.of(codec, data)
        if not isinstance(self._blocks, Blockstore):
            raise StoreError("this view of the store is read-only")
        self._blocks.put(bid, data)
        return bid

    def add_stream(self, stream: BinaryIO) -> str:
        """Add a file from a binary stream, read in 256 KiB chunks."""
        with self._batch():
            return str(_importer.add_stream(self._put, stream).bid)

    def add_bytes(self, data: bytes) -> str:
        return self.add_stream(io.BytesIO(data))

    def add_file(self, path: Path) -> str:
        with self._batch():
            return str(_importer.add_file(self._put, Path(path)).bid)

    def add_dir(self, path: Path) -> str:
        """Add a directory tree (every file, hidden ones too); symlinks inside it are refused."""
        with self._batch():
            return str(_importer.add_dir(self._put, Path(path)).bid)

    def add_path(self, path: Path) -> str:
        path = Path(path)
        if path.is_dir():
            return self.add_dir(path)
        return self.add_file(path)

    def put_block(self, data: bytes, codec: str) -> str:
        """Store one block as is (``codec`` 'raw' or 'dag-pb'); return its CID."""
        return str(self._put(codec_code(codec), data))

    # -- reading --------------------------------------------------------------------------

    def get_block(self, cid: str) -> bytes:
        """The block's bytes, verified against the CID."""
        return self._blocks.get(block_id(cid))

    def _node(self, bid: BlockId) -> _Node:
        block = self._blocks.get(bid)
        if bid.codec == RAW:
            return _Node(bid, block, None, None)
        try:
            pb = decode_node(block)
            if pb.data is None:
                raise MalformedNode("dag-pb node without UnixFS Data")
            unixfs = decode_unixfs(pb.data)
        except MalformedNode as exc:
            raise StoreError(f"block {bid} is not a UnixFS node: {exc}") from exc
        if unixfs.type not in (FILE, DIRECTORY, UNIXFS_RAW):
            raise StoreError(
                f"{bid} is a UnixFS {TYPE_NAMES.get(unixfs.type, unixfs.type)} node, "
                "which hepx does not read (only files and plain directories)"
            )
        return _Node(bid, block, pb, unixfs)

    def _entry(self, name: str, node: _Node) -> Entry:
        if node.unixfs is None:
            return Entry(name, str(node.bid), len(node.block), False)
        if node.is_dir:
            assert node.pb is not None
            size = len(node.block) + sum(link.tsize for link in node.pb.links)
            return Entry(name, str(node.bid), size, True)
        return Entry(name, str(node.bid), node.unixfs.size, False)

    def stat(self, cid: str) -> Entry:
        return self._entry("", self._node(block_id(cid)))

    def ls(self, cid: str) -> list[Entry]:
        """Entries of a directory, sorted by name."""
        node = self._dir_node(cid)
        assert node.pb is not None
        return [
            self._entry(link.name, self._node(self._link_id(node, link.hash)))
            for link in node.pb.links
        ]

    def _dir_node(self, cid: str) -> _Node:
        node = self._node(block_id(cid))
        if not node.is_dir:
            raise StoreError(f"{cid} is a file, not a directory")
        return node

    @staticmethod
    def _link_id(node: _Node, binary: bytes) -> BlockId:
        try:
            return block_id_from_binary(binary)
        except StoreError as exc:
            raise StoreError(f"block {node.bid} links to an unreadable CID: {exc}") from exc

    def resolve(self, cid: str, path: str) -> str:
        """CID of ``path`` ("a/b.txt") inside the directory ``cid``."""
        node = self._node(block_id(cid))
        walked: list[str] = []
        for part in (p for p in path.split("/") if p):
            if not node.is_dir:
                raise PathNotFound(cid, path, f"{'/'.join(walked) or 'root'} is not a directory")
            assert node.pb is not None
            link = next((lk for lk in node.pb.links if lk.name == part), None)
            walked.append(part)
            if link is None:
                raise PathNotFound(cid, path, f"no entry {'/'.join(walked)!r}")
            node = self._node(self._link_id(node, link.hash))
        return str(node.bid)

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """File bytes ``[offset, offset+length)`` in verified chunks of up to 256 KiB.

        Subtrees outside the range are skipped using the UnixFS blocksizes, so a range read
        only fetches the blocks on its path.
        """
        if offset < 0 or (length is not None and length < 0):
            raise StoreError(f"bad range: offset={offset} length={length}; both must be >= 0")
        # Read the root now, not on first next(): a missing or bad CID fails at the call,
        # before a caller (say, an HTTP handler) has committed to a response.
        node = self._node(block_id(cid))
        if node.is_dir:
            raise StoreError(f"{cid} is a directory; use ls or get")
        end = self._entry("", node).size if length is None else offset + length
        chunks = self._read(node, offset, end, None)
        # Large reads fetch and verify the next blocks on another core while the caller
        # consumes this one (hashing is most of the cost and releases the GIL).
        return _read_ahead(chunks) if end - offset > _READ_AHEAD_MIN else chunks

    def _read(self, node: _Node, start: int, end: int, expected: int | None) -> Iterator[bytes]:
        if node.unixfs is None:  # raw leaf
            if expected is not None and len(node.block) != expected:
                raise StoreError(
                    f"leaf {node.bid} has {len(node.block)} bytes, its parent says {expected}"
                )
            if start < end and start < len(node.block):
                yield node.block[start:end]
            return
        assert node.pb is not None
        if node.is_dir:
            raise StoreError(f"file DAG links to directory {node.bid}")
        if expected is not None and node.unixfs.size != expected:
            raise StoreError(
                f"node {node.bid} holds {node.unixfs.size} bytes, its parent says {expected}"
            )
        data = node.unixfs.data or b""
        sizes = node.unixfs.blocksizes
        if len(sizes) != len(node.pb.links):
            raise StoreError(
                f"block {node.bid} has {len(node.pb.links)} links but {len(sizes)} blocksizes"
            )
        if start < min(end, len(data)):
            yield data[start:end]
        pos = len(data)
        for link, size in zip(node.pb.links, sizes, strict=True):
            if pos >= end:
                return
            if pos + size > start:
                child = self._node(self._link_id(node, link.hash))
                yield from self._read(child, max(start - pos, 0), min(end - pos, size), size)
            pos += size

    def read_bytes(self, cid: str) -> bytes:
        """A whole file in memory: for small files only."""
        bid = block_id(cid)
        if bid.codec == RAW:  # a file of one block (a job spec): the block is the file
            return self._blocks.get(bid)
        return b"".join(self.cat(cid))

    def has(self, cid: str) -> bool:
        """True when every block of the DAG is present (intermediate blocks are verified)."""
        return self._has(block_id(cid))

    def _has(self, bid: BlockId) -> bool:
        if bid.codec == RAW:
            return self._blocks.has(bid)
        if not self._blocks.has(bid):
            return False
        node = self._node(bid)
        assert node.pb is not None
        return all(self._has(self._link_id(node, link.hash)) for link in node.pb.links)

    def get(self, cid: str, dest: Path) -> None:
        """Write a file, or a whole directory tree, to ``dest`` (which must not exist, except
        as an empty directory for a directory CID)."""
        dest = Path(dest)
        node = self._node(block_id(cid))
        if dest.exists() and not (node.is_dir and dest.is_dir() and not any(dest.iterdir())):
            raise StoreError(f"{dest} already exists; remove it or choose another destination")
        self._get(node, dest)

    def _get(self, node: _Node, dest: Path) -> None:
        if not node.is_dir:
            tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.part")
            try:
                with open(tmp, "wb") as out:
                    for chunk in self._read(node, 0, self._entry("", node).size, None):
                        out.write(chunk)
                os.replace(tmp, dest)
            except OSError as exc:
                raise StoreError(f"cannot write {dest}: {exc}") from exc
            finally:
                tmp.unlink(missing_ok=True)
            return
        assert node.pb is not None
        try:
            dest.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create directory {dest}: {exc}") from exc
        for link in node.pb.links:
            # Names come from possibly hostile DAGs: never let one climb out of dest.
            if link.name in ("", ".", "..") or "/" in link.name or "\x00" in link.name:
                raise StoreError(f"directory {node.bid} has an unsafe entry name {link.name!r}")
            self._get(self._node(self._link_id(node, link.hash)), dest / link.name)

    # -- blocks as stored (tools and tests) ---------------------------------------------------

    def _disk(self) -> Blockstore:
        if not isinstance(self._blocks, Blockstore):
            raise StoreError("this store keeps no blocks on local disk")
        return self._blocks

    def blocks(self) -> Iterator[tuple[str, int]]:
        """(CID, size) of every block on disk, loose or packed, reachable or not."""
        for bid, size in self._disk().iter_blocks():
            yield str(bid), size

    def block_location(self, cid: str) -> tuple[Path, int, int]:
        """(file, offset, length) where a block's bytes sit, for repair tools and tests."""
        return self._disk().locate(block_id(cid))

    def drop_block(self, cid: str) -> None:
        """Forget one block (pinned or not); gc reclaims its space."""
        self._disk().drop(block_id(cid))

    # -- CAR ------------------------------------------------------------------------------

    def export_car(self, cid: str, path: str = "") -> Iterator[bytes]:
        """The DAG of ``cid`` as CAR v1 bytes (root first, depth-first, each block once).

        With ``path``, the CAR keeps ``cid`` as its root and holds the directory blocks along
        the path, then the whole DAG of its target, so a client can verify the path too
        (as a trustless gateway does). Missing blocks fail before the first byte.
        """
        root = block_id(cid)
        steps = self._path_blocks(root, path)
        target = steps[-1]
        if not self.has(str(target)):
            raise BlockNotFound(f"{cid}{'/' + path.strip('/') if path.strip('/') else ''}")
        prefix = [(bid, self._blocks.get(bid)) for bid in steps[:-1]]
        return write_car([root], _chain(prefix, dag_blocks(self._blocks.get, [target])))

    def _path_blocks(self, root: BlockId, path: str) -> list[BlockId]:
        """The block ids from ``root`` down to the target of ``path`` (root alone for "")."""
        steps = [root]
        walked: list[str] = []
        node = self._node(root)
        for part in (p for p in path.split("/") if p):
            if not node.is_dir:
                raise PathNotFound(
                    str(root), path, f"{'/'.join(walked) or 'root'} is not a directory"
                )
            assert node.pb is not None
            link = next((lk for lk in node.pb.links if lk.name == part), None)
            walked.append(part)
            if link is None:
                raise PathNotFound(str(root), path, f"no entry {'/'.join(walked)!r}")
            node = self._node(self._link_id(node, link.hash))
            steps.append(node.bid)
        return steps

    def import_car(self, stream: BinaryIO, *, root: str | None = None, path: str = "") -> list[str]:
        """Store every block of a CAR; return its root CIDs.

        All or nothing: blocks are verified and staged first, and only once the whole stream
        has been read and each root's DAG is complete (with blocks already stored counting)
        are they moved into the store. With ``root``, the CAR must have exactly that root and
        (with ``path``) the blocks to walk ``path`` under it and the whole DAG it names; a
        gateway that lies about any of it is caught here.
        """
        staging = self.root / "staging" / f"import-{os.getpid()}-{os.urandom(6).hex()}"
        staged = Blockstore(staging, fsync=self._fsync)
        try:
            reader = CarReader(stream)
            with staged.batch():
                for bid, block in reader:
                    staged.put(bid, block)
            roots = [str(r) for r in reader.roots]
            view = self._overlay(staged)
            if root is not None:
                wanted = block_id(root)
                if reader.roots != [wanted]:
                    raise InvalidCar(
                        f"asked for the DAG of {root} but the CAR's roots are {roots or 'empty'}"
                    )
                targets = [view._path_blocks(wanted, path)[-1]]
            else:
                targets = list(reader.roots)
            for target in targets:
                missing = view._first_missing(target)
                if missing is not None:
                    raise InvalidCar(
                        f"the CAR is incomplete: block {missing} under root {target} is "
                        "neither in it nor in the store (truncated download or export?)"
                    )
            self._blocks_commit(staged)
            return roots
        except BlockNotFound as exc:
            raise InvalidCar(f"the CAR is incomplete: {exc}") from exc
        finally:
            staged.close()
            shutil.rmtree(staging, ignore_errors=True)

    def _overlay(self, staged: Blockstore) -> LocalStore:
        view = LocalStore.__new__(LocalStore)
        view.root, view._fsync, view.pins = self.root, self._fsync, self.pins
        view._blocks = _Overlay(staged, self._blocks)
        return view

    def _first_missing(self, root: BlockId) -> BlockId | None:
        stack, seen = [root], set()
        while stack:
            bid = stack.pop()
            if bid in seen:
                continue
            seen.add(bid)
            if not self._blocks.has(bid):
                return bid
            if bid.codec != RAW:
                stack.extend(links_of(bid, self._blocks.get(bid)))
        return None

    def _blocks_commit(self, staged: Blockstore) -> None:
        assert isinstance(self._blocks, Blockstore)
        self._blocks.adopt(staged)

    # -- pins and garbage collection ------------------------------------------------------

    def pin(self, name: str, cid: str, expires_at: float | None = None) -> Pin:
        """Keep the DAG of ``cid`` through gc under ``name`` (until ``expires_at``, epoch
        seconds, or for good when None). Re-pinning a name replaces it."""
        block_id(cid)  # refuse a bad CID now, not at gc time
        return self.pins.set(name, cid, expires_at)

    def unpin(self, name: str) -> bool:
        return self.pins.remove(name)

    def release_pins(self, prefixes: Iterable[str], expires_at: float) -> list[Pin]:
        """Give the pins kept for good under names starting with ``prefixes`` an expiry
        (gc collects their DAGs after it); the pins changed."""
        return self.pins.release(prefixes, expires_at)

    def verify(self) -> VerifyReport:
        """Check every block against its CID, every pin's DAG for completeness, and the
        folders for leftovers of interrupted writes."""
        assert isinstance(self._blocks, Blockstore)
        blocks, size, damaged, debris, unreferenced = self._blocks.verify()
        missing: list[str] = []
        for pin in self.pins.list():
            try:
                absent = self._first_missing(block_id(pin.cid))
            except StoreError:
                continue  # a damaged node on the way: listed as damaged already
            if absent is not None:
                missing.append(f"{absent} (needed by pin {pin.name}, {pin.cid})")
        staging = self.root / "staging"
        if staging.is_dir():
            debris += [str(p) for p in staging.iterdir()]
        return VerifyReport(blocks, size, damaged, missing, debris, unreferenced)

    def gc(self, now: float | None = None) -> GcReport:
        """Drop expired pins, then delete every block no live pin reaches.

        Pinned DAGs that are incomplete are kept as far as they go. Stale staging folders
        (left by a crash during an import) are removed too.
        """
        now = time.time() if now is None else now
        expired = self.pins.expire(now)
        live: set[BlockId] = set()
        for pin in self.pins.list():
            stack = [block_id(pin.cid)]
            while stack:
                bid = stack.pop()
                if bid in live or not self._blocks.has(bid):
                    continue
                live.add(bid)
                if bid.codec != RAW:
                    try:
                        stack.extend(links_of(bid, self._blocks.get(bid)))
                    except StoreError:
                        continue  # a damaged node: keep it, its children are unknown
        assert isinstance(self._blocks, Blockstore)
        removed, freed = self._blocks.collect(live)
        shutil.rmtree(self.root / "staging", ignore_errors=True)
        return GcReport(kept=len(live), removed=removed, bytes_freed=freed, expired=expired)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``LocalStore.verify`` found; ``ok`` when there is nothing to report."""

    blocks: int
    bytes: int
    damaged: list[str]  # blocks whose bytes do not hash to their CID, or cannot be read
    missing: list[str]  # blocks a pinned DAG needs that the store does not have
    debris: list[str]  # files an interrupted write left behind (`hepx store gc` removes them)
    unreferenced: list[str]  # packs nothing points to any more: harmless, gc reclaims them

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.missing or self.debris)


@dataclass(frozen=True, slots=True)
class GcReport:
    kept: int
    removed: int
    bytes_freed: int
    expired: list[str]


_READ_AHEAD_MIN = 4 * 262_144
_READ_AHEAD_BLOCKS = 4


def _read_ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` produced by a background thread, in order, at most a few blocks ahead.

    Errors reach the caller in their place in the stream; a caller that stops early (a
    client hanging up) stops the thread.
    """
    ahead: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(_READ_AHEAD_BLOCKS)
    stop = threading.Event()

    def offer(item: tuple[bytes | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if not offer((chunk, None)):
                    return
        except BaseException as exc:  # handed to the reader's thread, raised there
            offer((None, exc))
            return
        offer((None, None))

    threading.Thread(target=pump, daemon=True, name="hepx-read-ahead").start()
    try:
        while True:
            chunk, error = ahead.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()


class _Overlay:
    """Staged blocks over the store's, read-only: lets an import be checked before commit."""

    def __init__(self, top: Blockstore, base: BlockSource) -> None:
        self._top, self._base = top, base

    def has(self, bid: BlockId) -> bool:
        return self._top.has(bid) or self._base.has(bid)

    def get(self, bid: BlockId) -> bytes:
        return self._top.get(bid) if self._top.has(bid) else self._base.get(bid)


def _chain(
    first: Iterable[tuple[BlockId, bytes]], rest: Iterator[tuple[BlockId, bytes]]
) -> Iterator[tuple[BlockId, bytes]]:
    seen: set[BlockId] = set()
    for bid, block in first:
        seen.add(bid)
        yield bid, block
    for bid, block in rest:
        if bid not in seen:
            yield bid, block
