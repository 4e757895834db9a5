"""Job kinds' runners: one module per kind, run in a process of its own: forked from the
agent's warm runner (agent/executor.py), or ``python -m agent.kinds`` in a batch job or image.

Each module has ``run(spec, inputs_dir, outputs_dir, progress)``: it reads its inputs, writes
its outputs into ``outputs_dir`` (existing and empty) and raises a HepxError when the job fails.
A process per job lets the agent enforce a wall-clock limit and survive a crashing job.
Which module runs which kind is the registry's (hepx/kinds/): ``Kind.runner``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hepx.errors import SpecError
from hepx.kinds import REGISTRY

# Kind -> runner module, for every kind that runs as a process (not in its own image).
RUNNERS: dict[str, str] = {k.name: k.runner for k in REGISTRY.values() if k.runner is not None}
# Kinds whose jobs may run one after another in one kept process (Kind.reuses_process).
REUSES_PROCESS = frozenset(k.name for k in REGISTRY.values() if k.reuses_process and k.runner)


def runner_args(kind: str, spec: str, inputs: str, outputs: str) -> list[str]:
    """``-m agent.kinds KIND --spec ... --inputs ... --outputs ...``: what follows the Python
    interpreter, on this host or inside an image with hepx."""
    if kind not in RUNNERS:
        raise SpecError(f"no runner for kind {kind!r}; this worker runs: {', '.join(RUNNERS)}")
    return ["-m", "agent.kinds", kind, "--spec", spec, "--inputs", inputs, "--outputs", outputs]


def runner_command(kind: str, spec_path: Path, inputs_dir: Path, outputs_dir: Path) -> list[str]:
    """The command line that runs one job of ``kind`` with this interpreter."""
    return [sys.executable, *runner_args(kind, str(spec_path), str(inputs_dir), str(outputs_dir))]
