"""CIDs as the store uses them: CIDv1, sha2-256, codec raw or dag-pb.

Text and binary CIDs are built by hand on the hot path (a few bytes and a base32 call), because
building a ``multiformats.CID`` per 256 KiB block costs more than hashing the block.
``multiformats`` parses what users hand us, which may be any base or CIDv0.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from multiformats import CID

from hepx.errors import InvalidCid, StoreError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32
_CODECS = {"raw": RAW, "dag-pb": DAG_PB}


def parse_cid(text: str) -> CID:
    """Parse a CID in any multibase (or CIDv0); raise InvalidCid saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidCid(f"expected a CID string such as 'bafkrei...', got {text!r}")
    try:
        return CID.decode(text.strip())
    except Exception as exc:  # multiformats raises several unrelated types
        raise InvalidCid(f"not a CID: {text!r} ({exc})") from exc


@dataclass(frozen=True, slots=True)
class BlockId:
    """A block's address: its codec and the sha2-256 digest of its bytes."""

    codec: int
    digest: bytes

    @property
    def binary(self) -> bytes:
        """CIDv1 bytes (as stored in dag-pb links)."""
        return bytes((1, self.codec)) + b"\x12\x20" + self.digest

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.binary).decode("ascii").lower().rstrip("=")

    @classmethod
    def of(cls, codec: int, data: bytes) -> BlockId:
        return cls(codec, hashlib.sha256(data).digest())


def codec_code(name: str) -> int:
    """Multicodec code for a codec name the store accepts ('raw' or 'dag-pb')."""
    try:
        return _CODECS[name]
    except KeyError:
        raise StoreError(f"codec {name!r} is not supported; use 'raw' or 'dag-pb'") from None


def block_id(text: str) -> BlockId:
    """BlockId for a user-supplied CID string; CIDv0 maps to its CIDv1 dag-pb equivalent."""
    if (own := _own_form(text)) is not None:
        return own
    cid = parse_cid(text)
    codec, hashfun, digest = cid.codec.code, cid.hashfun.code, bytes(cid.raw_digest)
    if codec not in (RAW, DAG_PB):
        raise InvalidCid(f"{text}: codec {cid.codec.name} is not supported; use raw or dag-pb")
    if hashfun != SHA2_256 or len(digest) != _DIGEST_LEN:
        raise InvalidCid(f"{text}: hash {cid.hashfun.name} is not supported; use sha2-256")
    return BlockId(codec, digest)


def _own_form(text: object) -> BlockId | None:
    """The BlockId of a CID in the form the store writes (``str(BlockId)``: CIDv1, base32),
    read without multiformats, whose checks cost more than the rest of a pin; None for any
    other text, which ``parse_cid`` then reads (or refuses)."""
    if not isinstance(text, str) or len(text) != 59 or text[0] != "b":
        return None
    try:
        data = base64.b32decode(text[1:].upper() + "======")
    except ValueError:
        return None
    if len(data) != 36 or data[0] != 1 or data[1] not in (RAW, DAG_PB) or data[2:4] != b"\x12\x20":
        return None
    bid = BlockId(data[1], data[4:])
    return bid if str(bid) == text else None  # one spelling only, as multiformats has


def block_id_from_binary(data: bytes) -> BlockId:
    """BlockId from binary CID bytes (v1 or v0), as found in a dag-pb link."""
    if len(data) == 34 and data[:2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash
        return BlockId(DAG_PB, bytes(data[2:]))
    # Both supported codecs fit in one varint byte, so the layout is fixed.
    if len(data) == 36 and data[0] == 1 and data[1] in (RAW, DAG_PB) and data[2:4] == b"\x12\x20":
        return BlockId(data[1], bytes(data[4:]))
    head = bytes(data[:8]).hex()
    raise InvalidCid(f"unsupported binary CID {head}...: need CIDv1 sha2-256 raw or dag-pb")
