"""Job specs: what a requester asks for, versioned (``apiVersion: hepx/v1``) and strict.

A spec is YAML or JSON. ``kind`` picks the runner and the model of ``params``; every model
forbids unknown keys, so a typo is an error rather than a silently ignored setting. The same
spec always serialises to the same bytes (``canonical_json``) and so to the same CID.

    apiVersion: hepx/v1
    kind: hep.pythia
    metadata: {name: dijet-13tev}
    params: {process: dijet, events: 1000, seed: 42}
    resources: {max_runtime: 600}
    payment: {max_price: "0.01 ether", claim_window: 300, run_window: 1800}
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from multiformats import CID
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from hepx.errors import SpecError
from hepx.llm import LlmBatchParams, LlmChatParams
from hepx.units import parse_wei

API_VERSION = "hepx/v1"
DAY = 86_400
MAX_RUNTIME = 7 * DAY
MAX_WINDOW = 30 * DAY
MAX_PRICE_WEI = 2**96  # exclusive; the market stores prices as uint96
MAX_TERMS_PRICE = 2**88  # exclusive; replicas' prices and stakes are uint88 on chain
MAX_REPLICAS = 8  # the market takes 1..8 replicas
MAX_ALLOWLIST = 1000
DEFAULT_REVEAL_WINDOW = 300

_NAME_RE = re.compile(r"^[a-z0-9._-]{1,63}$")
# One path component, not hidden and not "." or "..": the runner writes inputs under these names.
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
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


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metadata(_Strict):
    """Who the job is: a name for humans and free-form labels for tools."""

    name: str = Field(
        description="Job name: lowercase letters, digits, '.', '_' or '-'; at most 63 characters",
        examples=["dijet-13tev"],
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free-form key/value labels (keys like 'team/x')"
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME_RE.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a valid name: use 1-63 characters from a-z, 0-9, '.', '_', '-'"
            )
        return name

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > 64:
            raise ValueError(f"{len(labels)} labels; at most 64 are allowed")
        for key, value in labels.items():
            if not _LABEL_KEY_RE.fullmatch(key):
                raise ValueError(
                    f"label key {key!r} is invalid: 1-63 characters from A-Z, a-z, 0-9, '._/-'"
                )
            if len(value) > 256:
                raise ValueError(f"label {key!r} is longer than 256 characters")
        return labels


class InputRef(_Strict):
    """A file the runner gets in its inputs folder, fetched from the store by CID."""

    name: str = Field(
        description="File name in the inputs folder (no folders, not hidden)",
        examples=["events.txt"],
    )
    cid: str = Field(description="Content identifier of the file in the store (CIDv0 or CIDv1)")

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _FILE_NAME_RE.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a safe file name: use letters, digits, '.', '_', '-', "
                "no '/' and no leading '.' (at most 255 characters)"
            )
        return name

    @field_validator("cid")
    @classmethod
    def _check_cid(cls, cid: str) -> str:
        try:
            CID.decode(cid)
        except Exception as exc:  # multiformats raises several unrelated types
            raise ValueError(f"{cid!r} is not a valid CID ({exc})") from exc
        return cid


class Resources(_Strict):
    """What the job may use on the worker."""

    max_runtime: int = Field(
        gt=0, le=MAX_RUNTIME, description="Seconds the job may run before the worker kills it"
    )


class Payment(_Strict):
    """Escrow and deadlines of the job on chain."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    max_price_wei: int = Field(
        alias="max_price",
        gt=0,
        lt=MAX_PRICE_WEI,
        description="Most the requester pays: wei as an integer, or '<number> <wei|gwei|ether>'",
        examples=["0.01 ether", 1000],
    )
    claim_window: int = Field(
        gt=0, le=MAX_WINDOW, description="Seconds after posting during which a worker may claim"
    )
    run_window: int = Field(
        gt=0,
        le=MAX_WINDOW,
        description="Seconds after the claim by which the result must be submitted",
    )
    # Protocol terms (issue 3). Each is left out of the canonical JSON at its default, so a
    # spec that does not use them keeps the CID it had before they existed.
    mode: Literal["claim", "auction"] = Field(
        "claim",
        exclude_if=lambda v: v == "claim",
        description="claim: first valid workers take it; auction: lowest bids when "
        "claim_window closes win (anyone may award)",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=MAX_REPLICAS,
        exclude_if=lambda v: v == 1,
        description="Workers that run the job; above 1 they commit and reveal digests",
    )
    quorum: int | None = Field(
        None,
        ge=1,
        exclude_if=lambda v: v is None,
        description="Equal digests that settle a replicated job (default: a majority)",
    )
    min_stake_wei: int = Field(
        0,
        alias="min_stake",
        ge=0,
        exclude_if=lambda v: v == 0,
        description="Stake each worker locks while it holds the job; slashed if it fails",
        examples=["0.1 ether"],
    )
    token: str = Field(
        "ETH",
        exclude_if=lambda v: v == "ETH",
        description="'ETH' or the address of the ERC-20 the job pays in (prices in its units)",
    )
    reveal_window: int | None = Field(
        None,
        gt=0,
        le=MAX_WINDOW,
        exclude_if=lambda v: v is None,
        description="Replicated jobs: seconds after the commit phase to reveal (default 300)",
    )
    allowlist: list[str] = Field(
        default_factory=list,
        max_length=MAX_ALLOWLIST,
        exclude_if=lambda v: not v,
        description="Worker addresses that may take the job; empty = anyone",
    )

    @field_validator("min_stake_wei", mode="before", json_schema_input_type=int | str)
    @classmethod
    def _parse_stake(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("write a stake as wei (an integer) or as '<number> <wei|gwei|ether>'")
        try:
            return parse_wei(value)
        except ArithmeticError as exc:
            raise ValueError(f"cannot read stake {value!r}: not a finite number") from exc

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str) -> str:
        if value.upper() == "ETH":
            return "ETH"
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
            raise ValueError(f"token {value!r}: write 'ETH' or an ERC-20 contract address (0x...)")
        if int(value, 16) == 0:
            raise ValueError("token: the zero address is not a token; write 'ETH' for ether")
        return value

    @field_validator("allowlist")
    @classmethod
    def _check_allowlist(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not re.fullmatch(r"0x[0-9a-fA-F]{40}", a)]
        if bad:
            raise ValueError(f"allowlist entries are not addresses: {', '.join(bad)}")
        return sorted({a.lower() for a in value})

    @model_validator(mode="after")
    def _check_terms(self) -> Payment:
        n = self.replicas
        if self.quorum is not None and (self.quorum > n or 2 * self.quorum <= n):
            raise ValueError(
                f"quorum {self.quorum} does not fit {n} replicas: it must be more than half "
                f"of them and at most all (e.g. {n // 2 + 1})"
            )
        if n == 1 and self.reveal_window is not None:
            raise ValueError("reveal_window is only for replicated jobs (replicas > 1)")
        if self.uses_terms and self.max_price_wei >= MAX_TERMS_PRICE:
            raise ValueError(
                f"max_price {self.max_price_wei} is too large for a job with terms: "
                "at most 2**88-1 per replica"
            )
        if self.min_stake_wei >= MAX_PRICE_WEI:
            raise ValueError(f"min_stake {self.min_stake_wei} is too large: at most 2**96-1 wei")
        return self

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else self.replicas // 2 + 1

    @property
    def effective_reveal_window(self) -> int:
        if self.replicas == 1:
            return 0
        return self.reveal_window if self.reveal_window is not None else DEFAULT_REVEAL_WINDOW

    @property
    def uses_terms(self) -> bool:
        """Whether the job needs ``postJobWithTerms`` (anything beyond the spine's fast path)."""
        return (
            self.mode != "claim"
            or self.replicas != 1
            or self.min_stake_wei != 0
            or self.token != "ETH"
            or bool(self.allowlist)
        )

    @field_validator("max_price_wei", mode="before", json_schema_input_type=int | str)
    @classmethod
    def _parse_price(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("write a price as wei (an integer) or as '<number> <wei|gwei|ether>'")
        try:
            wei = parse_wei(value)
        except ArithmeticError as exc:  # e.g. "inf ether"
            raise ValueError(f"cannot read price {value!r}: not a finite number") from exc
        if wei == 0:
            raise ValueError("the price must be more than 0 wei: a worker has to be paid")
        if wei >= MAX_PRICE_WEI:
            raise ValueError(f"price {value!r} is too large: the market holds at most 2**96-1 wei")
        return wei


class EchoParams(_Strict):
    """Echo: the outputs are the inputs (plus an optional message); measures the market itself."""

    message: str = Field(
        default="", max_length=65_536, description="Written to message.txt if non-empty"
    )
    sleep_seconds: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="Seconds to wait before finishing (to exercise timeouts)",
    )
    fail: str = Field(
        default="", max_length=1000, description="If non-empty, the job fails with this message"
    )


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


