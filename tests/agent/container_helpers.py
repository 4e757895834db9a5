"""A Docker engine for container tests, or a skip that says how to get one.

CI (.ci/run) starts an engine and sets HEPX_REQUIRE_DOCKER=1, so there a missing engine or
image fails the run instead of silently skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.container import docker_client
from hepx.errors import ExecutionError

BUSYBOX = "hepx/busybox:local"
FAKE_KEY4HEP = "hepx/fake-key4hep:test"

# Stands in for Key4hep's k4run in a busybox image: it records how it was called and writes
# an output file the way a Gaudi job writes its EDM4hep file, into its working directory.
FAKE_K4RUN = """#!/bin/sh
set -e
echo "$@" > /outputs/k4run-args.txt
echo "K4_SETUP=${K4_SETUP:-no}" > /outputs/k4run-env.txt
echo "cwd=$(pwd)" >> /outputs/k4run-env.txt
cp "$1" /outputs/steering-copy.py
ls /inputs > /outputs/inputs.txt
printf 'edm4hep-events' > output.edm4hep.root
echo "k4run done: $1"
"""
FAKE_SETUP = '[ -z "$FAIL_SETUP" ] || return 1\nexport K4_SETUP=sourced\n'
FAKE_BASH = '#!/bin/sh\nexec /bin/sh "$@"\n'


def _missing(reason: str) -> None:
    if os.environ.get("HEPX_REQUIRE_DOCKER"):
        pytest.fail(f"HEPX_REQUIRE_DOCKER is set but {reason}")
    pytest.skip(reason)


def engine() -> Any:
    """A docker client with the busybox test image present, or skip."""
    try:
        client = docker_client(timeout=10)
    except ExecutionError as exc:
        _missing(f"no Docker engine (scripts/dockerd.sh starts one; export DOCKER_HOST): {exc}")
    if not client.images.list(name=BUSYBOX):
        _missing(f"image {BUSYBOX} is missing: run `make images`")
    return client


def has_image(client: Any, ref: str) -> bool:
    return bool(client.images.list(name=ref))


def build_fake_key4hep(client: Any, context: Path) -> str:
    """Build (offline, from the busybox image) an image whose k4run is FAKE_K4RUN."""
    context.mkdir(parents=True, exist_ok=True)
    for name, text in (("k4run", FAKE_K4RUN), ("setup.sh", FAKE_SETUP), ("bash", FAKE_BASH)):
        (context / name).write_text(text)
        (context / name).chmod(0o755)
    (context / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nCOPY k4run bash /usr/bin/\nCOPY setup.sh /opt/k4/setup.sh\n"
    )
    client.images.build(path=str(context), tag=FAKE_KEY4HEP, network_mode="none", rm=True)
    return FAKE_KEY4HEP
