"""Compiled contract artifacts shipped inside the package (``hepx/artifacts/<Name>.json``).

They are written by ``scripts/compile.py`` (``make compile``) so that nothing at run time needs a
Solidity compiler; a test checks that they still match the sources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hepx.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIX = "run `make compile` (python scripts/compile.py) in the hepx checkout"


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of one compiled contract."""

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_hash: str
    compiler_version: str


# A contract whose fallback forwards calls to another's code -> that code contract: the ABI a
# client needs at its address is both.
_FALLBACK_CODE = {"JobMarket": "MarketCalls"}


def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (``"JobMarket"``).

    The JobMarket's ABI also holds the calls its fallback runs in MarketCalls' code (sweeps,
    ISweepCalls), with their events and errors, so a client of the market's address sees
    them all. Raises ConfigError if it was never compiled or the file is not a valid artifact.
    """
    artifact = _read_artifact(name)
    code = _FALLBACK_CODE.get(name)
    if code is None:
        return artifact
    have = {(entry["type"], entry.get("name")) for entry in artifact.abi}
    forwarded = [e for e in _read_artifact(code).abi if (e["type"], e.get("name")) not in have]
    return dataclasses.replace(artifact, abi=[*artifact.abi, *forwarded])


def _read_artifact(name: str) -> Artifact:
    if not _NAME.match(name):
        raise ConfigError(f"invalid contract name {name!r}: expected a Solidity identifier")
    resource = resources.files("hepx") / "artifacts" / f"{name}.json"
    try:
        raw = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"no compiled artifact for contract {name!r}: {_FIX}") from exc
    try:
        data = json.loads(raw)
        return Artifact(
            contract_name=str(data["contractName"]),
            abi=list(data["abi"]),
            bytecode=_hex(data["bytecode"]),
            deployed_bytecode=_hex(data["deployedBytecode"]),
            source_hash=str(data["sourceHash"]),
            compiler_version=str(data["compiler"]["version"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"artifact {name}.json is damaged ({exc}): {_FIX}") from exc


def source_hash(sources: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    """sha256 over the sources (path and content, sorted by path) and compiler settings."""
    digest = hashlib.sha256()
    for path in sorted(sources):
        # Length prefixes keep the encoding unambiguous whatever the file contents are.
        for part in (path, sources[path]):
            encoded = part.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
    digest.update(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return "0x" + digest.hexdigest()


def _hex(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0x(?:[0-9a-fA-F]{2})+", value):
        raise ValueError(f"bytecode must be a non-empty 0x-prefixed hex string, got {value!r:.40}")
    return value