def _check_setting(line: str) -> str:
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


class PythiaParams(_Strict):
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
    settings: list[Annotated[str, AfterValidator(_check_setting)]] = Field(
        default_factory=list,
        max_length=100,
        description="Extra Pythia settings, each 'Key = value' (e.g. 'PartonLevel:MPI = off'); "
        "seed, events, energy and pTHatMin come from their own params",
    )


# An OCI image reference: [registry[:port]/]path[:tag][@sha256:<64 hex>], lowercase path.
_IMAGE_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
DEFAULT_KEY4HEP_IMAGE = "ghcr.io/key4hep/key4hep-images/alma9:latest"
DEFAULT_KEY4HEP_SETUP = "/cvmfs/sw.hsf.org/key4hep/setup.sh"


def _check_image(ref: str) -> str:
    if len(ref) > 512 or not _IMAGE_RE.fullmatch(ref):
        raise ValueError(
            f"{ref!r} is not an image reference: write [registry/]name[:tag][@sha256:<digest>] "
            "with a lowercase name, e.g. 'busybox:1.36' or 'ghcr.io/key4hep/key4hep-images/alma9'"
        )
    return ref


def _check_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > 128:
        raise ValueError(f"{len(env)} environment variables; at most 128 are allowed")
    for name, value in env.items():
        if not _ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, '_')")
        if len(value) > 4096 or "\x00" in value:
            raise ValueError(f"env {name!r}: at most 4096 characters and no NUL")
    return env


