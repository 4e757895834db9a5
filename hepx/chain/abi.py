"""Decoding ABI-encoded values of the plain types the market's events and views carry:
unsigned integers, addresses, booleans, fixed bytes, strings, bytes, and tuples and arrays
of those.

eth_abi builds a decoder object and a stream per value; a sweep's post of 200 CIDs took
0.9 ms to decode that way (1.5 ms in a busy market's agents), a lot's results 0.35 ms, and
every agent decodes every event of the market. Reading the words by their offsets gives the
same values (tuples for arrays and structs, lowercase addresses, as eth_abi) in a fraction
of that; a job's struct (``getJob``, read by every agent before it sends a job's result) took
50 us, now 6. A type outside that set (signed, fixed-size arrays) is left to eth_abi.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from eth_abi import decode as eth_abi_decode  # type: ignore[attr-defined]
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

_WORD = 32
_PLAIN = re.compile(r"uint\d*|address|bool|bytes\d+|string|bytes")


@lru_cache(maxsize=4096)
def checksummed(address: str) -> str:
    """The address as EIP-55 spells it. Cached: the spelling costs a keccak, and every agent
    spells the same few workers' addresses in every event it reads."""
    return str(to_checksum_address(address))


@lru_cache(maxsize=256)
def reads_directly(types: tuple[str, ...]) -> bool:
    """Whether decode() reads ``types`` itself (else eth_abi does)."""
    return all(_reads(kind) for kind in types)


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """The values of ``types`` encoded in ``data``, as eth_abi's ``decode`` gives them."""
    if not reads_directly(tuple(types)):
        return tuple(eth_abi_decode(list(types), data))
    return _members(tuple(types), data, 0)


def _reads(kind: str) -> bool:
    if kind.endswith("[]"):
        return _reads(kind[:-2])
    if kind.startswith("("):
        return all(_reads(member) for member in _tuple_members(kind))
    return _PLAIN.fullmatch(kind) is not None


@lru_cache(maxsize=256)
def _tuple_members(kind: str) -> tuple[str, ...]:
    """The member types of a tuple type ``(a,b,...)``, split at its own commas only."""
    members, depth, start = [], 0, 1
    for i, char in enumerate(kind[1:-1], start=1):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            members.append(kind[start:i])
            start = i + 1
    return tuple([*members, kind[start:-1]] if len(kind) > 2 else members)


@lru_cache(maxsize=256)
def _dynamic(kind: str) -> bool:
    if kind.endswith("[]") or kind in ("string", "bytes"):
        return True
    return kind.startswith("(") and any(_dynamic(member) for member in _tuple_members(kind))


@lru_cache(maxsize=256)
def _head_size(kind: str) -> int:
    """Bytes a value of ``kind`` takes where it sits in its tuple: a static struct lies there
    whole, anything dynamic is an offset word."""
    if kind.startswith("(") and not _dynamic(kind):
        return sum(_head_size(member) for member in _tuple_members(kind))
    return _WORD


def _members(types: tuple[str, ...], data: bytes, start: int) -> tuple[Any, ...]:
    """The values of a tuple's members, whose heads begin at ``start``."""
    values, at = [], start
    for kind in types:
        values.append(_value(kind, data, at, start))
        at += _head_size(kind)
    return tuple(values)


def _word(data: bytes, at: int) -> int:
    if at < 0 or at + _WORD > len(data):
        raise DecodingError(f"ABI data of {len(data)} bytes has no word at byte {at}")
    return int.from_bytes(data[at : at + _WORD], "big")


def _value(kind: str, data: bytes, at: int, base: int) -> Any:
    """The value of ``kind`` whose head is the word at ``at``; a dynamic value's offset there
    counts from ``base`` (the start of the tuple it is part of)."""
    if kind.endswith("[]"):
        inner = kind[:-2]
        start = base + _word(data, at)
        count = _word(data, start)
        items, size = start + _WORD, _head_size(inner)  # the elements' heads, as a tuple's
        return tuple(_value(inner, data, items + size * i, items) for i in range(count))
    if kind.startswith("("):
        return _members(
            _tuple_members(kind), data, base + _word(data, at) if _dynamic(kind) else at
        )
    if kind in ("string", "bytes"):
        start = base + _word(data, at)
        size = _word(data, start)
        if start + _WORD + size > len(data):
            raise DecodingError(f"ABI {kind} of {size} bytes runs past the data's end")
        raw = data[start + _WORD : start + _WORD + size]
        return raw.decode("utf-8") if kind == "string" else raw
    word = _word(data, at)
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        if word >> bits:
            raise DecodingError(f"ABI {kind} out of range: {word}")
        return word
    if kind == "address":
        if word >> 160:
            raise DecodingError("ABI address with nonzero padding")
        return "0x" + data[at + 12 : at + _WORD].hex()
    if kind == "bool":
        if word > 1:
            raise DecodingError(f"ABI bool neither 0 nor 1: {word}")
        return word == 1
    size = int(kind[5:])  # bytesN
    return data[at : at + size]
