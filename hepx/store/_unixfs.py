"""dag-pb (PBNode/PBLink) and UnixFS Data protobuf codecs, written out by hand.

The wire format is tiny (varints and length-delimited fields), and encoding must be the canonical
one byte for byte so CIDs match Kubo and js-ipfs-unixfs-importer:
PBNode serializes Links (field 2) before Data (field 1); PBLink is Hash=1, Name=2, Tsize=3;
UnixFS Data writes Type=1, Data=2, filesize=3, blocksizes=4 (one unpacked field per size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hepx.errors import MalformedNode

# UnixFS Data.DataType
RAW = 0
DIRECTORY = 1
FILE = 2
METADATA = 3
SYMLINK = 4
HAMT_SHARD = 5

TYPE_NAMES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "hamt-shard"}


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedNode("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise MalformedNode("varint longer than 64 bits")


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field; values of wire type 2 are bytes."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise MalformedNode(f"field {field} runs past the end")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):  # fixed64 / fixed32: skip, no field of ours uses them
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise MalformedNode(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


@dataclass(frozen=True, slots=True)
class PBLink:
    hash: bytes  # binary CID
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


def _bytes_field(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + varint(len(value)) + value


def encode_node(links: list[PBLink] | tuple[PBLink, ...], data: bytes | None) -> bytes:
    """Canonical dag-pb bytes. Links must already be in their final (sorted) order."""
    parts = []
    for link in links:
        body = (
            _bytes_field(0x0A, link.hash)
            + _bytes_field(0x12, link.name.encode("utf-8"))
            + b"\x18"
            + varint(link.tsize)
        )
        parts.append(_bytes_field(0x12, body))
    if data is not None:
        parts.append(_bytes_field(0x0A, data))
    return b"".join(parts)


def decode_node(block: bytes) -> PBNode:
    links: list[PBLink] = []
    data: bytes | None = None
    for field, wire, value in _fields(block):
        if field == 2 and isinstance(value, bytes):
            links.append(_decode_link(value))
        elif field == 1 and isinstance(value, bytes):
            data = bytes(value)
        else:
            raise MalformedNode(f"unexpected PBNode field {field} (wire type {wire})")
    return PBNode(tuple(links), data)


def _decode_link(buf: bytes) -> PBLink:
    hash_: bytes | None = None
    name, tsize = "", 0
    for field, _wire, value in _fields(buf):
        if field == 1 and isinstance(value, bytes):
            hash_ = bytes(value)
        elif field == 2 and isinstance(value, bytes):
            try:
                name = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedNode("link name is not UTF-8") from exc
        elif field == 3 and isinstance(value, int):
            tsize = value
    if hash_ is None:
        raise MalformedNode("link without Hash")
    return PBLink(hash_, name, tsize)


@dataclass(frozen=True, slots=True)
class UnixFsData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        """File bytes under this node (filesize when set, else inline data + children)."""
        if self.filesize is not None:
            return self.filesize
        return len(self.data or b"") + sum(self.blocksizes)


def encode_unixfs(
    type_: int,
    data: bytes | None = None,
    filesize: int | None = None,
    blocksizes: Sequence[int] = (),
) -> bytes:
    out = b"\x08" + varint(type_)
    if data:
        out += _bytes_field(0x12, data)
    if filesize is not None:
        out += b"\x18" + varint(filesize)
    return out + b"".join(b"\x20" + varint(size) for size in blocksizes)


def decode_unixfs(buf: bytes) -> UnixFsData:
    type_: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for field, _wire, value in _fields(buf):
        if field == 1 and isinstance(value, int):
            type_ = value
        elif field == 2 and isinstance(value, bytes):
            data = bytes(value)
        elif field == 3 and isinstance(value, int):
            filesize = value
        elif field == 4:
            if isinstance(value, int):
                blocksizes.append(value)
            else:  # packed encoding, which some writers use
                pos = 0
                while pos < len(value):
                    size, pos = read_varint(value, pos)
                    blocksizes.append(size)
    if type_ is None:
        raise MalformedNode("UnixFS Data without Type")
    return UnixFsData(type_, data, filesize, tuple(blocksizes))
