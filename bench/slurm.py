"""The Slurm executor's overhead per job: the same no-op echo job run N times, one at a time,

  local     the subprocess executor (what an agent without ``slurm:`` does)
  sbatch    sbatch of the runner's command alone, waited for with scontrol (Slurm's own cost)
  executor  agent.slurm.run_batch_job, as the agent runs it (script, sbatch, follow, exit code)

Needs a cluster: ``eval "$(bash scripts/slurm.sh)"`` starts a one-node one.

    python bench/slurm.py --jobs 20
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.executor import execute
from agent.kinds import runner_command
from agent.policy import SlurmPolicy
from agent.slurm import Slurm, run_batch_job
from hepx.spec import canonical_json, parse_spec

POLL = 0.1


def _job_folder(root: Path, i: int) -> tuple[Path, Path, Path, Path]:
    folder = root / str(i)
    inputs, outputs = folder / "inputs", folder / "outputs"
    inputs.mkdir(parents=True)
    outputs.mkdir(parents=True)
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": f"bench-{i}"},
            "params": {"message": "no-op"},
            "resources": {"max_runtime": 60},
            "payment": {"max_price": 1, "claim_window": 60, "run_window": 60},
        }
    )
    spec_path = folder / "spec.json"
    spec_path.write_bytes(canonical_json(spec))
    return spec_path, inputs, outputs, folder / "job.log"


def _sbatch_alone(slurm: Slurm, spec: Path, inputs: Path, outputs: Path, log: Path) -> None:
    cmd = runner_command("echo", spec, inputs, outputs)
    script = spec.parent / "plain.sh"
    script.write_text(f"#!/bin/sh\nexec {shlex.join(cmd)}\n")
    out = subprocess.run(
        ["sbatch", "--parsable", f"--output={log}", str(script)],
        capture_output=True,
        text=True,
        check=True,
    )
    batch_id = out.stdout.strip().split(";")[0]
    while True:
        state = slurm.state(batch_id)
        if state is not None and state.ended:
            return
        time.sleep(POLL)


def _timed(runs: int, root: Path, one: Callable[[Path, Path, Path, Path], object]) -> list[float]:
    seconds = []
    for i in range(runs):
        spec, inputs, outputs, log = _job_folder(root, i)
        started = time.perf_counter()
        one(spec, inputs, outputs, log)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    slurm = Slurm(SlurmPolicy(poll_seconds=POLL))
    root = Path(tempfile.mkdtemp(prefix="hepx-bench-slurm-"))
    rows = {
        "local": _timed(
            args.jobs, root / "local", lambda s, i, o, lg: execute("echo", s, i, o, lg, 60, 0)
        ),
        "sbatch": _timed(
            args.jobs, root / "sbatch", lambda s, i, o, lg: _sbatch_alone(slurm, s, i, o, lg)
        ),
        "executor": _timed(
            args.jobs,
            root / "executor",
            lambda s, i, o, lg: run_batch_job(
                slurm, "echo", s, i, o, lg, 60, 0, 1, 0, {}, None, lambda _: None, poll=POLL
            ),
        ),
    }
    local = statistics.median(rows["local"])
    print(f"{args.jobs} no-op echo jobs each, one at a time (scontrol polled every {POLL} s)\n")
    print("| executor | p50 s | p95 s | over local, p50 s |")
    print("|---|---:|---:|---:|")
    for name, seconds in rows.items():
        p50 = statistics.median(seconds)
        p95 = statistics.quantiles(seconds, n=20)[-1] if len(seconds) > 1 else p50
        print(f"| {name} | {p50:.3f} | {p95:.3f} | {p50 - local:+.3f} |")


if __name__ == "__main__":
    main()
