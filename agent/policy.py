"""A worker's policy: which jobs it takes and at what price (DESIGN.md, principle 1).

Example ``policy.yaml``::

    kinds:                       # job kinds this worker runs, each with its ask
      echo: {price: "1 gwei"}
      hep.pythia: {price: "0.001 ether"}
    max_runtime: 3600            # seconds; longer jobs are declined
    slots: 8                     # CPUs the jobs share (each takes resources.cpus); default: all
    memory_mb: 16000             # memory they share (each takes resources.memory_mb); default: all
    requesters: []               # if non-empty, only these requesters' jobs
    images: [hepx/busybox]       # images container/key4hep jobs may use (repo, repo:tag, digest)
    bidding: {strategy: ask, max_concurrent_bids: 4}   # auctions: ask = bid the kind's price;
                                 # undercut = just below the best held bid, down to min_price
    stake: "1 ether"             # register (or top up) to this stake at startup, kinds declared
    tokens: []                   # ERC-20s accepted besides ETH; prices are then in token units
    slurm: {partition: hepx}     # run jobs on this Slurm cluster (see agent/slurm.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from agent.images import image_allowed, job_image
from agent.llm_policy import LlmPolicy, llm_verdict
from hepx.chain import Job
from hepx.errors import PolicyError
from hepx.kinds import PER_TOKEN_KINDS, default_prices
from hepx.spec import JobSpec
from hepx.units import format_wei, parse_wei

Wei = Annotated[int, BeforeValidator(parse_wei)]


class KindPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    price: Wei = Field(description="The worker's ask for one job of this kind; also its floor")
    image: str | None = Field(
        default=None, description="Run this kind's runner in this local image (e.g. hepx:local)"
    )
    cpus: float = Field(default=1, gt=0, description="CPU cores for this kind when run in `image`")
    memory_mb: int = Field(
        default=2048, ge=16, description="Memory limit in MiB when run in `image`"
    )


class SlurmPolicy(BaseModel):
    """``executor: slurm`` in a worker's policy, and where its jobs go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str | None = Field(
        default=None, description="sbatch --partition (default: the cluster's)"
    )
    sbatch_args: list[str] = Field(
        default_factory=list,
        description="More sbatch options, e.g. ['--account=hep', '--qos=short']",
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="Seconds between scontrol calls")


class Bidding(BaseModel):
    """How the worker bids in auctions (claim-mode jobs are claimed at the kind's price)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["ask", "undercut"] = Field(
        default="ask", description="ask: bid the kind's price; undercut: beat the best held bid"
    )
    min_price: Wei | None = Field(
        default=None, description="Undercut floor (default: the kind's price)"
    )
    step: Wei = Field(default=1, gt=0, description="How far below the best held bid to go")
    max_concurrent_bids: int = Field(
        default=4, ge=1, description="Open auction bids at once; more jobs are declined"
    )


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: dict[str, KindPolicy] = Field(
        # Every kind at the registry's default ask; token-priced kinds need an llm section,
        # so a policy that has one lists them (hepx/llm_server.py writes such a policy).
        default_factory=lambda: {name: KindPolicy(price=p) for name, p in default_prices().items()}
    )
    max_runtime: int = Field(
        default=3600, gt=0, description="Seconds; jobs that may run longer are declined"
    )
    slots: int | None = Field(
        default=None,
        ge=1,
        description="CPU cores shared by the jobs this agent runs at once (each takes its "
        "resources.cpus); default: this machine's",
    )
    memory_mb: int | None = Field(
        default=None,
        ge=1,
        description="Memory (MB) shared by those jobs (each takes its resources.memory_mb); "
        "default: this machine's",
    )
    lot_jobs: int = Field(
        default=100,
        ge=1,
        description="Most jobs of a sweep taken in one lot (a lot is paid once all its results "
        "are in; it is also held to what the free slots can run before its run deadline)",
    )
    withdraw_every: int = Field(
        default=600,
        ge=0,
        description="Seconds at least between withdrawals of the agent's earnings: each is a "
        "transaction with its fee, and the credit is the agent's in the contract meanwhile "
        "(what is left is withdrawn when the agent stops); 0: as soon as it is paid",
    )
    requesters: list[str] = Field(default_factory=list, description="Allowlist; empty = anyone")
    images: list[str] = Field(
        default_factory=list,
        description="Images container jobs may use: sha256:<digest>, repo@sha256:<digest>, "
        "repo:tag or repo (any tag); empty = none",
    )
    bidding: Bidding = Field(default=Bidding())
    verify: bool = Field(
        default=True,
        description="Volunteer for dispute panels on results of the kinds this policy takes "
        "(needs a stake bonded before the dispute; a seat locks the job's price of it)",
    )
    stake: Wei | None = Field(
        default=None,
        description="Register with (or top up to) this stake at startup, declaring the kinds "
        "(without it the agent registers with no stake: its peers then know it is at work)",
    )
    tokens: list[str] = Field(
        default_factory=list,
        description="ERC-20 addresses whose jobs are taken (prices in token units); ETH always",
    )
    slurm: SlurmPolicy | None = Field(
        default=None,
        description="Run jobs (all but container kinds) on this Slurm cluster; the slots are "
        "its partition's CPUs and memory unless slots/memory_mb say otherwise",
    )
    llm: LlmPolicy | None = Field(
        default=None, description="OpenAI-compatible endpoint and token prices for llm.* kinds"
    )

    @classmethod
    def load(cls, path: Path | None) -> Policy:
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(data)
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise PolicyError(f"policy file {path}: {problems}") from exc


@dataclass(frozen=True)
class Decision:
    accept: bool
    reason: str
    price: int = 0


def decide(policy: Policy, spec: JobSpec, job: Job) -> Decision:
    """Whether to claim ``job`` (whose spec is ``spec``) and at what price."""
    kind = policy.kinds.get(spec.kind)
    if kind is None:
        return Decision(False, f"kind {spec.kind} not in policy ({', '.join(policy.kinds)})")
    image = job_image(spec)
    if image is not None and not image_allowed(policy.images, image):
        return Decision(False, f"image {image} not in policy images")
    if policy.requesters and job.requester.lower() not in {r.lower() for r in policy.requesters}:
        return Decision(False, f"requester {job.requester} not in allowlist")
    if job.escrow < kind.price:
        return Decision(
            False, f"max price {format_wei(job.escrow)} below ask {format_wei(kind.price)}"
        )
    runtime = spec.resources.max_runtime
    if runtime > policy.max_runtime:
        return Decision(False, f"max_runtime {runtime}s above policy limit {policy.max_runtime}s")
    if job.run_window < runtime:
        return Decision(False, f"run window {job.run_window}s shorter than max_runtime {runtime}s")
    if spec.kind in PER_TOKEN_KINDS:  # priced per token, worst case: agent/llm_policy.py
        verdict = llm_verdict(policy.llm, spec, job.escrow, kind.price)
        return Decision(verdict.accept, verdict.reason, verdict.price)
    return Decision(True, "accepted", kind.price)
