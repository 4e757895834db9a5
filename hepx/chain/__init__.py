"""The chain client: the market's calls, signed transactions, decoded events and errors.

rpc        the node: every call retried and its errors converted once (Rpc.call)
reverts    custom errors of the shipped contracts, by selector
events     the one log decoder and the one walk over (confirmed) block ranges
contract   the transaction pipeline every contract client shares
nonces     one nonce sequence per sender: one key's transactions in flight together
market     JobMarket (and its worker registry); token: ERC-20; deploy: deploy_market
court      the DisputeCourt the market deployed, and the rule of a verifier's vote
desk       the RequestDesk the market deployed: deposits and signed job requests (EIP-712)
follower   handing market events to an agent from a saved cursor; heads: new blocks over WS
types      records the calls take and return; enums: generated from the contracts
"""

from hepx.chain.contract import ContractClient
from hepx.chain.court import DEFAULT_PANEL, CourtClient, mismatch_vote, vote_for
from hepx.chain.deploy import deploy_market
from hepx.chain.desk import JobRequest, RequestDeskClient, new_nonce, sign_request, signer_of
from hepx.chain.enums import (
    FINAL_STATE_LABELS,
    FINAL_STATES,
    AssignmentStatus,
    DisputeState,
    JobState,
    LotState,
    MatchMode,
    PaymentDirection,
    PaymentReason,
    ProtocolEnum,
    Verdict,
    VerifierStatus,
)
from hepx.chain.events import (
    FINAL_EVENTS,
    STATE_AFTER_EVENT,
    SWEEP_EVENTS,
    LogDecoder,
    block_ranges,
    closes,
    confirmed_ranges,
    others_money,
)
from hepx.chain.follower import KEPT_HASHES, Cursor, EventFollower
from hepx.chain.heads import HeadWatcher, websocket_url
from hepx.chain.market import MarketClient
from hepx.chain.reverts import decode_revert
from hepx.chain.rpc import Rpc
from hepx.chain.token import TokenClient
from hepx.chain.types import (
    DEVNET_CHAIN_ID,
    DEVNET_STAKE_FREE_LIMIT,
    SETTLE_GAS,
    ZERO_ADDRESS,
    ZERO_BYTES32,
    Assignment,
    Dispute,
    Job,
    JobTerms,
    Lot,
    MarketEvent,
    Seat,
    Sweep,
    Terms,
    TxResult,
    WorkerRecord,
    commitment_of,
    json_safe,
    kind_id,
    lapsed,
)

__all__ = [
    "DEFAULT_PANEL",
    "DEVNET_CHAIN_ID",
    "DEVNET_STAKE_FREE_LIMIT",
    "FINAL_EVENTS",
    "FINAL_STATES",
    "FINAL_STATE_LABELS",
    "SETTLE_GAS",
    "STATE_AFTER_EVENT",
    "SWEEP_EVENTS",
    "closes",
    "ZERO_ADDRESS",
    "ZERO_BYTES32",
    "Assignment",
    "AssignmentStatus",
    "ContractClient",
    "CourtClient",
    "JobRequest",
    "RequestDeskClient",
    "new_nonce",
    "sign_request",
    "signer_of",
    "Cursor",
    "KEPT_HASHES",
    "Dispute",
    "DisputeState",
    "EventFollower",
    "HeadWatcher",
    "Job",
    "JobState",
    "Lot",
    "LotState",
    "JobTerms",
    "LogDecoder",
    "MarketClient",
    "MarketEvent",
    "MatchMode",
    "PaymentDirection",
    "PaymentReason",
    "ProtocolEnum",
    "Rpc",
    "Seat",
    "Sweep",
    "Terms",
    "TokenClient",
    "TxResult",
    "Verdict",
    "VerifierStatus",
    "WorkerRecord",
    "block_ranges",
    "commitment_of",
    "confirmed_ranges",
    "decode_revert",
    "deploy_market",
    "json_safe",
    "kind_id",
    "lapsed",
    "mismatch_vote",
    "others_money",
    "vote_for",
    "websocket_url",
]
