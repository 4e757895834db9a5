"""Worker agents of the devnet run in containers (``hepx devnet up --workers-in-containers``).

Each agent runs from a local image (``hepx:local``, made by ``make images``) as a ``docker run``
child of the devnet: host networking (it reaches anvil and the API on 127.0.0.1), the devnet's
home mounted at the same path (store, deployment file, work folders: the job containers it
starts are bind-mounted by host path) and the engine's socket mounted so it can start them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hepx.errors import ConfigError

DEFAULT_WORKER_IMAGE = "hepx:local"
SOCKET_IN_CONTAINER = "/var/run/docker.sock"


def engine_socket() -> Path:
    """The host path of the engine's Unix socket (DOCKER_HOST or the default)."""
    host = os.environ.get("DOCKER_HOST", f"unix://{SOCKET_IN_CONTAINER}")
    if not host.startswith("unix://"):
        raise ConfigError(
            f"DOCKER_HOST={host}: containerised workers need the engine's Unix socket to mount"
        )
    return Path(host.removeprefix("unix://"))


def check_worker_image(image: str) -> str:
    """The docker CLI's path, once it and ``image`` are known to be there."""
    docker = shutil.which("docker")
    if docker is None:
        raise ConfigError("--workers-in-containers needs the docker CLI on PATH")
    found = subprocess.run(
        [docker, "image", "inspect", image], capture_output=True, text=True, timeout=60
    )
    if found.returncode != 0:
        raise ConfigError(
            f"image {image} is not present ({found.stderr.strip()}): build it with `make images`"
        )
    return docker


def worker_container_command(
    docker: str,
    name: str,
    image: str,
    home: Path,
    agent_args: list[str],
    env: dict[str, str],
    policy: Path | None = None,
) -> list[str]:
    """``docker run ...`` that runs ``hepx <agent_args>`` as a devnet worker.

    Values of ``env`` are passed by name (``-e NAME``), so keys never show in ``ps``; the
    caller gives them to the docker CLI's own environment.
    """
    socket = engine_socket()
    cmd = [
        docker, "run", "--rm", "--name", name,
        "--network", "host",
        "--user", f"{os.getuid()}:{os.getgid()}",
        "--group-add", str(socket.stat().st_gid),
        "-v", f"{home}:{home}",
        "-v", f"{socket}:{SOCKET_IN_CONTAINER}",
        "-e", f"DOCKER_HOST=unix://{SOCKET_IN_CONTAINER}",
        "--label", "org.hepx.role=devnet-worker",
    ]  # fmt: skip
    if policy is not None:
        # Mounted at its absolute path, and the agent told that path (the cwd differs inside).
        agent_args = [str(policy.resolve()) if a == str(policy) else a for a in agent_args]
        policy = policy.resolve()
        cmd += ["-v", f"{policy}:{policy}:ro"]
    for key in sorted(env):
        cmd += ["-e", key]
    return [*cmd, image, *agent_args]
