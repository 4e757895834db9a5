"""Kind ``hep.pythia``: Pythia8 events clustered into jets; and the Pythia settings that
other kinds share."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from hepx.errors import SpecError
from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict

# "Key:sub = value" or particle data "23:onMode = off"; one line, non-empty value.
_SETTING_RE = re.compile(r"^\s*([A-Za-z0-9_]+(?::[A-Za-z0-9_]+)+)\s*=\s*(\S[^\n\r]*)$")
# Settings that params control; overriding them would make the summary lie about the run.
_RESERVED_SETTINGS = {
    "random:seed": "seed",
    "random:setseed": "seed",
    "main:numberofevents": "events",
    "beams:ecm": "energy_gev",
    "phasespace:pthatmin": "pt_hat_min",
}


class PythiaProcess(StrEnum):
    """Named physics processes, each a set of Pythia switches (see PROCESS_SETTINGS)."""

    DIJET = "dijet"
    MIN_BIAS = "min-bias"
    TOP_PAIR = "top-pair"
    Z_GAMMA = "z-gamma"


PROCESS_SETTINGS: dict[PythiaProcess, tuple[str, ...]] = {
    PythiaProcess.DIJET: ("HardQCD:all = on",),
    PythiaProcess.MIN_BIAS: ("SoftQCD:nonDiffractive = on",),
    PythiaProcess.TOP_PAIR: ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    PythiaProcess.Z_GAMMA: ("WeakSingleBoson:ffbar2gmZ = on",),
}


def check_setting(line: str) -> str:
    match = _SETTING_RE.fullmatch(line)
    if match is None or len(line) > 200:
        raise ValueError(
            f"{line!r} is not a Pythia setting: write 'Key:name = value' on one line "
            "(at most 200 characters)"
        )
    param = _RESERVED_SETTINGS.get(match.group(1).lower())
    if param is not None:
        raise ValueError(f"{line!r} overrides {match.group(1)}: set params.{param} instead")
    return line


class PythiaParams(Strict):
    """Pythia8 proton-proton events clustered into anti-kt jets with FastJet."""

    process: PythiaProcess = Field(
        default=PythiaProcess.DIJET,
        description="dijet = HardQCD:all, min-bias = SoftQCD:nonDiffractive, "
        "top-pair = Top:gg2ttbar+qqbar2ttbar, z-gamma = WeakSingleBoson:ffbar2gmZ",
    )
    energy_gev: float = Field(
        default=13000, ge=10, le=100_000, description="Centre-of-mass energy in GeV (Beams:eCM)"
    )
    seed: int = Field(ge=1, le=900_000_000, description="Random seed (Pythia accepts 1..900000000)")
    events: int = Field(ge=1, le=1_000_000, description="Number of events to generate")
    pt_hat_min: float = Field(
        default=20, ge=0, description="Minimum pT of the hard process in GeV (PhaseSpace:pTHatMin)"
    )
    jet_radius: float = Field(default=0.4, ge=0.1, le=1.5, description="Anti-kt radius parameter R")
    jet_pt_min: float = Field(default=20, ge=0, description="Keep jets with pT above this, in GeV")
    jet_eta_max: float = Field(
        default=2.5, gt=0, le=10, description="Keep jets with |pseudorapidity| below this"
    )
    settings: list[Annotated[str, AfterValidator(check_setting)]] = Field(
        default_factory=list,
        max_length=100,
        description="Extra Pythia settings, each 'Key = value' (e.g. 'PartonLevel:MPI = off'); "
        "seed, events, energy and pTHatMin come from their own params",
    )


class PythiaJob(JobSpec):
    """A job of kind ``hep.pythia``."""

    kind: Literal["hep.pythia"] = Field(description="Job kind")
    params: PythiaParams


def parse_card(text: str) -> list[str]:
    """Settings from a Pythia card file: one ``Key = value`` a line; blank lines and lines
    starting with ``#`` or ``!`` are comments. Raise SpecError naming the first bad line."""
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        try:
            lines.append(check_setting(line))
        except ValueError as exc:
            raise SpecError(f"card line {number}: {exc}") from exc
    return lines


KIND = Kind("hep.pythia", PythiaJob, DigestMethod.ROOT, Sandbox.PROCESS, Pricing.FLAT, 10**15)
