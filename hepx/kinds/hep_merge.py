"""Kind ``hep.merge``: hep.analyze results merged, weighted by cross section."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict, need_inputs


class MergeMode(StrEnum):
    """How hep.merge combines runs."""

    AVERAGE = "average"  # the same process with other seeds: weights by events
    SUM = "sum"  # disjoint phase-space slices: cross sections add


class MergeParams(Strict):
    """Merge hep.analyze results: histograms weighted by cross section, summaries combined."""

    mode: MergeMode = Field(
        default=MergeMode.AVERAGE,
        description="average = same settings, other seeds (sigma is the events-weighted mean); "
        "sum = disjoint slices (sigmas add)",
    )


class MergeJob(JobSpec):
    """A job of kind ``hep.merge``."""

    kind: Literal["hep.merge"] = Field(description="Job kind")
    params: MergeParams = Field(default_factory=MergeParams)

    @model_validator(mode="after")
    def _has_results(self) -> MergeJob:
        need_inputs(self, "hep.analyze results")
        return self


KIND = Kind("hep.merge", MergeJob, DigestMethod.ROOT, Sandbox.PROCESS, Pricing.FLAT, 10**14)
