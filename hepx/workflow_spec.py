"""The workflow file's model: its steps, their inputs and sweeps, and the defaults merged into
each step's spec (hepx/workflow.py expands and runs it)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hepx.kinds import REGISTRY
from hepx.spec_fields import Metadata

_STEP_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class StepInput(_Strict):
    """One input of a step: exactly one of cid, job or step."""

    name: str | None = Field(default=None, description="Input name (default: the step's name)")
    cid: str | None = Field(default=None, description="A file or folder in the store")
    job: int | None = Field(default=None, ge=0, description="The result of this on-chain job")
    step: str | None = Field(default=None, description="The results of an earlier step")

    @model_validator(mode="after")
    def _one_source(self) -> StepInput:
        given = [k for k in ("cid", "job", "step") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an input takes exactly one of cid, job or step (got {', '.join(given) or 'none'})"
            )
        if self.name is None and self.step is None:
            raise ValueError("an input from a cid or a job needs a name")
        return self


class Step(_Strict):
    name: str = Field(description="Step name: a-z, 0-9, '-', at most 20 characters")
    kind: str = Field(description="Job kind of every job of this step")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: list[StepInput] = Field(default_factory=list)
    foreach: str | None = Field(
        default=None, description="One job per job of this earlier step, its result as input"
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="params -> values; one job per point of the grid (product of the lists)",
    )
    max_retries: int = Field(default=0, ge=0, le=10, description="Resubmissions of a failed job")
    lots: bool = Field(
        default=False,
        description="Post the step's jobs as sweeps (one postSweep per price and windows), "
        "taken by workers in lots: about a tenth of the gas per job. A lot's results come "
        "together, and one failed job holds back its whole lot until the run deadline "
        "(then all of it is refunded and retried)",
    )
    resources: dict[str, Any] | None = None
    payment: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _STEP_RE.fullmatch(name):
            raise ValueError(f"step name {name!r}: use 1-20 characters from a-z, 0-9 and '-'")
        return name

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, kind: str) -> str:
        if kind not in REGISTRY:
            raise ValueError(f"unknown kind {kind!r}; expected one of: {', '.join(REGISTRY)}")
        return kind

    @field_validator("sweep")
    @classmethod
    def _check_sweep(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            if not values:
                raise ValueError(f"sweep.{key} is empty: give at least one value")
        return sweep


class Defaults(_Strict):
    resources: dict[str, Any] = Field(default_factory=dict)
    payment: dict[str, Any] = Field(default_factory=dict)


class Workflow(_Strict):
    api_version: Literal["hepx/v1"] = Field(alias="apiVersion")
    kind: Literal["Workflow"]
    metadata: Metadata
    defaults: Defaults = Field(default_factory=Defaults)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_point_back(self) -> Workflow:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"two steps are named {step.name!r}")
            refs = [i.step for i in step.inputs if i.step] + (
                [step.foreach] if step.foreach else []
            )
            for ref in refs:
                if ref not in seen:
                    raise ValueError(
                        f"step {step.name!r} uses step {ref!r}, which is not an earlier step"
                    )
            seen.add(step.name)
        return self
