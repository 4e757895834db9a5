"""The plain-type ABI decoder gives what eth_abi gives, for every event data layout and view
output of the contracts and for random values of each type; data that does not hold what it
claims is refused, never read past its end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as eth_abi_decode  # type: ignore[attr-defined]
from eth_abi import encode as eth_abi_encode  # type: ignore[attr-defined]
from eth_abi.exceptions import DecodingError
from eth_utils.abi import get_abi_output_types
from hypothesis import given, settings
from hypothesis import strategies as st

from hepx.chain.abi import decode, reads_directly

ARTIFACTS = Path(__file__).resolve().parents[3] / "hepx" / "artifacts"


def _layouts() -> list[tuple[str, ...]]:
    """Each event's data and each view's answer, as the contracts' ABIs lay them out."""
    layouts = set()
    for artifact in ARTIFACTS.glob("*.json"):
        for item in json.loads(artifact.read_text()).get("abi", []):
            if item["type"] == "event":
                layouts.add(tuple(i["type"] for i in item["inputs"] if not i["indexed"]))
            elif item["type"] == "function" and item.get("stateMutability") == "view":
                layouts.add(tuple(get_abi_output_types(item)))
    return sorted(layouts)


def _members(kind: str) -> list[str]:
    """A tuple type's member types (the test's own split, by nesting depth)."""
    members, depth, current = [], 0, ""
    for char in kind[1:-1]:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            members, current = [*members, current], ""
        else:
            current += char
    return [*members, current] if current else members


def _values(kind: str) -> st.SearchStrategy[Any]:
    if kind.endswith("[]"):
        return st.lists(_values(kind[:-2]), max_size=5).map(tuple)
    if kind.startswith("("):
        return st.tuples(*(_values(member) for member in _members(kind)))
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


LAYOUTS = _layouts()


def test_the_contracts_events_and_views_carry_only_types_it_reads_itself() -> None:
    # Else decode() hands them to eth_abi: still right, no longer fast.
    assert LAYOUTS and all(reads_directly(types) for types in LAYOUTS)
    assert any(kind.endswith(")[]") for types in LAYOUTS for kind in types)  # structs' arrays


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
                "(uint8,address,bytes32)",  # a static struct lies in its tuple whole
                "(uint256,string)",
                "(bool,(bytes4,uint8))[]",
                "((uint8,string)[],bytes32)",
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
    types = ["(uint256,string)", "int8", "uint8[2]"]
    encoded = eth_abi_encode(types, [(7, "x"), -3, (1, 2)])
    assert not reads_directly(tuple(types))
    assert decode(types, encoded) == ((7, "x"), -3, (1, 2))


@pytest.mark.parametrize(
    ("types", "values", "cut"),
    [
        (["string[]"], [("a" * 40, "b")], 40),  # an element's bytes cut off
        (["uint256", "string"], [1, "hello"], 64),  # the string's length word missing
        (["bytes32[]"], [(b"\x01" * 32,) * 3], 32),  # an element missing
        (["(uint8,string)[]"], [((1, "a"), (2, "b"))], 64),  # a struct's string cut off
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
