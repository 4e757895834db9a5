"""Custom errors of every shipped contract, by selector: a market call can revert inside the
registry or the token, and the caller should still read the error by name."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector

from hepx.artifacts import load_artifact
from hepx.errors import ConfigError

_ERROR_SOURCES = ("JobMarket", "DisputeCourt", "RequestDesk", "MarketCalls", "TestToken")


@lru_cache(maxsize=1)
def _error_table() -> dict[bytes, dict[str, Any]]:
    table: dict[bytes, dict[str, Any]] = {}
    for name in _ERROR_SOURCES:
        try:
            abi = load_artifact(name).abi
        except ConfigError:
            continue  # an artifact this checkout does not ship
        for item in abi:
            if item["type"] == "error":
                signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                table.setdefault(function_signature_to_4byte_selector(signature), item)
    return table


def decode_revert(data: str | bytes | None) -> tuple[str | None, tuple[Any, ...]]:
    """Name and arguments of a custom error from revert data (None if not ours)."""
    if data is None:
        return None, ()
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    item = _error_table().get(raw[:4])
    if item is None:
        return None, ()
    args = abi_decode([i["type"] for i in item["inputs"]], raw[4:])
    return str(item["name"]), tuple(args)
