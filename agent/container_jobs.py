"""Jobs that run in containers: what each kind runs, and the record the result carries.

Kinds ``container`` and ``key4hep`` always run in their image; any other kind runs in a
container when the worker's policy gives it an image (``hep.pythia: {image: hepx:local}``),
through the same runner entry point the subprocess path uses.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

from agent.container import (
    LABEL_JOB,
    LABEL_ROLE,
    LABEL_WORKER,
    ROLE_JOB,
    Mount,
    ResolvedImage,
    Sandbox,
    docker_client,
    remove_leftovers,
    resolve_image,
    run_container,
)
from agent.executor import Execution
from agent.images import image_allowed
from agent.kinds import runner_args
from agent.policy import Policy
from hepx.errors import ExecutionError
from hepx.kinds import CONTAINER_KINDS
from hepx.kinds.container import ContainerJob
from hepx.kinds.key4hep import Key4hepJob
from hepx.spec import JobSpec, canonical_json
from hepx.store import LocalStore

log = logging.getLogger("hepx.agent")

CVMFS_KEY4HEP = Path("/cvmfs/sw.hsf.org")
# Sources the Key4hep setup script when the image (or a mounted CVMFS) has it, then runs k4run
# with the arguments after the script; bash because the setup script is written for bash.
K4RUN_SCRIPT = (
    'if [ -f "$HEPX_K4_SETUP" ]; then '
    'exec bash -c \'. "$0" >/dev/null || { echo "error: sourcing $0 failed" >&2; exit 97; }; '
    'exec k4run "$@"\' "$HEPX_K4_SETUP" "$@"; '
    'fi; exec k4run "$@"'
)
# Where the runner inside an image with hepx finds the spec.
SPEC_IN_CONTAINER = "/job/spec.json"


def runs_in_container(spec: JobSpec, policy: Policy) -> bool:
    kind = policy.kinds.get(spec.kind)
    return spec.kind in CONTAINER_KINDS or (kind is not None and kind.image is not None)


def uses_containers(policy: Policy) -> bool:
    return any(k in CONTAINER_KINDS or p.image for k, p in policy.kinds.items())


@dataclass(frozen=True)
class Plan:
    """What runs a job, before its image is resolved to an id."""

    image: str
    command: list[str]
    mounts: list[Mount]
    env: dict[str, str]
    workdir: str
    network: bool
    cpus: float
    memory_mb: int

    def sandbox(self, image: ResolvedImage, outputs: Path, labels: dict[str, str]) -> Sandbox:
        return Sandbox(
            image,
            self.command,
            outputs,
            self.mounts,
            self.env,
            self.workdir,
            self.network,
            self.cpus,
            self.memory_mb,
            labels,
        )


def plan_for(spec: JobSpec, policy: Policy, workdir: Path, inputs: Path) -> Plan:
    """How ``spec`` runs: image, command line, mounts, environment and limits."""
    if isinstance(spec, ContainerJob):
        p = spec.params
        return _plan(p.image, p.command, inputs, p.env, p.network, p.cpus, p.memory_mb, p.workdir)
    if isinstance(spec, Key4hepJob):
        k = spec.params
        command = ["/bin/sh", "-c", K4RUN_SCRIPT, "k4run", f"/inputs/{k.steering.name}", *k.args]
        env = {**k.env, "HEPX_K4_SETUP": k.setup_script}
        plan = _plan(k.image, command, inputs, env, k.network, k.cpus, k.memory_mb)
        if CVMFS_KEY4HEP.is_dir():  # a host with CVMFS: the job sees the Key4hep stack there
            plan.mounts.append(Mount(Path("/cvmfs"), "/cvmfs"))
        return plan
    kind = policy.kinds.get(spec.kind)
    if kind is None or kind.image is None:
        raise ExecutionError(f"kind {spec.kind} has no container image in this worker's policy")
    spec_file = workdir / "container-spec.json"
    spec_file.write_bytes(canonical_json(spec))
    command = ["python", *runner_args(spec.kind, SPEC_IN_CONTAINER, "/inputs", "/outputs")]
    plan = _plan(kind.image, command, inputs, {}, False, kind.cpus, kind.memory_mb)
    plan.mounts.append(Mount(spec_file, SPEC_IN_CONTAINER))
    return plan


def run_container_job(
    spec: JobSpec,
    policy: Policy,
    store: LocalStore,
    workdir: Path,
    timeout: float,
    job_id: int,
    worker: str,
) -> Execution:
    """Run ``spec`` in its container; outputs land in workdir/result/outputs.

    Expects the inputs fetched into workdir/inputs; fetches a key4hep steering file itself.
    stdout.txt, stderr.txt and job.log land in workdir/result, also when the run fails.
    """
    inputs, result = workdir / "inputs", workdir / "result"
    if isinstance(spec, Key4hepJob):
        store.get(spec.params.steering.cid, inputs / spec.params.steering.name)
    plan = plan_for(spec, policy, workdir, inputs)
    ref = plan.image
    client = docker_client()
    try:
        image = resolve_image(client, ref)  # before the clock: pulling is not the job's time
        if spec.kind in CONTAINER_KINDS and not image_allowed(policy.images, ref, image.digests):
            raise ExecutionError(f"image {ref} ({image.image_id}) is not in the policy's images")
        labels = {LABEL_ROLE: ROLE_JOB, LABEL_WORKER: worker.lower(), LABEL_JOB: str(job_id)}
        box = plan.sandbox(image, result / "outputs", labels)
        name = f"hepx-{worker.lower()}-{job_id}"
        log.info(
            "event=container_start job=%d image=%s id=%s command=%s",
            job_id,
            ref,
            image.image_id,
            shlex.join(box.command)[:200],
        )
        run = run_container(client, box, timeout, result, name)
    finally:
        client.close()
    record = {
        "image": ref,
        "image_id": image.image_id,
        "repo_digests": list(image.repo_digests),
        "command": box.command,
        "env": box.env,
        "network": box.network,
        "cpus": box.cpus,
        "memory_mb": box.memory_mb,
        "exit_code": run.exit_code,
        "stdout_cid": store.add_file(run.stdout_path),
        "stderr_cid": store.add_file(run.stderr_path),
    }
    (result / "container.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return Execution(run.exit_code, run.seconds, run.log_path, record)


def remove_leftover_containers(policy: Policy, worker: str) -> None:
    """At agent start: remove job containers a killed run of this agent left behind."""
    if not uses_containers(policy):
        return
    try:
        client = docker_client(timeout=10)
    except ExecutionError as exc:
        log.warning("event=no_container_engine worker=%s error=%s", worker, exc)
        return
    try:
        removed = remove_leftovers(client, worker)
    finally:
        client.close()
    if removed:
        log.info("event=leftover_containers_removed worker=%s count=%d", worker, removed)


def _plan(
    ref: str,
    command: list[str],
    inputs: Path,
    env: dict[str, str],
    network: bool,
    cpus: float,
    memory_mb: int,
    workdir: str = "/outputs",
) -> Plan:
    return Plan(
        ref, list(command), [Mount(inputs, "/inputs")], dict(env), workdir, network, cpus, memory_mb
    )
