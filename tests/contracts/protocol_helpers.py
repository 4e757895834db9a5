"""Helpers of the protocol tests: job terms, registry, replicas, tokens, Merkle allowlists.

They build on market_helpers.Market (fixed gas, mined refusals, decoded custom errors) and add
what the terms-based calls need. Plain web3.py and eth-abi, like the spine's helpers.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from enum import IntEnum
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from market_helpers import CID, ETHER, GAS_LIMIT, Market
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from hepx.artifacts import load_artifact

ZERO_ADDRESS = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
STAKE = ETHER // 10
A, B = b"\xaa" * 32, b"\xbb" * 32  # two digests replicas may reveal
SALT = [bytes([i]) * 32 for i in range(1, 9)]


class Mode(IntEnum):
    CLAIM = 0
    AUCTION = 1


class Slot(IntEnum):
    NONE = 0
    BID = 1
    ASSIGNED = 2
    COMMITTED = 3
    REVEALED = 4
    PAID = 5
    SLASHED = 6
    RELEASED = 7


@dataclass(frozen=True)
class Terms:
    """Input of postJobWithTerms, with the defaults of a fast-path-like job."""

    mode: int = Mode.CLAIM
    replicas: int = 1
    quorum: int = 1
    token: str = ZERO_ADDRESS
    max_price: int = ETHER
    min_stake: int = 0
    match_window: int = 600
    run_window: int = 1800
    reveal_window: int = 0
    kind: bytes = ZERO32
    allowlist_root: bytes = ZERO32

    def escrow(self) -> int:
        return self.max_price * self.replicas

    def but(self, **changes: Any) -> Terms:
        return replace(self, **changes)

    def as_arg(self) -> tuple[Any, ...]:
        return astuple(self)


def replicated(n: int = 3, k: int = 2, **changes: Any) -> Terms:
    return Terms(replicas=n, quorum=k, reveal_window=900).but(**changes)


def kind_id(name: str) -> bytes:
    return bytes(Web3.keccak(text=name))


def bound_commitment(market: Market, job_id: int, worker: str, digest: bytes, salt: bytes) -> bytes:
    """keccak256(abi.encode(chainid, market, jobId, worker, digest, salt)): what a replica
    commits; it opens only for that worker, on that job of that market."""
    chain_id = market.w3.eth.chain_id
    return bytes(
        Web3.keccak(
            abi_encode(
                ["uint256", "address", "uint256", "address", "bytes32", "bytes32"],
                [chain_id, market.address, job_id, worker, digest, salt],
            )
        )
    )


def leaf(worker: str) -> bytes:
    """OpenZeppelin's recommended double-hashed leaf of one allowed worker."""
    return bytes(Web3.keccak(Web3.keccak(abi_encode(["address"], [worker]))))


def merkle(workers: list[str]) -> tuple[bytes, dict[str, list[bytes]]]:
    """Root and per-worker proofs of a sorted-pair Merkle tree (OpenZeppelin MerkleProof)."""
    level = [leaf(w) for w in workers]
    proofs: dict[str, list[bytes]] = {w: [] for w in workers}
    positions = {w: i for i, w in enumerate(workers)}
    while len(level) > 1:
        parents = []
        for i in range(0, len(level), 2):
            if i + 1 == len(level):
                parents.append(level[i])  # odd node moves up unpaired
                continue
            a, b = sorted((level[i], level[i + 1]))
            parents.append(bytes(Web3.keccak(a + b)))
        for w, pos in positions.items():
            sibling = pos ^ 1
            if sibling < len(level):
                proofs[w].append(level[sibling])
            positions[w] = pos // 2
        level = parents
    return level[0], proofs


def post_terms(market: Market, requester: str, terms: Terms, value: int | None = None) -> int:
    """Post a job with ``terms`` (ETH value = its escrow unless given); return its id."""
    if value is None:
        value = terms.escrow() if terms.token == ZERO_ADDRESS else 0
    receipt = market.send(requester, "postJobWithTerms", CID, terms.as_arg(), value=value)
    return int(market_events(market, receipt, "JobPosted")[0]["jobId"])