class _ContainerParams(_Strict):
    """Settings every container-run kind shares: the sandbox the job gets."""

    env: Annotated[dict[str, str], AfterValidator(_check_env)] = Field(
        default_factory=dict, description="Environment variables set in the container"
    )
    network: bool = Field(
        default=False, description="Give the container a network (off by default: no network)"
    )
    cpus: float = Field(default=1, gt=0, le=256, description="CPU cores the container may use")
    memory_mb: int = Field(
        default=1024, ge=16, le=1_048_576, description="Memory limit in MiB (no swap beyond it)"
    )


class ContainerParams(_ContainerParams):
    """Any OCI image and command; inputs at /inputs (read-only), outputs written to /outputs."""

    image: Annotated[str, AfterValidator(_check_image)] = Field(
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


class Key4hepParams(_ContainerParams):
    """``k4run`` with a steering file in a Key4hep image (or with the CVMFS setup script)."""

    image: Annotated[str, AfterValidator(_check_image)] = Field(
        default=DEFAULT_KEY4HEP_IMAGE, description="Key4hep image to run k4run in"
    )
    steering: InputRef = Field(
        description="Steering (options) file by CID; k4run reads it from /inputs/<name>"
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=200, description="Extra k4run arguments"
    )
    setup_script: str = Field(
        default=DEFAULT_KEY4HEP_SETUP,
        pattern=r"^/[^\x00\n]*$",
        description="Sourced before k4run when it exists (the Key4hep stack on CVMFS)",
    )


class JobSpec(_Strict):
    """Fields every job spec has; ``parse_spec`` returns the subclass for its ``kind``."""

    api_version: Literal["hepx/v1"] = Field(
        alias="apiVersion", description="Spec format version; this hepx reads hepx/v1"
    )
    kind: str = Field(description="Job kind: which runner runs it and how params read")
    metadata: Metadata
    params: BaseModel
    inputs: list[InputRef] = Field(
        default_factory=list, max_length=1000, description="Files the runner gets, by CID"
    )
    resources: Resources
    payment: Payment

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, inputs: list[InputRef]) -> list[InputRef]:
        seen: set[str] = set()
        for ref in inputs:
            if ref.name in seen:
                raise ValueError(f"two inputs are named {ref.name!r}; input names must be unique")
            seen.add(ref.name)
        return inputs

    @model_validator(mode="after")
    def _job_fits_window(self) -> JobSpec:
        runtime, window = self.resources.max_runtime, self.payment.run_window
        if window < runtime:
            raise ValueError(
                f"payment.run_window: {window} s is shorter than resources.max_runtime "
                f"({runtime} s); the job must fit in its window: raise run_window or lower "
                "max_runtime"
            )
        return self


