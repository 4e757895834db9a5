#!/usr/bin/env python3
"""Compile contracts/**/*.sol once and write hepx/artifacts/<Contract>.json.

Uses py-solc-x's standard-JSON interface over scripts/solc-shim.js (the npm solc compiler; no
native solc installs here). ``--check`` compiles afresh and fails if the committed artifacts
differ, so a stale artifact cannot slip through CI.

The contracts' enums (job states, match modes, payment reasons...) are the protocol's
vocabulary: each artifact lists the enums its contract sees, read from the compiler's AST with
each member's source comment, and ``hepx/chain/enums.py`` is generated from JobMarket's, so
Python never keeps a hand-made copy (``--check`` covers that file too).

    python scripts/compile.py            # write artifacts
    python scripts/compile.py --check    # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.wrapper import get_solc_version

from hepx.artifacts import source_hash

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / "contracts"
ARTIFACTS = REPO / "hepx" / "artifacts"
ENUMS_MODULE = REPO / "hepx" / "chain" / "enums.py"
# Artifact -> the interface whose enums it contributes (the market's first; then the
# court's and the sweeps').
ENUMS_FROM = {
    "JobMarket.json": "IJobMarket",
    "DisputeCourt.json": "IDisputeCourt",
    "MarketCalls.json": "ISweepCalls",
}
SHIM = REPO / "scripts" / "solc-shim.js"

# Part of every artifact and of its source hash: changing them means recompiling.
SETTINGS: dict[str, Any] = {
    "evmVersion": "prague",
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": False,
}
_IMPORT = re.compile(r'^\s*import\s+(?:[^;"]*?\sfrom\s+)?"([^"]+)"\s*;', re.MULTILINE)
_OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]


class CompileFailed(Exception):
    """Compilation could not run or the sources have errors."""


def read_sources(contracts: Path = CONTRACTS) -> dict[str, str]:
    """Source path (relative to the repo, as solc sees it) -> contents.

    Also holds every npm-package source they import (``@openzeppelin/...``), read from
    node_modules, under its import path: solc gets all sources in one standard-JSON input.
    """
    # Skip dot-folders: Ape caches its dependencies' sources in contracts/.cache.
    files = sorted(
        f
        for f in contracts.rglob("*.sol")
        if not any(part.startswith(".") for part in f.relative_to(contracts).parts)
    )
    if not files:
        raise CompileFailed(f"no .sol files under {contracts}")
    sources = {f.relative_to(REPO).as_posix(): f.read_text(encoding="utf-8") for f in files}
    pending = list(sources)
    while pending:
        unit = pending.pop()
        for target in _IMPORT.findall(sources[unit]):
            if target.startswith("."):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(unit), target))
            if target in sources:
                continue
            if not target.startswith("@"):
                raise CompileFailed(f"{unit} imports {target!r}, which is not under contracts/")
            path = REPO / "node_modules" / target
            if not path.is_file():
                raise CompileFailed(f"{unit} imports {target}: not in node_modules, run `npm ci`")
            sources[target] = path.read_text(encoding="utf-8")
            pending.append(target)
    return sources


def compile_artifacts(sources: dict[str, str]) -> dict[str, str]:
    """Compile ``sources``; return artifact file name -> rendered JSON, one per deployable."""
    if shutil.which("node") is None:
        raise CompileFailed("node is not on PATH: install Node 20 (the compiler is npm's solc)")
    if not (REPO / "node_modules" / "solc").is_dir():
        raise CompileFailed("node_modules/solc is missing: run `npm install` in the repo")
    standard_input = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": {**SETTINGS, "outputSelection": {"*": {"*": _OUTPUTS, "": ["ast"]}}},
    }
    try:
        version = get_solc_version(SHIM, with_commit_hash=True)
        output = solcx.compile_standard(standard_input, solc_binary=SHIM)
    except SolcError as exc:
        raise CompileFailed(f"solc failed:\n{exc}") from exc
    for problem in output.get("errors", []):
        print(problem["formattedMessage"], file=sys.stderr)

    digest = source_hash(sources, SETTINGS)
    enums = _enums_by_contract(output, sources)
    rendered: dict[str, str] = {}
    for path in sorted(output["contracts"]):
        if path.startswith("@"):  # npm dependencies: only linked into our contracts
            continue
        for name, contract in sorted(output["contracts"][path].items()):
            bytecode = contract["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces and abstract contracts cannot be deployed
                continue
            if f"{name}.json" in rendered:
                raise CompileFailed(f"two contracts are named {name}; names must be unique")
            artifact = {
                "contractName": name,
                "abi": contract["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                "compiler": {"version": str(version), "settings": SETTINGS},
                "sourceHash": digest,
                "enums": enums.get(name, {}),
            }
            rendered[f"{name}.json"] = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
    return rendered


def _enums_by_contract(
    output: dict[str, Any], sources: dict[str, str]
) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Contract name -> the enums it sees (its own and its bases'), each member with the
    comment that follows it on its line in the source."""
    contracts: dict[int, dict[str, Any]] = {}
    for path, unit in output["sources"].items():
        for node in unit["ast"]["nodes"]:
            if node.get("nodeType") == "ContractDefinition":
                contracts[node["id"]] = {**node, "_path": path}
    found: dict[str, dict[str, list[dict[str, str]]]] = {}
    for contract in contracts.values():
        seen: dict[str, list[dict[str, str]]] = {}
        for base_id in reversed(contract["linearizedBaseContracts"]):
            base = contracts[base_id]
            if base["_path"].startswith("@"):
                continue
            text = sources[base["_path"]].encode()
            for node in base["nodes"]:
                if node.get("nodeType") == "EnumDefinition":
                    members = [
                        {"name": m["name"], "doc": _line_comment(text, m["src"])}
                        for m in node["members"]
                    ]
                    seen[node["name"]] = members
        found[contract["name"]] = dict(sorted(seen.items()))
    return found


