"""What every job spec has, whatever its kind: metadata, inputs, resources, payment, and
the ``JobSpec`` base each kind's model (hepx/kinds/) extends with its ``kind`` and ``params``."""

from __future__ import annotations

import re
from typing import Literal

from multiformats import CID
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hepx.units import parse_wei

API_VERSION = "hepx/v1"
DAY = 86_400
MAX_RUNTIME = 7 * DAY
MAX_WINDOW = 30 * DAY
MAX_PRICE_WEI = 2**96  # exclusive; the market stores prices as uint96
MAX_TERMS_PRICE = 2**88  # exclusive; replicas' prices and stakes are uint88 on chain
MAX_REPLICAS = 8  # the market takes 1..8 replicas
MAX_ALLOWLIST = 1000
MAX_CPUS = 4096  # a whole site as one worker (issue 15)
MAX_MEMORY_MB = 2**24  # 16 TiB
DEFAULT_REVEAL_WINDOW = 300

_NAME_RE = re.compile(r"^[a-z0-9._-]{1,63}$")
# One path component, not hidden and not "." or "..": the runner writes inputs under these names.
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")


class Strict(BaseModel):
    """Frozen, and an unknown key is an error (a typo must not be ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Metadata(Strict):
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


class InputRef(Strict):
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


class Resources(Strict):
    """What the job may use on the worker."""

    max_runtime: int = Field(
        gt=0, le=MAX_RUNTIME, description="Seconds the job may run before the worker kills it"
    )
    # Left out of the canonical JSON at their defaults, so older specs keep their CIDs.
    cpus: int = Field(
        1,
        ge=1,
        le=MAX_CPUS,
        exclude_if=lambda v: v == 1,
        description="CPU cores the job takes from the worker's slots while it runs",
    )
    memory_mb: int = Field(
        0,
        ge=0,
        le=MAX_MEMORY_MB,
        exclude_if=lambda v: v == 0,
        description="Memory (MB) the job takes from the worker's slots; 0: no reservation",
    )


class Payment(Strict):
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
        description="claim: the first valid worker takes it (replicated jobs: workers apply "
        "and a stake-weighted draw seats them when claim_window closes); auction (one replica): "
        "the lowest bid when claim_window closes wins (anyone may award)",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=MAX_REPLICAS,
        exclude_if=lambda v: v == 1,
        description="Workers that run the job; above 1 they are drawn by stake from those "
        "that apply, and commit and reveal digests",
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
        if n > 1 and self.mode == "auction":
            raise ValueError(
                f"an auction has one replica, not {n}: replicas are drawn by stake, not bid "
                "for (the lowest bids could all be one party's); use mode 'claim'"
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


class JobSpec(Strict):
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


def need_inputs(spec: JobSpec, what: str) -> None:
    if not spec.inputs:
        raise ValueError(f"inputs: a {spec.kind} job needs at least one input ({what})")
