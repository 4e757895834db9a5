"""What the market's calls take and return, as plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from hepx.chain.enums import (
    AssignmentStatus,
    DisputeState,
    JobState,
    LotState,
    MatchMode,
    Verdict,
    VerifierStatus,
)
from hepx.errors import ChainError

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = b"\x00" * 32
DEVNET_CHAIN_ID = 31337  # anvil's
# A devnet's market lets jobs up to 0.01 ether be taken without a stake (public chains: 0).
DEVNET_STAKE_FREE_LIMIT = 10**16


# States that end at the job's deadline without a transition of their own: past it nobody can
# claim or submit any more, and only ``expire`` (anyone) moves the job and returns its escrow.
_LAPSES = {
    JobState.OPEN.label: "nobody claimed it before its claim deadline",
    JobState.CLAIMED.label: "no result came before its run deadline",
}


# Gas for finalize/expire, sent unsimulated: anvil simulates at the last block's timestamp,
# which on an idle automine chain is older than the deadline the wall clock has passed.
SETTLE_GAS = 200_000
# Gas per job of a finalizeJobs batch, sent unsimulated for the same reason: a single worker's
# settlement costs ~30k warm, ~55k when the worker's account and the job are cold.
FINALIZE_ITEM_GAS = 60_000
# Gas per job of a claimJobs batch, sent after an eth_call instead of an estimate (the call
# says how many it would claim; one round trip less per claim): a claim costs ~41k warm, up
# to ~95k for a new worker's account or a replica's slot.
CLAIM_ITEM_GAS = 150_000
# Gas of a lot's settlement (settleLots, or riding on submitLot), sent unsimulated (see
# SETTLE_GAS): ~42k, ~60k with a new payee's account.
LOT_SETTLE_GAS = 80_000
# Gas of a claimLot, sent after an eth_call instead of an estimate (see CLAIM_ITEM_GAS): ~59k,
# ~65k with a stake to lock, ~105k with a new worker's account.
LOT_CLAIM_GAS = 150_000
# Gas per job of a submitLot, and its base, sent unsimulated for the same reason: ~4.6k per
# job with a CID and a digest, ~50k for the lot.
LOT_ITEM_GAS = 12_000
LOT_BASE_GAS = 100_000
# Gas per result of a submitResults batch, sent unsimulated (its settlements are due by the
# wall clock, see SETTLE_GAS): a submission costs ~13k in a batch, ~36k alone, more with a
# long CID.
SUBMIT_ITEM_GAS = 60_000

# Seconds past a deadline before a job counts as lapsed, for callers whose clock may differ a
# little from the timestamp the next block will carry.
LAPSE_GRACE = 5.0


def lapsed(state: str, deadline: int, now: float, grace: float = LAPSE_GRACE) -> str | None:
    """Why a job in ``state`` (a label) can no longer progress at ``now``, or None if it can."""
    reason = _LAPSES.get(state)
    return reason if reason is not None and now > deadline + grace else None


def kind_id(kind: str) -> bytes:
    """The on-chain id of a job kind: ``keccak256(bytes(kind))``."""
    return bytes(keccak(text=kind))


def commitment_of(
    chain_id: int, market: str, job_id: int, worker: str, digest: bytes, salt: bytes
) -> bytes:
    """What ``worker`` commits for ``job_id`` before revealing:
    ``keccak256(abi.encode(chainid, market, jobId, worker, digest, salt))``, so that it opens
    for that worker only, on that job of that market and chain (IJobMarket.commitmentOf)."""
    if len(digest) != 32 or len(salt) != 32:
        raise ChainError("a commitment takes a 32-byte digest and a 32-byte salt")
    encoded = abi_encode(
        ["uint256", "address", "uint256", "address", "bytes32", "bytes32"],
        [chain_id, to_checksum_address(market), job_id, to_checksum_address(worker), digest, salt],
    )
    return bytes(keccak(encoded))


@dataclass(frozen=True)
class Terms:
    """What ``postJobWithTerms`` takes beyond the spec CID (``IJobMarket.Terms``)."""

    max_price: int  # per replica, in wei or token units
    match_window: int
    run_window: int
    mode: MatchMode = MatchMode.CLAIM
    replicas: int = 1
    quorum: int = 1
    token: str | None = None  # None = ETH
    min_stake: int = 0
    reveal_window: int = 0
    kind: bytes = ZERO_BYTES32
    allowlist_root: bytes = ZERO_BYTES32

    @property
    def escrow(self) -> int:
        return self.max_price * self.replicas

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            int(self.mode),
            self.replicas,
            self.quorum,
            to_checksum_address(self.token) if self.token else ZERO_ADDRESS,
            self.max_price,
            self.min_stake,
            self.match_window,
            self.run_window,
            self.reveal_window,
            self.kind,
            self.allowlist_root,
        )


@dataclass(frozen=True)
class JobTerms:
    """A job's stored terms (``getTerms``), with its replica counters."""

    mode: MatchMode
    replicas: int
    quorum: int
    assigned: int
    committed: int
    revealed: int
    reveal_window: int
    token: str | None  # None = ETH
    max_price: int
    min_stake: int
    posted_block: int  # stake bonded in it or later does not count in the job's draw
    kind: bytes
    allowlist_root: bytes
    draw_seed: bytes  # replicated jobs: set by the first claim after the post's block


