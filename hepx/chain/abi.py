"""Decoding ABI-encoded values of the plain types the market's events carry: unsigned
integers, addresses, booleans, fixed bytes, strings, bytes, and arrays of those.

eth_abi builds a decoder object and a stream per value; a sweep's post of 200 CIDs took
0.9 ms to decode that way (1.5 ms in a busy market's agents), a lot's results 0.35 ms, and
every agent decodes every event of the market. Reading the words by their offsets gives the
same values (tuples for arrays, lowercase addresses, as eth_abi) in a fraction of that. A
type outside that set (tuples, signed or fixed-size arrays) is left to eth_abi.
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
_PLAIN = re.compile(r"(uint\d*|address|bool|bytes\d+|string|bytes)(\[\])?")


@lru_cache(maxsize=4096)
def checksummed(address: str) -> str:
    """The address as EIP-55 spells it. Cached: the spelling costs a keccak, and every agent
    spells the same few workers' addresses in every event it reads."""
    return str(to_checksum_address(address))


@lru_cache(maxsize=256)
def reads_directly(types: tuple[str, ...]) -> bool:
    """Whether decode() reads ``types`` itself (else eth_abi does)."""
    return all(_PLAIN.fullmatch(kind) for kind in types)


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """The values of ``types`` encoded in ``data``, as eth_abi's ``decode`` gives them."""
    if not reads_directly(tuple(types)):
        return tuple(eth_abi_decode(list(types), data))
    return tuple(_value(kind, data, _WORD * i, 0) for i, kind in enumerate(types))


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
        items = start + _WORD  # the elements' heads, as a tuple of their own
        return tuple(_value(inner, data, items + _WORD * i, items) for i in range(count))
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
