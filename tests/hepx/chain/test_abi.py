"""The plain-type ABI decoder gives what eth_abi gives, for every event data layout of the
contracts and for random values of each type; data that does not hold what it claims is
refused, never read past its end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as eth_abi_decode  # type: ignore[attr-defined]
from eth_abi import encode as eth_abi_encode  # type: ignore[attr-defined]
from eth_abi.exceptions import DecodingError
from hypothesis import given, settings
from hypothesis import strategies as st

from hepx.chain.abi import decode, reads_directly

ARTIFACTS = Path(__file__).resolve().parents[3] / "hepx" / "artifacts"


def _event_layouts() -> list[tuple[str, ...]]:
    layouts = set()
    for artifact in ARTIFACTS.glob("*.json"):
        for item in json.loads(artifact.read_text()).get("abi", []):
            if item["type"] == "event":
                layouts.add(tuple(i["type"] for i in item["inputs"] if not i["indexed"]))
    return sorted(layouts)


def _values(kind: str) -> st.SearchStrategy[Any]:
    if kind.endswith("[]"):
        return st.lists(_values(kind[:-2]), max_size=5).map(tuple)
    if kind.startswith("uint"):
        return st.integers(0, 2 ** int(kind[4:] or 256) - 1)
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=80)
    if kind == "bytes":
        return st.binary(max_size=80)
    return st.binary(min_size=int(kind[5:]), max_size=int(kind[5:]))  # bytesN


LAYOUTS = _event_layouts()


def test_the_contracts_events_carry_only_types_it_reads_itself() -> None:
    # Else decode() hands them to eth_abi: still right, no longer fast.
    assert LAYOUTS and all(reads_directly(types) for types in LAYOUTS)


@pytest.mark.parametrize("types", LAYOUTS, ids=",".join)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_event_layout_decodes_as_eth_abi_decodes_it(types: tuple[str, ...], data: Any) -> None:
    values = [data.draw(_values(kind)) for kind in types]
    encoded = eth_abi_encode(list(types), values)
    assert decode(types, encoded) == tuple(eth_abi_decode(list(types), encoded))


@settings(max_examples=200, deadline=None)
@given(
    types=st.lists(
        st.sampled_from(
            [
                "uint256",
                "uint8",
                "address",
                "bool",
                "bytes32",
                "bytes4",
                "string",
                "bytes",
                "string[]",
                "bytes32[]",
                "uint256[]",
                "address[]",
            ]
        ),
        min_size=1,
        max_size=6,
    ),  # fmt: skip
    data=st.data(),
)
def test_random_layouts_decode_as_eth_abi_decodes_them(types: list[str], data: Any) -> None:
    values = [data.draw(_values(kind)) for kind in types]
    encoded = eth_abi_encode(types, values)
    assert decode(types, encoded) == tuple(eth_abi_decode(types, encoded))


def test_types_it_does_not_read_go_to_eth_abi() -> None:
    encoded = eth_abi_encode(["(uint256,string)", "int8"], [(7, "x"), -3])
    assert decode(["(uint256,string)", "int8"], encoded) == ((7, "x"), -3)


@pytest.mark.parametrize(
    ("types", "values", "cut"),
    [
        (["string[]"], [("a" * 40, "b")], 40),  # an element's bytes cut off
        (["uint256", "string"], [1, "hello"], 64),  # the string's length word missing
        (["bytes32[]"], [(b"\x01" * 32,) * 3], 32),  # an element missing
    ],
)
def test_data_shorter_than_it_claims_is_refused(
    types: list[str], values: list[Any], cut: int
) -> None:
    encoded = eth_abi_encode(types, values)
    with pytest.raises(DecodingError):
        decode(types, encoded[:-cut])


@pytest.mark.parametrize(
    ("kind", "word"),
    [("uint8", 256), ("bool", 2), ("address", 1 << 160)],
)
def test_a_word_out_of_its_types_range_is_refused(kind: str, word: int) -> None:
    with pytest.raises(DecodingError):
        decode([kind], word.to_bytes(32, "big"))
