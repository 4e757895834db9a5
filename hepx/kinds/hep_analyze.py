"""Kind ``hep.analyze``: jets from HepMC3 events (FastJet) filled into ROOT histograms."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict, need_inputs


class JetAlgorithm(StrEnum):
    """FastJet's sequential-recombination algorithms."""

    ANTI_KT = "anti-kt"
    KT = "kt"
    CAMBRIDGE_AACHEN = "cambridge-aachen"


class AnalyzeParams(Strict):
    """Jets from HepMC3 events (FastJet), filled into histograms in a ROOT file plus a PNG."""

    jet_algorithm: JetAlgorithm = Field(default=JetAlgorithm.ANTI_KT, description="Jet algorithm")
    jet_radius: float = Field(default=0.4, ge=0.1, le=1.5, description="Jet radius parameter R")
    jet_pt_min: float = Field(default=20, ge=0, description="Keep jets with pT above this, in GeV")
    jet_eta_max: float = Field(
        default=2.5, gt=0, le=10, description="Keep jets with |pseudorapidity| below this"
    )
    hist_bins: int = Field(default=40, ge=1, le=10_000, description="Bins of the jet pT histogram")
    hist_max: float | None = Field(
        default=None,
        gt=0,
        description="Upper edge of the jet pT histogram in GeV (default: 10x jet_pt_min, at "
        "least jet_pt_min + 100); the lower edge is jet_pt_min",
    )

    @model_validator(mode="after")
    def _axis_is_not_empty(self) -> AnalyzeParams:
        if self.hist_max is not None and self.hist_max <= self.jet_pt_min:
            raise ValueError(
                f"hist_max ({self.hist_max:g}) must be above jet_pt_min ({self.jet_pt_min:g})"
            )
        return self


class AnalyzeJob(JobSpec):
    """A job of kind ``hep.analyze``."""

    kind: Literal["hep.analyze"] = Field(description="Job kind")
    params: AnalyzeParams = Field(default_factory=AnalyzeParams)

    @model_validator(mode="after")
    def _has_events(self) -> AnalyzeJob:
        need_inputs(self, "HepMC3 event files or hep.generate results")
        return self


KIND = Kind("hep.analyze", AnalyzeJob, DigestMethod.ROOT, Sandbox.PROCESS, Pricing.FLAT, 10**15)