class EchoJob(JobSpec):
    """A job of kind ``echo``."""

    kind: Literal["echo"] = Field(description="Job kind")
    params: EchoParams = Field(default_factory=EchoParams)

    @model_validator(mode="after")
    def _message_has_its_own_file(self) -> EchoJob:
        if self.params.message and any(ref.name == "message.txt" for ref in self.inputs):
            raise ValueError(
                "inputs: an input named 'message.txt' would clash with params.message's output "
                "file; rename the input or drop the message"
            )
        return self


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
            lines.append(_check_setting(line))
        except ValueError as exc:
            raise SpecError(f"card line {number}: {exc}") from exc
    return lines


class GenerateParams(_Strict):
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
    settings: list[Annotated[str, AfterValidator(_check_setting)]] = Field(
        default_factory=list, max_length=100, description="Extra Pythia settings, 'Key = value'"
    )
    card: str | None = Field(
        default=None,
        description="Name of an input holding more Pythia settings, one per line (read after "
        "the process settings, before params.settings)",
    )


class JetAlgorithm(StrEnum):
    """FastJet's sequential-recombination algorithms."""

    ANTI_KT = "anti-kt"
    KT = "kt"
    CAMBRIDGE_AACHEN = "cambridge-aachen"


class AnalyzeParams(_Strict):
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


class MergeMode(StrEnum):
    """How hep.merge combines runs."""

    AVERAGE = "average"  # the same process with other seeds: weights by events
    SUM = "sum"  # disjoint phase-space slices: cross sections add


class MergeParams(_Strict):
    """Merge hep.analyze results: histograms weighted by cross section, summaries combined."""

    mode: MergeMode = Field(
        default=MergeMode.AVERAGE,
        description="average = same settings, other seeds (sigma is the events-weighted mean); "
        "sum = disjoint slices (sigmas add)",
    )


def _need_inputs(spec: JobSpec, what: str) -> None:
    if not spec.inputs:
        raise ValueError(f"inputs: a {spec.kind} job needs at least one input ({what})")


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


class AnalyzeJob(JobSpec):
    """A job of kind ``hep.analyze``."""

    kind: Literal["hep.analyze"] = Field(description="Job kind")
    params: AnalyzeParams = Field(default_factory=AnalyzeParams)

    @model_validator(mode="after")
    def _has_events(self) -> AnalyzeJob:
        _need_inputs(self, "HepMC3 event files or hep.generate results")
        return self


class MergeJob(JobSpec):
    """A job of kind ``hep.merge``."""

    kind: Literal["hep.merge"] = Field(description="Job kind")
    params: MergeParams = Field(default_factory=MergeParams)

    @model_validator(mode="after")
    def _has_results(self) -> MergeJob:
        _need_inputs(self, "hep.analyze results")
        return self


class ContainerJob(JobSpec):
    """A job of kind ``container``."""

    kind: Literal["container"] = Field(description="Job kind")
    params: ContainerParams


class Key4hepJob(JobSpec):
    """A job of kind ``key4hep``."""

    kind: Literal["key4hep"] = Field(description="Job kind")
    params: Key4hepParams

    @model_validator(mode="after")
    def _steering_has_its_own_name(self) -> Key4hepJob:
        if any(ref.name == self.params.steering.name for ref in self.inputs):
            raise ValueError(
                f"inputs: an input is named {self.params.steering.name!r} like the steering "
                "file; both land in /inputs, so rename one"
            )
        return self


class LlmChatJob(JobSpec):
    """A job of kind ``llm.chat``: one chat completion (params in hepx.llm)."""

    kind: Literal["llm.chat"] = Field(description="Job kind")
    params: LlmChatParams


class LlmBatchJob(JobSpec):
    """A job of kind ``llm.batch``: a JSONL file of chat requests (an input) -> answers."""

    kind: Literal["llm.batch"] = Field(description="Job kind")
    params: LlmBatchParams

    @model_validator(mode="after")
    def _requests_are_an_input(self) -> LlmBatchJob:
        if all(ref.name != self.params.requests for ref in self.inputs):
            raise ValueError(
                f"params.requests: no input is named {self.params.requests!r}; add the JSONL "
                "file of requests to inputs"
            )
        return self


