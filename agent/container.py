"""Runs one job in a container through the Docker API (dockerd, or Podman's Docker socket).

The sandbox: the image pinned by its id (a tag is resolved once, before the clock starts),
inputs read-only at /inputs, an empty /outputs that becomes the job's outputs, no network
unless asked, CPU and memory limits without swap, and a wall-clock limit that kills the
container. stdout and stderr are kept as files of the result. Every container carries the
agent's labels and is removed whatever happens; ``remove_leftovers`` sweeps up after an agent
that was killed mid-job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepx.errors import ExecutionError

log = logging.getLogger(__name__)

LABEL_ROLE = "org.hepx.role"
LABEL_WORKER = "org.hepx.worker"
LABEL_JOB = "org.hepx.job"
ROLE_JOB = "job"


@dataclass(frozen=True)
class ResolvedImage:
    ref: str  # as the spec named it
    image_id: str  # sha256:<hex> of the image config: what we run, so a moved tag cannot swap it
    repo_digests: tuple[str, ...]  # registry digests (repo@sha256:...), when pulled from one

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.image_id, *(d.partition("@")[2] for d in self.repo_digests))


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class Sandbox:
    """What one container run gets."""

    image: ResolvedImage
    command: list[str]
    outputs_dir: Path
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/outputs"
    network: bool = False
    cpus: float = 1.0
    memory_mb: int = 1024
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # default: the agent's own uid:gid, so it can read the outputs


@dataclass(frozen=True)
class ContainerRun:
    exit_code: int
    seconds: float
    log_path: Path  # stdout and stderr interleaved
    stdout_path: Path
    stderr_path: Path
    oom_killed: bool


def docker_client(timeout: float = 60.0) -> Any:
    """A client for the engine DOCKER_HOST names (or the default socket); fails clearly."""
    try:
        import docker  # noqa: PLC0415 - optional dependency (the `containers` extra)
    except ImportError as exc:
        raise ExecutionError(
            "the Docker SDK is not installed: pip install 'hepx[containers]'"
        ) from exc
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:  # docker raises DockerException, requests and socket errors
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise ExecutionError(
            f"no Docker engine answers at {where}: start one (scripts/dockerd.sh) "
            f"and set DOCKER_HOST ({exc})"
        ) from exc
    return client


def resolve_image(client: Any, ref: str, pull: bool = True) -> ResolvedImage:
    """The local image ``ref`` names, pulled first if absent and ``pull``."""
    import docker.errors  # noqa: PLC0415

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        if not pull:
            raise ExecutionError(f"image {ref} is not present on this worker") from None
        log.info("event=pulling image=%s", ref)
        try:
            image = client.images.pull(ref)
        except docker.errors.APIError as exc:
            raise ExecutionError(
                f"image {ref} is not present and could not be pulled: {exc.explanation or exc}"
            ) from exc
    except docker.errors.APIError as exc:
        raise ExecutionError(f"cannot inspect image {ref}: {exc.explanation or exc}") from exc
    return ResolvedImage(ref, image.id, tuple(image.attrs.get("RepoDigests") or ()))


def run_container(
    client: Any, box: Sandbox, timeout: float, log_dir: Path, name: str
) -> ContainerRun:
    """Run ``box`` to completion; raise ExecutionError on a timeout, OOM or non-zero exit.

    ``log_dir`` receives job.log, stdout.txt and stderr.txt (also when the run fails).
    """
    import docker.errors  # noqa: PLC0415
    import requests  # noqa: PLC0415 - docker's transport; its timeouts surface as these

    uid_gid = box.user or f"{os.getuid()}:{os.getgid()}"
    volumes = {
        str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in box.mounts
    }
    volumes[str(box.outputs_dir)] = {"bind": "/outputs", "mode": "rw"}
    memory = box.memory_mb * 1024 * 1024
    _remove_named(client, name)  # a leftover of a run this agent did not finish
    try:
        container = client.containers.create(
            box.image.image_id,
            # The job's command is the whole program: it replaces the image's entrypoint.
            entrypoint=box.command[:1],
            command=box.command[1:],
            environment=box.env,
            working_dir=box.workdir,
            volumes=volumes,
            network_mode="bridge" if box.network else "none",
            nano_cpus=int(box.cpus * 1e9),
            mem_limit=memory,
            memswap_limit=memory,  # the same value: no swap on top of the limit
            pids_limit=4096,
            labels=box.labels,
            user=uid_gid,
            name=name,
            detach=True,
        )
    except docker.errors.APIError as exc:
        raise ExecutionError(f"cannot create the container: {exc.explanation or exc}") from exc
    paths = (log_dir / "job.log", log_dir / "stdout.txt", log_dir / "stderr.txt")
    started = time.monotonic()
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            _kill(container)
            _save_logs(container, *paths)
            raise ExecutionError(
                f"timed out after {timeout:.0f} s: the container was killed"
            ) from None
        seconds = time.monotonic() - started
        _save_logs(container, *paths)
        container.reload()
        oom = bool(container.attrs["State"].get("OOMKilled"))
        code = int(status.get("StatusCode", -1))
    except docker.errors.APIError as exc:
        raise ExecutionError(f"the container failed to run: {exc.explanation or exc}") from exc
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    # Podman (4.3, cgroup v2) does not always set OOMKilled; a SIGKILL (137) we did not send
    # comes from the kernel's OOM killer enforcing the memory limit.
    if oom or code == 137:
        raise ExecutionError(
            f"killed for running out of memory (limit {box.memory_mb} MiB); exit code {code}"
        )
    if code != 0:
        raise ExecutionError(f"exited with code {code}: {_last_line(paths[2], paths[0])}")
    return ContainerRun(code, seconds, *paths, oom_killed=False)


def remove_leftovers(client: Any, worker: str) -> int:
    """Remove job containers this worker left behind (it was killed mid-job); return how many."""
    import docker.errors  # noqa: PLC0415

    labels = [f"{LABEL_ROLE}={ROLE_JOB}", f"{LABEL_WORKER}={worker.lower()}"]
    removed = 0
    for container in client.containers.list(all=True, filters={"label": labels}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
            removed += 1
            log.info("event=removed_leftover container=%s", container.name)
    return removed


def _remove_named(client: Any, name: str) -> None:
    import docker.errors  # noqa: PLC0415

    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


def _kill(container: Any) -> None:
    import docker.errors  # noqa: PLC0415

    with contextlib.suppress(docker.errors.APIError):
        container.kill()
    with contextlib.suppress(Exception):
        container.wait(timeout=30)


def _save_logs(container: Any, combined: Path, stdout: Path, stderr: Path) -> None:
    for path, out, err in ((combined, True, True), (stdout, True, False), (stderr, False, True)):
        with open(path, "wb") as sink:
            for chunk in _stream(container, out, err):
                sink.write(chunk)


def _stream(container: Any, stdout: bool, stderr: bool) -> Iterator[bytes]:
    stream: Iterator[bytes] = container.logs(stdout=stdout, stderr=stderr, stream=True)
    yield from stream


def _last_line(*paths: Path) -> str:
    for path in paths:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][:500]
    return "(no output)"
