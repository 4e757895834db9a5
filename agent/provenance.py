"""What a result's provenance record says about the run beyond the worker's own books.

The worker writes provenance.json (agent/worker.py) and merges these facts into it: the seed,
the versions the runner reported in its summary, and the canonical digest of the outputs
(hepx.digest) that replicated jobs compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hepx.digest import Digest
from hepx.errors import DigestError
from hepx.spec import JobSpec


def result_facts(spec: JobSpec, outputs: Path, digest: Digest | DigestError) -> dict[str, Any]:
    """Seed, runner software versions and canonical digest (or why there is none) of one
    job's outputs."""
    versions: dict[str, Any] = {}
    summary_path = outputs / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, ValueError):
            summary = None  # the digest below reports an unreadable summary
        if isinstance(summary, dict) and isinstance(summary.get("versions"), dict):
            versions = summary["versions"]
    return {
        "seed": getattr(spec.params, "seed", None),
        "runner_software": versions,
        # The outputs are still the worker's answer; a missing digest tells replicas why.
        "digest": {"error": str(digest)} if isinstance(digest, DigestError) else digest.to_json(),
    }