KIND_MODELS: dict[str, type[JobSpec]] = {
    "echo": EchoJob,
    "hep.pythia": PythiaJob,
    "container": ContainerJob,
    "key4hep": Key4hepJob,
    "hep.generate": GenerateJob,
    "hep.analyze": AnalyzeJob,
    "hep.merge": MergeJob,
    "llm.chat": LlmChatJob,
    "llm.batch": LlmBatchJob,
}
KINDS: tuple[str, ...] = tuple(KIND_MODELS)

_AnyJobType = (
    EchoJob
    | PythiaJob
    | ContainerJob
    | Key4hepJob
    | GenerateJob
    | AnalyzeJob
    | MergeJob
    | LlmChatJob
    | LlmBatchJob
)
_AnyJob = Annotated[_AnyJobType, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[_AnyJobType] = TypeAdapter(_AnyJob)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys (the last one would silently win)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise SpecError(
                f"duplicate key {key!r} on line {key_node.start_mark.line + 1}: "
                "each key may appear once"
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def parse_spec(data: dict[str, Any] | str | bytes) -> JobSpec:
    """Validate a spec given as a dict or as YAML/JSON text; raise SpecError listing problems."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"spec is not UTF-8 text: {exc}") from exc
    if isinstance(data, str):
        try:
            data = yaml.load(data, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise SpecError(f"spec is not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a mapping of fields, not {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = [_describe(err, data) for err in exc.errors()]
        raise SpecError("invalid job spec:\n" + "\n".join(f"  {p}" for p in problems)) from exc


def load_spec_file(path: str | Path) -> JobSpec:
    """Read and validate a spec file (YAML or JSON)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from exc
    try:
        return parse_spec(raw)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def canonical_json(spec: JobSpec) -> bytes:
    """The spec as canonical JSON: defaults filled in, keys sorted, no whitespace, UTF-8."""
    doc = spec.model_dump(mode="json", by_alias=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def json_schema() -> dict[str, Any]:
    """JSON Schema of a job spec (a union over kinds, discriminated by ``kind``)."""
    schema = _ADAPTER.json_schema(by_alias=True)
    schema["title"] = "hepx job spec"
    schema["description"] = (
        f"A job for the hepx market ({API_VERSION}); 'kind' selects the params model."
    )
    return schema


def _describe(err: Any, data: dict[str, Any]) -> str:
    """One problem as 'field.path: message', with the kind tag dropped from the path."""
    loc = list(err["loc"])
    kind = data.get("kind")
    if loc and loc[0] == kind:
        loc = loc[1:]
    path = ".".join(str(p) for p in loc)
    etype = err["type"]
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        given = "missing" if etype == "union_tag_not_found" else f"unknown kind {kind!r}"
        return f"kind: {given}; expected one of: {', '.join(KINDS)}"
    if etype == "extra_forbidden":
        return f"{path}: unknown field; check its spelling{_allowed_here(loc, kind)}"
    if loc == ["apiVersion"] and etype == "literal_error":
        return f"apiVersion: {err['input']!r} is not supported; this hepx reads {API_VERSION!r}"
    if etype == "value_error":
        msg = str(err["ctx"]["error"])
    elif etype == "missing":
        msg = "required field is missing"
    else:
        msg = err["msg"]
    if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
        name = _input_name(data, loc[1])
        if name:
            path += f" (input {name!r})"
    return f"{path}: {msg}" if path else msg


def _input_name(data: dict[str, Any], index: int) -> str | None:
    inputs = data.get("inputs")
    if isinstance(inputs, list) and index < len(inputs) and isinstance(inputs[index], dict):
        name = inputs[index].get("name")
        return name if isinstance(name, str) else None
    return None


def _allowed_here(loc: list[Any], kind: object) -> str:
    """' (allowed: a, b)' for the model that rejected the extra key, when it can be named."""
    models: dict[str, type[BaseModel]] = {
        "metadata": Metadata,
        "resources": Resources,
        "payment": Payment,
    }
    model: type[BaseModel] | None = None
    if len(loc) == 1:
        model = JobSpec
    elif len(loc) == 2 and loc[0] in models:
        model = models[loc[0]]
    elif len(loc) == 2 and loc[0] == "params" and isinstance(kind, str) and kind in KIND_MODELS:
        params = KIND_MODELS[kind].model_fields["params"].annotation
        model = params if isinstance(params, type) and issubclass(params, BaseModel) else None
    elif len(loc) == 3 and loc[0] == "inputs":
        model = InputRef
    if model is None:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items()]
    return f" (allowed: {', '.join(names)})"