def _line_comment(text: bytes, src: str) -> str:
    """The ``// comment`` after the AST node at ``src`` ("offset:length:file"), same line."""
    start, length = (int(x) for x in src.split(":")[:2])
    line_end = text.find(b"\n", start)
    rest = text[start + length : line_end if line_end >= 0 else len(text)].decode()
    _, sep, comment = rest.partition("//")
    return comment.strip() if sep else ""


def _py_name(name: str) -> str:
    """``WorkerPayment`` -> ``WORKER_PAYMENT``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def render_enums_module(artifact_texts: dict[str, str]) -> str:
    """hepx/chain/enums.py from the enums of the ENUMS_FROM artifacts (name -> JSON text)."""
    enums: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for artifact, interface in ENUMS_FROM.items():
        for name, members in json.loads(artifact_texts[artifact])["enums"].items():
            enums.setdefault(name, (interface, members))
    out = [
        '"""The market\'s and the dispute court\'s enums, generated by scripts/compile.py from',
        "the compiler's output for contracts/interfaces/IJobMarket.sol and IDisputeCourt.sol:",
        "do not edit; change the Solidity and run `make compile`.",
        "",
        "Each member's comment is the one beside it in the source. ``label`` is the one spelling",
        "every API, page and log uses; a member whose source comment starts with ``final:`` is a",
        'state a job never leaves."""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum",
        "",
        "",
        "class ProtocolEnum(IntEnum):",
        '    """An enum of the contract: ``label`` is the snake_case name (``worker_payment``)."""',
        "",
        "    @property",
        "    def label(self) -> str:",
        "        return self.name.lower()",
        "",
        "    @classmethod",
        "    def from_label(cls, label: str) -> ProtocolEnum:",
        "        return cls[label.upper()]",
        "",
        "    @classmethod",
        "    def label_of(cls, value: int) -> str:",
        '        """The label of ``value``; the number as text for a value this hepx predates."""',
        "        try:",
        "            return cls(value).label",
        "        except ValueError:",
        "            return str(value)",
    ]
    finals: list[str] = []
    for name, (interface, members) in enums.items():
        out += ["", "", f"class {name}(ProtocolEnum):", f'    """``{interface}.{name}``."""', ""]
        for value, member in enumerate(members):
            doc = f"  # {member['doc']}" if member["doc"] else ""
            out.append(f"    {_py_name(member['name'])} = {value}{doc}")
            if name == "JobState" and member["doc"].startswith("final:"):
                finals.append(f"    JobState.{_py_name(member['name'])},")
        if name == "JobState":
            out += [
                "",
                "    @property",
                "    def final(self) -> bool:",
                "        return self in FINAL_STATES",
            ]
    out += [
        "",
        "",
        "# States a job never leaves: the members whose source comment starts with 'final:'.",
        "FINAL_STATES: frozenset[JobState] = frozenset(",
        "    {",
        *[f"    {line}" for line in finals],
        "    }",
        ")",
        "FINAL_STATE_LABELS: frozenset[str] = frozenset(state.label for state in FINAL_STATES)",
        "",
    ]
    return "\n".join(out)


def stale_artifacts(fresh: dict[str, str], folder: Path = ARTIFACTS) -> list[str]:
    """Names of artifacts in ``folder`` that are missing, differ from ``fresh`` or are extra."""
    committed = {p.name for p in folder.glob("*.json")}
    stale = [
        name
        for name, text in fresh.items()
        if name not in committed or (folder / name).read_text(encoding="utf-8") != text
    ]
    return sorted(stale + [name for name in committed - fresh.keys()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed artifacts differ from a fresh compile",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        fresh = compile_artifacts(read_sources())
    except CompileFailed as exc:
        print(f"compile: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started

    enums_module = render_enums_module(fresh)
    if args.check:
        stale = stale_artifacts(fresh)
        if not ENUMS_MODULE.is_file() or ENUMS_MODULE.read_text(encoding="utf-8") != enums_module:
            stale.append(str(ENUMS_MODULE.relative_to(REPO)))
        if stale:
            print(
                f"compile --check: artifacts out of date with contracts/: {', '.join(stale)} "
                f"in {ARTIFACTS.relative_to(REPO)}; run `make compile` "
                "(python scripts/compile.py) and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"compile --check: {len(fresh)} artifact(s) up to date ({elapsed:.1f} s)")
        return 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in stale_artifacts(fresh):
        if name not in fresh:
            (ARTIFACTS / name).unlink()
    for name, text in fresh.items():
        (ARTIFACTS / name).write_text(text, encoding="utf-8")
    ENUMS_MODULE.parent.mkdir(parents=True, exist_ok=True)
    ENUMS_MODULE.write_text(enums_module, encoding="utf-8")
    where = ARTIFACTS.relative_to(REPO)
    print(f"compiled {len(fresh)} contract(s) into {where} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
