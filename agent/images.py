"""Image references and the policy's image allowlist (pure string logic; no Docker needed).

A policy entry is one of:
  * ``sha256:<hex>``: exactly that image (its digest or image id);
  * ``repo@sha256:<hex>``: that repository at that digest;
  * ``repo:tag``: that repository at that tag;
  * ``repo``: any tag or digest of that repository.
Docker Hub short names are normalised (``busybox`` == ``docker.io/library/busybox``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hepx.kinds.container import ContainerJob
from hepx.kinds.key4hep import Key4hepJob
from hepx.spec import JobSpec

_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    repository: str  # normalised, e.g. docker.io/library/busybox
    tag: str | None
    digest: str | None  # sha256:<hex>

    def __str__(self) -> str:
        text = self.repository + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")


def parse_ref(ref: str) -> ImageRef:
    """Split ``[registry/]path[:tag][@digest]`` and normalise Docker Hub names."""
    name, _, digest = ref.partition("@")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a ':' after the last '/' starts a tag, not a registry port
        name, tag = name[:colon], name[colon + 1 :]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        # No registry host: a Docker Hub name (official images live under library/).
        name = f"{_HUB}/{name}" if rest else f"{_HUB}/library/{name}"
    return ImageRef(name, tag, digest or None)


def image_allowed(allowlist: list[str], ref: str, resolved: tuple[str, ...] = ()) -> bool:
    """Whether ``ref`` (whose digests, once resolved locally, are ``resolved``) is allowed."""
    image = parse_ref(ref)
    digests = {d for d in (image.digest, *resolved) if d}
    for entry in allowlist:
        if entry.startswith("sha256:"):
            if entry in digests:
                return True
            continue
        allowed = parse_ref(entry)
        if allowed.repository != image.repository:
            continue
        if allowed.digest:
            if allowed.digest in digests:
                return True
        elif allowed.tag is None or allowed.tag == (image.tag or "latest"):
            return True
    return False


def job_image(spec: JobSpec) -> str | None:
    """The image a container-kind job names (None for kinds that name none)."""
    if isinstance(spec, ContainerJob | Key4hepJob):
        return spec.params.image
    return None
