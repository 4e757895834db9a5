"""CAR v1 (content-addressed archives): the wire format for moving whole DAGs.

A CAR is ``varint(len(header)) header`` then ``varint(len(cid) + len(block)) cid block`` per
block, where the header is the dag-cbor map ``{"roots": [CID, ...], "version": 1}``. The header
is tiny and has one shape, so it is encoded and decoded here by hand rather than pulling in a
CBOR library. Blocks are written depth-first in pre-order, each once, as Kubo's ``ipfs dag
export`` does, so the same DAG always gives the same CAR bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from hepx.errors import BlockCorrupted, InvalidCar, MalformedNode, StoreError
from hepx.store._cid import DAG_PB, RAW, SHA2_256, BlockId, block_id_from_binary
from hepx.store._unixfs import decode_node, read_varint, varint

# A header or a block larger than this is refused before reading it: no UnixFS block we write
# is over 1 MiB, and Kubo and the trustless gateway spec cap blocks at 2 MiB.
MAX_SECTION = 4 << 20
_CID_TAG = b"\xd8\x2a"  # dag-cbor tag 42 (CID), as a one-byte-argument major type 6


# -- writing --------------------------------------------------------------------------


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes((major << 5 | extra,)) + n.to_bytes(width, "big")
    raise ValueError(f"{n} does not fit a CBOR head")


def encode_header(roots: list[BlockId]) -> bytes:
    """The dag-cbor header, keys in dag-cbor order (shorter key first: roots, version)."""
    out = b"\xa2" + _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for root in roots:
        cid = b"\x00" + root.binary  # a CID in dag-cbor is tag 42 over 0x00 + binary CID
        out += _CID_TAG + _cbor_head(2, len(cid)) + cid
    return out + _cbor_head(3, 7) + b"version\x01"


def links_of(bid: BlockId, block: bytes) -> list[BlockId]:
    """The blocks a block links to (none for raw leaves)."""
    if bid.codec == RAW:
        return []
    try:
        return [block_id_from_binary(link.hash) for link in decode_node(block).links]
    except MalformedNode as exc:
        raise StoreError(f"block {bid} is not valid dag-pb: {exc}") from exc


def dag_blocks(
    get: Callable[[BlockId], bytes], roots: list[BlockId]
) -> Iterator[tuple[BlockId, bytes]]:
    """Every block under ``roots``, depth-first pre-order, each block once."""
    seen: set[BlockId] = set()
    stack = list(reversed(roots))
    while stack:
        bid = stack.pop()
        if bid in seen:
            continue
        seen.add(bid)
        block = get(bid)
        yield bid, block
        stack.extend(reversed(links_of(bid, block)))


def write_car(roots: list[BlockId], blocks: Iterator[tuple[BlockId, bytes]]) -> Iterator[bytes]:
    """CAR bytes, one piece per section; memory stays at one block."""
    header = encode_header(roots)
    yield varint(len(header)) + header
    for bid, block in blocks:
        cid = bid.binary
        yield varint(len(cid) + len(block)) + cid
        yield block


# -- reading --------------------------------------------------------------------------


class _Stream:
    """Exact reads with a byte offset, for error messages that say where a CAR broke."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.offset = 0

    def exact(self, n: int, what: str) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            piece = self._raw.read(n - got)
            if not piece:
                raise InvalidCar(
                    f"CAR truncated at byte {self.offset + got}: {what} needs {n} bytes, got {got}"
                )
            parts.append(piece)
            got += len(piece)
        self.offset += n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def varint(self, what: str) -> int | None:
        """A varint, or None at a clean end of stream (before its first byte)."""
        value = shift = 0
        start = self.offset
        while True:
            byte = self._raw.read(1)
            if not byte:
                if self.offset == start:
                    return None
                raise InvalidCar(f"CAR truncated inside the {what} varint at byte {start}")
            self.offset += 1
            value |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise InvalidCar(f"{what} varint at byte {start} is longer than 64 bits")


def _read_uvarint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    try:
        return read_varint(buf, pos)
    except MalformedNode as exc:
        raise InvalidCar(f"{exc} in {what}") from exc


