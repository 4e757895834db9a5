"""Kind ``hep.generate``: Pythia8 events written as HepMC3, with a run summary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from hepx.kinds.hep_pythia import PythiaProcess, check_setting
from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict


class GenerateParams(Strict):
    """Pythia8 events written as HepMC3, with a run summary (cross section, events, seed)."""

    process: PythiaProcess | None = Field(
        default=PythiaProcess.DIJET,
        description="Named process (as for hep.pythia), or null to take the process only from "
        "settings and the card",
    )
    energy_gev: float = Field(
        default=13000, ge=10, le=100_000, description="Centre-of-mass energy in GeV (Beams:eCM)"
    )
    seed: int = Field(ge=1, le=900_000_000, description="Random seed (Pythia accepts 1..900000000)")
    events: int = Field(ge=1, le=1_000_000, description="Number of events to generate")
    pt_hat_min: float = Field(
        default=20, ge=0, description="Minimum pT of the hard process in GeV (PhaseSpace:pTHatMin)"
    )
    settings: list[Annotated[str, AfterValidator(check_setting)]] = Field(
        default_factory=list, max_length=100, description="Extra Pythia settings, 'Key = value'"
    )
    card: str | None = Field(
        default=None,
        description="Name of an input holding more Pythia settings, one per line (read after "
        "the process settings, before params.settings)",
    )


class GenerateJob(JobSpec):
    """A job of kind ``hep.generate``."""

    kind: Literal["hep.generate"] = Field(description="Job kind")
    params: GenerateParams

    @model_validator(mode="after")
    def _card_is_an_input(self) -> GenerateJob:
        card = self.params.card
        if card is not None and all(ref.name != card for ref in self.inputs):
            raise ValueError(
                f"params.card: no input is named {card!r}; add the card file to inputs"
            )
        return self


KIND = Kind("hep.generate", GenerateJob, DigestMethod.BYTES, Sandbox.PROCESS, Pricing.FLAT, 10**15)
