"""Job kinds: one runner module per kind, run in a subprocess by ``python -m agent.kinds``.

Each module has ``run(spec, inputs_dir, outputs_dir, progress)``: it reads its inputs, writes
its outputs into ``outputs_dir`` (existing and empty) and raises a HepxError when the job fails.
A subprocess per job lets the agent enforce a wall-clock limit and survive a crashing job.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hepx.errors import SpecError

KINDS: dict[str, str] = {
    "echo": "agent.kinds.echo",
    "hep.pythia": "agent.kinds.hep_pythia",
    "hep.generate": "agent.kinds.hep_generate",
    "hep.analyze": "agent.kinds.hep_analyze",
    "hep.merge": "agent.kinds.hep_merge",
    "llm.chat": "agent.kinds.llm_chat",
    "llm.batch": "agent.kinds.llm_batch",
}


def runner_command(kind: str, spec_path: Path, inputs_dir: Path, outputs_dir: Path) -> list[str]:
    """The command line that runs one job of ``kind`` with this interpreter."""
    if kind not in KINDS:
        raise SpecError(f"no runner for kind {kind!r}; this worker runs: {', '.join(KINDS)}")
    return [
        sys.executable,
        "-m",
        "agent.kinds",
        kind,
        "--spec",
        str(spec_path),
        "--inputs",
        str(inputs_dir),
        "--outputs",
        str(outputs_dir),
    ]