def split_cid(section: bytes, where: str) -> tuple[BlockId, int]:
    """The CID at the start of a section and where the block starts; sha2-256 only."""
    if section[:2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash, implicitly dag-pb
        if len(section) < 34:
            raise InvalidCar(f"{where}: truncated CIDv0")
        return BlockId(DAG_PB, bytes(section[2:34])), 34
    version, pos = _read_uvarint(section, 0, where)
    if version != 1:
        raise InvalidCar(f"{where}: CID version {version}, expected 1 (or a CIDv0)")
    codec, pos = _read_uvarint(section, pos, where)
    hashfun, pos = _read_uvarint(section, pos, where)
    size, pos = _read_uvarint(section, pos, where)
    if codec not in (RAW, DAG_PB):
        raise InvalidCar(f"{where}: codec 0x{codec:x} is not supported (raw or dag-pb only)")
    if hashfun != SHA2_256 or size != 32:
        raise InvalidCar(f"{where}: multihash 0x{hashfun:x}/{size} is not sha2-256")
    if pos + size > len(section):
        raise InvalidCar(f"{where}: truncated CID digest")
    return BlockId(codec, bytes(section[pos : pos + size])), pos + size


def _decode_cbor(buf: bytes, pos: int, depth: int = 0) -> tuple[object, int]:
    """Just enough dag-cbor for a CAR header: maps, arrays, strings, uints, tag 42."""
    if depth > 8 or pos >= len(buf):
        raise InvalidCar("CAR header is not a dag-cbor map {roots, version}")
    major, info = buf[pos] >> 5, buf[pos] & 0x1F
    pos += 1
    if info < 24:
        n = info
    elif 24 <= info <= 27:
        width = 1 << (info - 24)
        n = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
    else:
        raise InvalidCar("CAR header uses indefinite-length CBOR, which dag-cbor forbids")
    if major == 0:
        return n, pos
    if major in (2, 3):
        if pos + n > len(buf):
            raise InvalidCar("CAR header: CBOR string runs past its end")
        raw = buf[pos : pos + n]
        return (raw if major == 2 else raw.decode("utf-8", "replace")), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _decode_cbor(buf, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        out: dict[object, object] = {}
        for _ in range(n):
            key, pos = _decode_cbor(buf, pos, depth + 1)
            out[key], pos = _decode_cbor(buf, pos, depth + 1)
        return out, pos
    if major == 6 and n == 42:
        inner, pos = _decode_cbor(buf, pos, depth + 1)
        if not isinstance(inner, bytes) or inner[:1] != b"\x00":
            raise InvalidCar("CAR header: tag 42 does not hold a 0x00-prefixed CID")
        bid, end = split_cid(inner[1:], "CAR header root")
        if end != len(inner) - 1:
            raise InvalidCar("CAR header: trailing bytes after a root CID")
        return bid, pos
    raise InvalidCar(f"CAR header holds a CBOR item (major type {major}) it should not")


def decode_header(header: bytes) -> list[BlockId]:
    value, end = _decode_cbor(header, 0)
    if end != len(header) or not isinstance(value, dict):
        raise InvalidCar("CAR header is not a single dag-cbor map {roots, version}")
    if value.get("version") != 1:
        raise InvalidCar(f"CAR version {value.get('version')!r} is not supported; only v1")
    roots = value.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, BlockId) for r in roots):
        raise InvalidCar("CAR header 'roots' is not a list of CIDs")
    return [r for r in roots if isinstance(r, BlockId)]


class CarReader:
    """Reads a CAR stream: ``roots`` at once, then verified ``(bid, block)`` pairs.

    Every block is hashed against its CID as it is read; a mismatch raises BlockCorrupted
    naming the CID, and a short or malformed stream raises InvalidCar with the byte offset.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._in = _Stream(stream)
        size = self._in.varint("header length")
        if size is None:
            raise InvalidCar("empty input: a CAR starts with a varint-prefixed header")
        if size == 0 or size > MAX_SECTION:
            raise InvalidCar(f"CAR header length {size} is not plausible; is this a CAR file?")
        self.roots = decode_header(self._in.exact(size, "the header"))

    def __iter__(self) -> Iterator[tuple[BlockId, bytes]]:
        while True:
            start = self._in.offset
            size = self._in.varint("section length")
            if size is None:
                return
            if size > MAX_SECTION:
                raise InvalidCar(f"section at byte {start} claims {size} bytes, over the limit")
            section = self._in.exact(size, f"the section at byte {start}")
            bid, cut = split_cid(section, f"section at byte {start}")
            block = section[cut:]
            digest = hashlib.sha256(block).digest()
            if digest != bid.digest:
                raise BlockCorrupted(
                    str(bid), f"the CAR's {len(block)} bytes hash to sha2-256 {digest.hex()}"
                )
            yield bid, block