def market_events(market: Market, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The args of every ``name`` event the market emitted in ``receipt`` (others skipped)."""
    event = getattr(market.contract.events, name)()
    found = []
    for log in receipt["logs"]:
        if log["address"] != market.address:
            continue
        if bytes(log["topics"][0]) != bytes(Web3.keccak(text=_signature(market, name))):
            continue
        found.append(dict(event.process_log(log)["args"]))
    return found


def _signature(market: Market, name: str) -> str:
    for entry in market.artifact.abi:
        if entry["type"] == "event" and entry["name"] == name:
            return f"{name}({','.join(_abi_type(i) for i in entry['inputs'])})"
    raise KeyError(name)


def _abi_type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return str(entry["type"])


def terms_of(market: Market, job_id: int) -> dict[str, Any]:
    names = [
        "mode", "replicas", "quorum", "assigned", "committed", "revealed", "revealWindow",
        "token", "maxPrice", "minStake", "postedBlock", "kind", "allowlistRoot", "drawSeed",
    ]  # fmt: skip
    return dict(zip(names, market.contract.functions.getTerms(job_id).call(), strict=True))


def slots_of(market: Market, job_id: int) -> list[dict[str, Any]]:
    return [
        {"worker": w, "price": p, "status": Slot(s), "commitment": c, "digest": d, "drawKey": k}
        for (w, p, s, c, d, k) in market.contract.functions.getAssignments(job_id).call()
    ]


def worker_of(market: Market, worker: str) -> dict[str, Any]:
    registered, stake, locked, unbond_end, unbonding, stake_since = (
        market.contract.functions.getWorker(worker).call()
    )
    return {
        "registered": registered,
        "stake": stake,
        "locked": locked,
        "unbondEnd": unbond_end,
        "unbonding": unbonding,
        "stakeSince": stake_since,
    }


def register(market: Market, worker: str, stake: int = ETHER, kinds: tuple[str, ...] = ()) -> None:
    market.send(worker, "register", [kind_id(k) for k in kinds], value=stake)


def apply_and_award(
    market: Market, job_id: int, applicants: list[str], prices: int | list[int] = 1
) -> TxReceipt:
    """Each applicant claims (applies to) the replicated job's draw, at ``prices``; past the
    match deadline the first applicant awards it. Returns the award's receipt."""
    asks = prices if isinstance(prices, list) else [prices] * len(applicants)
    for applicant, price in zip(applicants, asks, strict=True):
        market.send(applicant, "claim", job_id, price)
    market.at(market.job(job_id)["deadline"] + 1)
    return market.send(applicants[0], "award", job_id)


def register_all(market: Market, workers: list[str], stake: int = STAKE) -> None:
    """Register ``workers`` with ``stake``: a replicated job's draw weighs applicants by it."""
    for w in workers:
        register(market, w, stake=stake)


def deploy_contract(market: Market, name: str, sender: str, *args: Any) -> Contract:
    """Deploy artifact ``name`` (TestToken, HostileToken, HostileReceiver, MarketCalls) on the
    market's chain."""
    artifact = load_artifact(name)
    w3 = market.w3
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).build_transaction({"from": sender, "gas": 6 * GAS_LIMIT})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))
    assert receipt["status"] == 1, f"deploying {name} failed"
    return cast(Contract, w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi))


def transact(contract: Contract, sender: str, fn: str, *args: Any, value: int = 0) -> TxReceipt:
    """A call on a helper contract that must succeed."""
    tx = getattr(contract.functions, fn)(*args).build_transaction(
        {"from": sender, "value": value, "gas": GAS_LIMIT}
    )
    w3 = contract.w3
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))
    assert receipt["status"] == 1, f"{fn}{args} on {contract.address} reverted"
    return receipt


def calldata(market: Market, fn: str, *args: Any) -> bytes:
    """ABI-encoded call of market function ``fn`` (for contracts acting on the market)."""
    return bytes.fromhex(market.contract.encode_abi(fn, args=list(args))[2:])
