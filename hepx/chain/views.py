"""Calls of a contract's view functions without web3's per-call overhead.

web3 builds each call from the whole ABI (validating it and hashing every function's
selector: ~60 keccaks for the market's) and asks the node for the chain id twice: ~12 ms of
CPU and three requests for one ``eth_call``, which an agent makes several times per job.
Here each function's selector and types are worked out once; a call is one raw ``eth_call``,
decoded with the same normalization web3 applies (checksummed addresses). Anything else (a
revert, no contract, arguments eth_abi will not encode as given) is left to web3's path, so
errors stay the ones hepx already converts. Transactions encode their call data the same way
(``send_calls``, hepx/chain/contract.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode  # type: ignore[attr-defined]
from eth_abi.exceptions import EncodingError
from eth_utils.abi import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)

from hepx.chain.abi import checksummed
from hepx.chain.abi import decode as abi_decode


@dataclass(frozen=True)
class AbiFunction:
    """One function of the ABI: its selector, argument types and outputs."""

    selector: bytes
    inputs: list[str]
    output_types: list[str]
    outputs: list[dict[str, Any]]

    def encode(self, args: tuple[Any, ...]) -> str | None:
        """The call data, or None if eth_abi will not take ``args`` as they are."""
        try:
            return "0x" + (self.selector + abi_encode(self.inputs, list(args))).hex()
        except (EncodingError, TypeError, ValueError, OverflowError):
            return None

    def decode(self, result: str) -> Any:
        """The call's answer as web3 gives it: one output as itself, several as a list."""
        values = abi_decode(self.output_types, bytes.fromhex(result[2:]))
        decoded = [_normalized(o, v) for o, v in zip(self.outputs, values, strict=True)]
        return decoded[0] if len(decoded) == 1 else decoded


def view_calls(abi: list[dict[str, Any]]) -> dict[str, AbiFunction]:
    """The ABI's view functions by name (overloaded names left out: web3 picks those)."""
    return _calls(abi, lambda mutability: mutability == "view")


def send_calls(abi: list[dict[str, Any]]) -> dict[str, AbiFunction]:
    """The ABI's functions that change state, by name: their call data is encoded the same
    way when a transaction is built (hepx/chain/contract.py)."""
    return _calls(abi, lambda mutability: mutability in ("nonpayable", "payable"))


def _calls(abi: list[dict[str, Any]], wanted: Callable[[str], bool]) -> dict[str, AbiFunction]:
    chosen = [e for e in abi if e["type"] == "function" and wanted(e.get("stateMutability", ""))]
    names = [e["name"] for e in abi if e["type"] == "function"]
    return {
        e["name"]: AbiFunction(
            function_abi_to_4byte_selector(e),  # type: ignore[arg-type]
            list(get_abi_input_types(e)),  # type: ignore[arg-type]
            list(get_abi_output_types(e)),  # type: ignore[arg-type]
            list(e["outputs"]),
        )
        for e in chosen
        if names.count(e["name"]) == 1
    }


def _normalized(abi_type: dict[str, Any], value: Any) -> Any:
    kind = str(abi_type["type"])
    if kind.endswith("]"):
        inner = {**abi_type, "type": kind[: kind.rindex("[")]}
        return [_normalized(inner, v) for v in value]
    if kind == "tuple":
        return tuple(_normalized(c, v) for c, v in zip(abi_type["components"], value, strict=True))
    if kind == "address":
        return checksummed(value)
    return value