@dataclass(frozen=True)
class Assignment:
    """One held bid or replica of a job (``getAssignments``)."""

    worker: str
    price: int
    status: AssignmentStatus
    commitment: bytes
    digest: bytes
    draw_key: int = 0  # replicated jobs: the seat's key in the draw, smaller wins


@dataclass(frozen=True)
class WorkerRecord:
    """A worker's stake in the registry (``getWorker``)."""

    address: str
    registered: bool
    stake: int  # bonded, including locked
    locked: int
    unbond_end: int
    unbonding: int
    stake_since: int  # block in which stake was last added: draws count only older stake

    @property
    def available(self) -> int:
        return self.stake - self.locked


@dataclass(frozen=True)
class Job:
    """A job as the contract's ``getJob`` reports it."""

    job_id: int
    requester: str
    state: JobState
    deadline: int
    run_window: int
    worker: str | None
    price: int
    # What the market holds for the job now: the max price while open, the worker's price once
    # one worker is assigned (the rest is refunded then), 0 once final. The max price a job was
    # posted with is in its JobPosted event.
    escrow: int


@dataclass(frozen=True)
class Sweep:
    """A sweep as ``getSweep`` reports it: jobs ``sweep_id .. sweep_id + count - 1``."""

    sweep_id: int
    requester: str
    count: int
    taken: int  # claimed in lots or refunded: the next lot starts at sweep_id + taken
    price: int
    claim_deadline: int
    run_window: int

    @property
    def untaken(self) -> int:
        return self.count - self.taken


@dataclass(frozen=True)
class Lot:
    """A lot as ``getLot`` reports it: jobs ``lot_id .. lot_id + count - 1`` of one sweep."""

    lot_id: int
    worker: str | None
    requester: str
    count: int
    opened: int  # jobs opened to a dispute, paid or refunded on their own
    state: LotState
    deadline: int  # the run deadline, then the end of the challenge window
    price: int
    digests_hash: bytes

    @property
    def job_ids(self) -> range:
        return range(self.lot_id, self.lot_id + self.count)


@dataclass(frozen=True)
class MarketEvent:
    """A decoded JobMarket log."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int
    # Lets an index notice a reorg: the same block number under another hash.
    block_hash: str = ""

    @property
    def job_id(self) -> int | None:
        value = self.args.get("jobId")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    events: list[MarketEvent] = field(default_factory=list)
    gas_price: int = 0  # effective wei per gas, so gas spent = gas_used * gas_price
    block_hash: str = ""  # which block: a reorg may replace it

    def event(self, name: str) -> MarketEvent:
        for ev in self.events:
            if ev.name == name:
                return ev
        raise ChainError(f"transaction {self.tx_hash} emitted no {name} event")


def json_safe(value: Any) -> Any:
    """Event arguments as JSON: bytes as 0x-hex, enums as plain ints."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class Dispute:
    """A dispute as the court's ``getDispute`` reports it."""

    job_id: int
    disputer: str
    bond: int
    requester: str
    worker: str
    price: int
    state: DisputeState
    verdict: Verdict
    panel: int
    drawn: int
    committed: int
    revealed: int
    digest_tag: int
    opened_at: int
    draw_deadline: int
    commit_deadline: int
    reveal_deadline: int
    opened_block: int
    verifier_stake: int
    kind: bytes
    seed: bytes

    @property
    def majority(self) -> int:
        return self.panel // 2 + 1


@dataclass(frozen=True)
class Seat:
    """One verifier drawn for a dispute (``getSeats``)."""

    verifier: str
    status: VerifierStatus
    key: int
    commitment: bytes
    vote: bytes
