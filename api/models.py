"""Response bodies of the REST API (they also document it in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from hepx.chain import (
    DEFAULT_PANEL,
    Dispute,
    DisputeState,
    JobState,
    PaymentReason,
    Seat,
    Verdict,
    VerifierStatus,
)


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it")
    error: str | None = Field(None, description="The contract's custom error, when it refused")
    args: list[Any] | None = Field(None, description="The custom error's arguments")


class JobPostedOut(BaseModel):
    job_id: int
    tx_hash: str
    spec_cid: str


class JobBatchIn(BaseModel):
    """A sweep of job specs for POST /jobs/batch."""

    specs: list[dict[str, Any]]
    sweep: bool = Field(
        False,
        description="Post them as one sweep (postSweep: one record, workers take them in lots "
        "and are paid per lot, ~9k gas per job post to settled against ~70k) instead of one "
        "job each (postJobs); the specs must then share one max_price",
    )


class JobBatchOut(BaseModel):
    tx_hash: str  # the one postJobs (or postSweep) transaction
    jobs: list[JobPostedOut]  # in the order of the specs, with consecutive job ids
    sweep_id: int | None = Field(None, description="The sweep's id (its first job's), if one")


class SignedRequestIn(BaseModel):
    """A job request signed by its requester (EIP-712), for the API to relay."""

    request: dict[str, Any] = Field(
        description="The typed data's message, as POST /jobs/requests answered it"
    )
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="The requester's signature (65 bytes)"
    )


class JobRequestOut(BaseModel):
    """What a requester's wallet signs to post a job, and what it must hold first."""

    spec_cid: str
    desk: str = Field(description="The market's request desk (the typed data's verifier)")
    chain_id: int
    escrow: int = Field(description="Wei the job takes from the requester's deposit")
    deposit: int = Field(description="Wei the requester has deposited at the desk now")
    deposit_call: str = Field(
        description="Call data of the desk's deposit(): send it with the missing wei"
    )
    typed_data: dict[str, Any] = Field(description="EIP-712 document for eth_signTypedData_v4")


class Transition(BaseModel):
    event: str = Field(description="JobPosted, JobClaimed, ResultSubmitted, JobSettled, ...")
    block: int
    tx_hash: str
    log_index: int
    args: dict[str, Any]


class PaymentOut(BaseModel):
    payee: str
    amount: int = Field(description="wei")
    reason: str = Field(description="One of: " + ", ".join(r.label for r in PaymentReason))
    direction: str = Field(
        description="in (to escrow), credit (to withdrawable) or out (sent, or burned: payee 0)"
    )
    block: int
    tx_hash: str


class SeatOut(BaseModel):
    verifier: str
    status: str = Field(description="One of: " + ", ".join(s.label for s in VerifierStatus))
    vote: str | None = Field(description="The revealed vote (0x-hex), or null before")


class DisputeOut(BaseModel):
    """A dispute of the job's result (IDisputeCourt): who, the bond, the panel, the verdict."""

    disputer: str
    bond: int = Field(description="Wei: panel x price")
    panel: int
    state: str = Field(description="One of: " + ", ".join(s.label for s in DisputeState))
    verdict: str = Field(description="One of: " + ", ".join(v.label for v in Verdict))
    drawn: int
    committed: int
    revealed: int
    draw_deadline: int
    commit_deadline: int
    reveal_deadline: int
    seats: list[SeatOut]

    @classmethod
    def of(cls, dispute: Dispute, seats: list[Seat]) -> DisputeOut:
        return cls(
            disputer=dispute.disputer,
            bond=dispute.bond,
            panel=dispute.panel,
            state=dispute.state.label,
            verdict=dispute.verdict.label,
            drawn=dispute.drawn,
            committed=dispute.committed,
            revealed=dispute.revealed,
            draw_deadline=dispute.draw_deadline,
            commit_deadline=dispute.commit_deadline,
            reveal_deadline=dispute.reveal_deadline,
            seats=[
                SeatOut(
                    verifier=s.verifier,
                    status=s.status.label,
                    vote="0x" + s.vote.hex() if any(s.vote) else None,
                )
                for s in seats
            ],
        )


class DisputeIn(BaseModel):
    panel: int = Field(
        default=DEFAULT_PANEL,
        ge=3,
        le=9,
        description="Verifiers to draw (odd); bond: panel x price",
    )


class DisputeOpenedOut(BaseModel):
    job_id: int
    tx_hash: str
    dispute: DisputeOut


class JobOut(BaseModel):
    job_id: int
    state: str = Field(
        description="One of: " + ", ".join(s.label for s in JobState if s is not JobState.NONE)
    )
    requester: str
    worker: str | None
    price: int = Field(description="The worker's ask in wei (0 before a claim)")
    max_price: int | None = Field(description="Max price in wei, as posted (from JobPosted)")
    escrow: int = Field(description="Wei the contract holds for this job")
    deadline: int = Field(description="Unix time at which the current phase ends")
    lapsed: str | None = Field(
        None,
        description="Why the job can no longer progress (unclaimed or unsubmitted past its "
        "deadline; only `expire` moves it now), or null",
    )
    run_window: int
    spec_cid: str | None
    result_cid: str | None
    settle_tx: str | None = Field(description="Tx that settled, cancelled or expired the job")
    transitions: list[Transition]
    payments: list[PaymentOut]
    not_disputable: str | None = Field(
        None, description="Why the job's kind cannot be disputed, or null if it can (or is unknown)"
    )
    dispute: DisputeOut | None = Field(None, description="Its result's dispute, if any")


class ResultOut(BaseModel):
    job_id: int
    state: str
    result_cid: str
    url: str = Field(description="Gateway path of the result, /ipfs/<cid>")
    tx_hash: str = Field(description="Tx that submitted the result")


class CidOut(BaseModel):
    cid: str
    size: int


class DirEntryOut(BaseModel):
    name: str
    cid: str
    size: int
    type: Literal["file", "directory"]


class DirListingOut(BaseModel):
    cid: str
    entries: list[DirEntryOut]


class ChainHealth(BaseModel):
    rpc_url: str
    chain_id: int | None = None
    block: int | None = None
    error: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    chain: ChainHealth
    market: str | None
    store: str
    problems: list[str] = Field(default_factory=list, description="Why the status is degraded")
