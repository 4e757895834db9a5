"""Jobs run on a Slurm cluster: one agent is one worker for the whole cluster.

The runner command the subprocess executor would run goes into a batch script that ``sbatch``
queues. The agent follows the Slurm job with ``scontrol``, cancels it (``scancel``) when the
job's budget runs out, and records its Slurm id in the book before it waits, so an agent
restarted meanwhile follows the same Slurm job instead of queueing the work again. The job's
work folder must be on a filesystem the cluster's nodes share with the agent (a one-node
cluster trivially does; a site mounts the agent's state folder on its nodes).

The interface a batch system gives the agent is ``BatchSystem``: submit, state, cancel and
its capacity; HTCondor's bindings (``htcondor.Submit``, ``Schedd``) map onto the same four.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.executor import Execution
from agent.kinds import runner_command
from agent.policy import SlurmPolicy
from hepx.errors import ConfigError, ExecutionError

log = logging.getLogger("hepx.agent")

# Slurm's job states after which a job never runs again (scontrol's JobState).
ENDED = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
# Seconds a command of Slurm's may take before the controller counts as unreachable.
COMMAND_TIMEOUT = 30


@dataclass(frozen=True)
class BatchState:
    """Where a batch job is: Slurm's state name, and its exit code once it ended."""

    state: str
    exit_code: int | None = None
    reason: str = ""

    @property
    def ended(self) -> bool:
        return self.state in ENDED


class BatchSystem(Protocol):
    """What the agent needs of a batch system."""

    name: str

    def submit(
        self,
        name: str,
        script: Path,
        log_path: Path,
        cpus: float,
        memory_mb: int,
        seconds: float,
        env: dict[str, str],
    ) -> str:
        """Queue ``script`` (stdout and stderr to ``log_path``); the batch job's id."""

    def state(self, batch_id: str) -> BatchState | None:
        """The job's state, or None once the system does not know it."""

    def cancel(self, batch_id: str) -> None: ...

    def capacity(self) -> tuple[int, int]:
        """CPUs and memory (MB) the agent's slots share."""


class Slurm:
    """The Slurm commands (``SLURM_CONF`` and ``PATH`` from the environment)."""

    name = "slurm"

    def __init__(self, policy: SlurmPolicy) -> None:
        self.policy = policy
        missing = [c for c in ("sbatch", "scontrol", "scancel", "sinfo") if not shutil.which(c)]
        if missing:
            raise ConfigError(
                f"executor slurm: {', '.join(missing)} not found on PATH (install slurm-client, "
                "or run `bash scripts/slurm.sh` for a one-node test cluster)"
            )

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                env={**os.environ, **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ExecutionError(f"{args[0]} did not answer in {COMMAND_TIMEOUT} s") from exc
        if done.returncode != 0:
            raise ExecutionError(
                f"{shlex.join(args)}: {done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def submit(
        self,
        name: str,
        script: Path,
        log_path: Path,
        cpus: float,
        memory_mb: int,
        seconds: float,
        env: dict[str, str],
    ) -> str:
        args = [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--output={log_path}",
            f"--chdir={script.parent}",
            f"--cpus-per-task={max(1, math.ceil(cpus))}",
            # Slurm's own limit is a backstop in whole minutes; the agent cancels on time.
            f"--time={max(1, math.ceil(seconds / 60))}",
            "--export=ALL",
        ]
        if memory_mb:
            args.append(f"--mem={memory_mb}")
        if self.policy.partition:
            args.append(f"--partition={self.policy.partition}")
        out = self._run(*args, *self.policy.sbatch_args, str(script), env=env)
        return out.strip().split(";")[0]

    def state(self, batch_id: str) -> BatchState | None:
        try:
            out = self._run("scontrol", "show", "job", "--oneliner", batch_id)
        except ExecutionError as exc:
            if "Invalid job id" in str(exc):
                return None
            raise
        fields = dict(re.findall(r"(\w+)=(\S*)", out))
        code = fields.get("ExitCode", "")
        exit_code = int(code.split(":")[0]) if code[:1].isdigit() else None
        return BatchState(fields.get("JobState", "UNKNOWN"), exit_code, fields.get("Reason", ""))

    def cancel(self, batch_id: str) -> None:
        self._run("scancel", batch_id)

    def capacity(self) -> tuple[int, int]:
        """CPUs and memory (MB) of the partition's nodes: what the agent's slots share."""
        args = ["sinfo", "--noheader", "--Node", "--format=%N %c %m"]
        if self.policy.partition:
            args.append(f"--partition={self.policy.partition}")
        nodes = {
            line.split()[0]: line.split()[1:] for line in self._run(*args).splitlines() if line
        }
        if not nodes:
            raise ConfigError("executor slurm: sinfo lists no nodes in the partition")
        cpus = sum(int(c) for c, _ in nodes.values())
        memory = sum(int(m.rstrip("+")) for _, m in nodes.values())
        return cpus, memory


def run_batch_job(
    batch: BatchSystem,
    kind: str,
    spec_path: Path,
    inputs_dir: Path,
    outputs_dir: Path,
    log_path: Path,
    timeout: float,
    job_id: int,
    cpus: float,
    memory_mb: int,
    env: dict[str, str],
    known_id: str | None,
    record: Callable[[str], None],
    poll: float = 1.0,
) -> Execution:
    """Run the job as a batch job (or follow ``known_id``, queued by an agent before a
    restart) until it ends; ``record`` saves a new batch id before the wait begins."""
    started = time.monotonic()
    batch_id = known_id
    if batch_id is None:
        script = spec_path.parent / "batch.sh"
        cmd = runner_command(kind, spec_path, inputs_dir, outputs_dir)
        script.write_text(f"#!/bin/sh\nexec {shlex.join(cmd)}\n")
        script.chmod(0o755)
        batch_id = batch.submit(f"hepx-{job_id}", script, log_path, cpus, memory_mb, timeout, env)
        record(batch_id)
        log.info("event=batch_submitted job=%d batch=%s", job_id, batch_id)
    else:
        log.info("event=batch_followed job=%d batch=%s", job_id, batch_id)
    seen = ""
    while True:
        state = batch.state(batch_id)
        if state is None:
            raise ExecutionError(f"job {job_id}: batch job {batch_id} is unknown to the cluster")
        if state.state != seen:
            seen = state.state
            log.info("event=batch_state job=%d batch=%s state=%s", job_id, batch_id, seen)
        if state.ended:
            break
        if time.monotonic() - started > timeout:
            batch.cancel(batch_id)
            raise ExecutionError(
                f"job {job_id}: {kind} timed out after {timeout:.0f} s (batch job {batch_id} "
                "cancelled)"
            )
        time.sleep(poll)
    seconds = time.monotonic() - started
    if state.state != "COMPLETED" or state.exit_code != 0:
        raise ExecutionError(
            f"job {job_id}: batch job {batch_id} ended {state.state} (exit code "
            f"{state.exit_code}){f': {state.reason}' if state.reason not in ('', 'None') else ''}"
        )
    return Execution(0, seconds, log_path, batch={"system": batch.name, "id": batch_id})
