"""Kind ``container``: any OCI image and command; the sandbox settings container kinds share."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict

# An OCI image reference: [registry[:port]/]path[:tag][@sha256:<64 hex>], lowercase path.
_IMAGE_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_image(ref: str) -> str:
    if len(ref) > 512 or not _IMAGE_RE.fullmatch(ref):
        raise ValueError(
            f"{ref!r} is not an image reference: write [registry/]name[:tag][@sha256:<digest>] "
            "with a lowercase name, e.g. 'busybox:1.36' or 'ghcr.io/key4hep/key4hep-images/alma9'"
        )
    return ref


def check_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > 128:
        raise ValueError(f"{len(env)} environment variables; at most 128 are allowed")
    for name, value in env.items():
        if not _ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, '_')")
        if len(value) > 4096 or "\x00" in value:
            raise ValueError(f"env {name!r}: at most 4096 characters and no NUL")
    return env


class SandboxParams(Strict):
    """Settings every container-run kind shares: the sandbox the job gets."""

    env: Annotated[dict[str, str], AfterValidator(check_env)] = Field(
        default_factory=dict, description="Environment variables set in the container"
    )
    network: bool = Field(
        default=False, description="Give the container a network (off by default: no network)"
    )
    cpus: float = Field(default=1, gt=0, le=256, description="CPU cores the container may use")
    memory_mb: int = Field(
        default=1024, ge=16, le=1_048_576, description="Memory limit in MiB (no swap beyond it)"
    )


class ContainerParams(SandboxParams):
    """Any OCI image and command; inputs at /inputs (read-only), outputs written to /outputs."""

    image: Annotated[str, AfterValidator(check_image)] = Field(
        description="Image reference; the worker resolves a tag to a digest and records it",
        examples=["busybox:1.36", "python@sha256:..."],
    )
    command: list[Annotated[str, Field(max_length=65_536)]] = Field(
        min_length=1,
        max_length=1000,
        description="Program and arguments (no shell unless given); replaces the image's "
        "entrypoint",
    )
    workdir: str = Field(
        default="/outputs", pattern=r"^/[^\x00]*$", description="Working directory (absolute)"
    )


class ContainerJob(JobSpec):
    """A job of kind ``container``."""

    kind: Literal["container"] = Field(description="Job kind")
    params: ContainerParams


KIND = Kind("container", ContainerJob, DigestMethod.BYTES, Sandbox.CONTAINER, Pricing.FLAT, 10**15)
