#!/usr/bin/env python3
"""Compare the ABIs in Ape's manifest (.build/__local__.json) with hepx/artifacts/*.json.

Standard library only, so it runs in any venv. Exit 1 and name the contracts that differ.

    python scripts/ape_abi_check.py .build/__local__.json hepx/artifacts
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def canonical(abi: list[dict[str, Any]]) -> list[str]:
    """ABI entries as sorted JSON strings: order-free, every field compared."""
    return sorted(json.dumps(entry, sort_keys=True) for entry in abi)


def main(argv: list[str]) -> int:
    manifest_path, artifacts = Path(argv[0]), Path(argv[1])
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    ape_abis = {name: ct["abi"] for name, ct in manifest.get("contractTypes", {}).items()}
    differ, missing = [], []
    for path in sorted(artifacts.glob("*.json")):
        name = path.stem
        ours = json.loads(path.read_text(encoding="utf-8"))["abi"]
        if name not in ape_abis:
            missing.append(name)
        elif canonical(ape_abis[name]) != canonical(ours):
            differ.append(name)
    if missing or differ:
        print(f"ape ABIs: missing {missing or '-'}, different {differ or '-'}", file=sys.stderr)
        return 1
    print(f"ape ABIs: {len(list(artifacts.glob('*.json')))} contract(s) identical to {artifacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
