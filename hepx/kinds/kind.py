"""What the registry says of a kind: one record from which the spec union, the runners'
table, the digests and the default policy are all built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from hepx.spec_fields import JobSpec


class DigestMethod(StrEnum):
    """How replicas of a kind compare outputs (hepx/digest.py)."""

    BYTES = "bytes"  # every output file's bytes: deterministic kinds
    ROOT = "root"  # ROOT histograms and trees as numbers rounded to a tolerance


class Sandbox(StrEnum):
    """Where a kind runs on a worker."""

    # Its runner module, agent/kinds/<name with '_' for '.'>.py: in a subprocess, or in the
    # image the worker's policy gives the kind.
    PROCESS = "process"
    # Always in the image its spec names (the policy's images list must allow it).
    CONTAINER = "container"


class Pricing(StrEnum):
    """How a worker prices a job of the kind."""

    FLAT = "flat"  # the kind's price per job
    PER_TOKEN = "per_token"  # the kind's price plus the worst case of the tokens the spec allows


# Why LLM kinds are not disputable: their answer is not reproducible from the spec alone.
NOT_REPRODUCIBLE = (
    "an LLM's answer depends on the backend, build and hardware that served it: no re-run is "
    "bound to give its digest again"
)


@dataclass(frozen=True)
class Kind:
    name: str
    job: type[JobSpec]  # the spec model: ``kind: Literal[name]`` and its ``params``
    digest: DigestMethod
    sandbox: Sandbox
    pricing: Pricing
    default_price: int  # wei: the default worker policy's ask
    # Why a result of this kind cannot be disputed (no re-run gives its digest again), or
    # None: a dispute's verifiers re-run it. Agents do not verify such kinds and
    # `hepx job dispute` refuses them; the API and the explorer say so.
    not_disputable: str | None = None
    # Its runner is pure Python and leaves nothing behind in its process (no native library
    # with global state, no module-level caches of a job's data), so an agent may run one job
    # after another in one kept process instead of forking one per job (agent/executor.py).
    reuses_process: bool = False

    @property
    def params(self) -> type[BaseModel]:
        annotation = self.job.model_fields["params"].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        return annotation

    @property
    def runner(self) -> str | None:
        """The module ``python -m agent.kinds`` runs for this kind (None: runs in its image)."""
        if self.sandbox is Sandbox.CONTAINER:
            return None
        return "agent.kinds." + self.name.replace(".", "_")
