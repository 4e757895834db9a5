#!/usr/bin/env python3
"""Compile contracts/**/*.sol once and write hepx/artifacts/<Contract>.json.

Uses py-solc-x's standard-JSON interface over scripts/solc-shim.js (the npm solc compiler; no
native solc installs here). ``--check`` compiles afresh and fails if the committed artifacts
differ, so a stale artifact cannot slip through CI.

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
        f for f in contracts.rglob("*.sol")
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
        "settings": {**SETTINGS, "outputSelection": {"*": {"*": _OUTPUTS}}},
    }
    try:
        version = get_solc_version(SHIM, with_commit_hash=True)
        output = solcx.compile_standard(standard_input, solc_binary=SHIM)
    except SolcError as exc:
        raise CompileFailed(f"solc failed:\n{exc}") from exc
    for problem in output.get("errors", []):
        print(problem["formattedMessage"], file=sys.stderr)

    digest = source_hash(sources, SETTINGS)
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
            }
            rendered[f"{name}.json"] = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
    return rendered


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

    if args.check:
        stale = stale_artifacts(fresh)
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
    where = ARTIFACTS.relative_to(REPO)
    print(f"compiled {len(fresh)} contract(s) into {where} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
