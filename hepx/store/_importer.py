"""Files and directories -> UnixFS blocks, laid out exactly as Kubo's
``ipfs add --cid-version=1 --raw-leaves`` (and js-ipfs-unixfs-importer's defaults) do:
256 KiB raw leaves, balanced tree of at most 174 links per dag-pb node, sorted directories.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hepx.errors import StoreError
from hepx.store._cid import DAG_PB, RAW, BlockId
from hepx.store._unixfs import DIRECTORY, FILE, PBLink, encode_node, encode_unixfs

CHUNK_SIZE = 262_144
MAX_LINKS = 174
# Kubo and the JS importer turn a directory into a HAMT shard once the sum of its link names'
# UTF-8 bytes plus CID bytes exceeds this; we do not write HAMT shards, so we refuse instead.
SHARD_THRESHOLD = 262_144
_CID_BYTES = 36

Put = Callable[[int, bytes], BlockId]


@dataclass(frozen=True, slots=True)
class Added:
    """A DAG just written: its root, Tsize (all encoded blocks) and file bytes."""

    bid: BlockId
    tsize: int
    filesize: int


def chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Fixed 256 KiB chunks (short reads are topped up); one empty chunk for empty input."""
    emitted = False
    while True:
        chunk = stream.read(CHUNK_SIZE)
        while chunk and len(chunk) < CHUNK_SIZE:
            more = stream.read(CHUNK_SIZE - len(chunk))
            if not more:
                break
            chunk += more
        if not chunk:
            if not emitted:
                yield b""
            return
        emitted = True
        yield chunk


def _parent(put: Put, children: list[Added]) -> Added:
    # Empty leaves only occur for an empty file, which is a single leaf and never gets here.
    sizes = [c.filesize for c in children]
    data = encode_unixfs(FILE, filesize=sum(sizes), blocksizes=sizes)
    block = encode_node([PBLink(c.bid.binary, "", c.tsize) for c in children], data)
    return Added(put(DAG_PB, block), len(block) + sum(c.tsize for c in children), sum(sizes))


def add_stream(put: Put, stream: BinaryIO) -> Added:
    """Import one file, holding at most one chunk plus 174 links per tree level in memory.

    Equivalent to batching all leaves 174 at a time, then those parents, and so on (the JS
    "balanced" layout), but reduces each batch as soon as it is full.
    """
    levels: list[list[Added]] = [[]]
    for chunk in chunks(stream):
        levels[0].append(Added(put(RAW, chunk), len(chunk), len(chunk)))
        k = 0
        while len(levels[k]) == MAX_LINKS:
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(_parent(put, levels[k]))
            levels[k] = []
            k += 1
    k = 0
    while True:
        top = k == len(levels) - 1
        if top and len(levels[k]) == 1:
            return levels[k][0]  # one leaf (a small file) or the finished root
        if levels[k]:
            if top:
                levels.append([])
            levels[k + 1].append(_parent(put, levels[k]))
            levels[k] = []
        k += 1


def cid_of_bytes(data: bytes) -> str:
    """The CID ``data`` gets when added (as ``LocalStore.add_bytes`` does), storing nothing."""
    return str(add_stream(BlockId.of, io.BytesIO(data)).bid)


def add_file(put: Put, path: Path) -> Added:
    try:
        # Check before opening: opening a FIFO would block until someone writes to it.
        if not stat.S_ISREG(os.stat(path).st_mode):
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise StoreError(f"{path} is {kind}; add_file takes a regular file")
        with open(path, "rb") as stream:
            return add_stream(put, stream)
    except FileNotFoundError:
        raise StoreError(f"no such file: {path}") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc


def add_dir(put: Put, path: Path) -> Added:
    """Import a directory tree. Symlinks and special files inside it are refused."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except NotADirectoryError:
        raise StoreError(f"{path} is not a directory") from None
    except FileNotFoundError:
        raise StoreError(f"no such directory: {path}") from None
    except OSError as exc:
        raise StoreError(f"cannot list {path}: {exc}") from exc
    links: list[PBLink] = []
    estimate = 0
    for entry in entries:
        child_path = Path(entry.path)
        try:
            name = entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreError(f"{child_path}: file name is not valid UTF-8; rename it") from None
        if entry.is_symlink():
            raise StoreError(
                f"refusing symlink {child_path}: the store holds regular files and directories "
                "only; replace the link by a copy of its target"
            )
        if entry.is_dir(follow_symlinks=False):
            child = add_dir(put, child_path)
        elif entry.is_file(follow_symlinks=False):
            child = add_file(put, child_path)
        else:
            raise StoreError(f"refusing {child_path}: not a regular file or directory")
        links.append(PBLink(child.bid.binary, entry.name, child.tsize))
        estimate += len(name) + _CID_BYTES
    if estimate > SHARD_THRESHOLD:
        raise StoreError(
            f"{path} has {len(links)} entries, too many for one directory block (IPFS would "
            "write a HAMT shard, which hepx does not); split it into subdirectories"
        )
    links.sort(key=lambda link: link.name.encode("utf-8"))
    block = encode_node(links, encode_unixfs(DIRECTORY))
    return Added(put(DAG_PB, block), len(block) + sum(link.tsize for link in links), 0)
