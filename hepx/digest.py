"""Canonical digests of job outputs: what replicas of a job compare (DESIGN.md, replication).

Two honest workers running the same spec must arrive at the same digest, and different
physics must not. Each kind declares in the registry (hepx/kinds/) how its outputs are
digested:

- ``bytes``: every output file's bytes. For deterministic kinds (echo, hep.generate: Pythia
  with a fixed seed writes the same HepMC3 bytes).
- ``root``: ROOT files carry timestamps and UUIDs, so their bytes differ from run to run; for
  them the digest covers each histogram's edges, contents and variances and each tree's entry
  count and flat numeric branches, every number rounded to ``SIGNIFICANT_DIGITS``. PNG plots
  are drawn from those histograms and are left out.

In both, ``summary.json`` enters without its volatile fields (timings, versions), floats
rounded the same way: whole as canonical JSON for ``bytes``; for ``root`` only its numbers
(with their key paths), so that the names and CIDs of equivalent inputs (e.g. the result
folders of two replicas, whose provenance differs) do not change the physics digest.
The digest is a sha256, written as 0x-hex so it fits a bytes32 commitment on chain.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepx.errors import DigestError
from hepx.kinds import REGISTRY, DigestMethod

VERSION = "hepx-digest/v1"
SIGNIFICANT_DIGITS = 6
VOLATILE_SUMMARY_KEYS = frozenset({"wall_time_s", "events_per_s", "versions"})
_SKIPPED_IN_ROOT = (".png",)


@dataclass(frozen=True)
class Digest:
    method: str
    value: str  # 0x + 64 hex digits

    @property
    def tolerance(self) -> str | None:
        return f"{SIGNIFICANT_DIGITS} significant digits" if self.method == "root" else None

    def bytes32(self) -> bytes:
        """The 32 bytes a submission, commitment or vote carries."""
        return bytes.fromhex(self.value.removeprefix("0x"))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "method": self.method,
            "tolerance": self.tolerance,
            "value": self.value,
        }


def method_for(kind: str) -> str:
    """How outputs of ``kind`` are digested; a kind this hepx does not know, by bytes."""
    entry = REGISTRY.get(kind)
    return str(entry.digest if entry else DigestMethod.BYTES)


def canonical_digest(kind: str, outputs: Path) -> Digest:
    """The canonical digest of a job's outputs folder."""
    method = method_for(kind)
    outputs = Path(outputs)
    if not outputs.is_dir():
        raise DigestError(f"cannot digest {outputs}: not a folder")
    h = hashlib.sha256(f"{VERSION}\0{method}\0".encode())
    for path in sorted(p for p in outputs.rglob("*") if p.is_file()):
        rel = path.relative_to(outputs).as_posix()
        if method == "root" and path.suffix == ".root":
            part = canonical_text(_root_contents(path))
        elif method == "root" and path.suffix in _SKIPPED_IN_ROOT:
            continue
        elif rel == "summary.json":
            summary = _summary(path)
            part = canonical_text(_numbers(summary) if method == "root" else summary)
        else:
            part = _file_sha256(path)
        h.update(f"{rel}\0{part}\n".encode())
    return Digest(method, "0x" + h.hexdigest())


def digest_bytes32(kind: str, outputs: Path) -> bytes:
    """The canonical digest as the 32 bytes a submission, commitment or vote carries."""
    return canonical_digest(kind, outputs).bytes32()


def canonical_number(value: float) -> str:
    """A number as text, rounded to SIGNIFICANT_DIGITS, with one spelling for each value."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if value == 0:
        return "0"  # also -0.0
    return f"{value:.{SIGNIFICANT_DIGITS - 1}e}"


def canonical_text(value: Any) -> str:
    """Canonical JSON of ``value`` with every float replaced by its rounded text."""

    def walk(item: Any) -> Any:
        if isinstance(item, float):
            return canonical_number(item)
        if isinstance(item, dict):
            return {str(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return hashlib.sha256(
        json.dumps(walk(value), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _numbers(value: Any, path: str = "") -> dict[str, Any]:
    """Every number in ``value`` keyed by its path ("inputs.0.events"); strings are dropped."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(_numbers(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(_numbers(item, f"{path}.{i}"))
    elif isinstance(value, int | float):
        found[path] = value
    return found


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _summary(path: Path) -> Any:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot digest {path.name}: not valid JSON ({exc})") from exc
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in VOLATILE_SUMMARY_KEYS}
    return data


def _root_contents(path: Path) -> dict[str, Any]:
    """Histograms and trees of a ROOT file as plain numbers (read with uproot)."""
    try:
        import uproot
    except ImportError as exc:
        raise DigestError("digesting ROOT files needs uproot: pip install 'hepx[hep]'") from exc
    contents: dict[str, Any] = {}
    try:
        with uproot.open(path) as root_file:
            for key, cls in sorted(root_file.classnames(cycle=False).items()):
                obj = root_file[key]
                if cls.startswith("TH1"):
                    contents[key] = {
                        "class": cls,
                        "edges": obj.axis().edges(flow=False).tolist(),
                        "values": obj.values(flow=True).tolist(),
                        "variances": obj.variances(flow=True).tolist(),
                    }
                elif cls == "TTree":
                    contents[key] = {"class": cls, "entries": int(obj.num_entries)}
                    for name in sorted(obj.keys(recursive=False)):
                        branch = obj[name]
                        if not branch.typename.endswith("[]") and branch.typename in _FLAT:
                            values = branch.array(library="np").tolist()
                            contents[key][name] = values
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot digest ROOT file {path.name}: {exc}") from exc
    return contents


_FLAT = frozenset(
    {"double", "float", "int64_t", "int32_t", "int16_t", "uint64_t", "uint32_t", "bool"}
)
