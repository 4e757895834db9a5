"""Helpers of the dispute tests: the market's court, verifiers, a panel that votes.

The court is reached as a second `Market` wrapper (fixed gas, mined refusals): its ABI plus the
market's custom errors, since a refusal inside the market's hooks bubbles up through the court.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from market_helpers import Market
from protocol_helpers import market_events, register
from web3 import Web3
from web3.types import TxReceipt

from hepx.artifacts import load_artifact

HONEST = Web3.keccak(text="the digest an honest run gives")
GARBAGE = Web3.keccak(text="a digest made up without running the job")


def court_of(market: Market) -> Market:
    artifact = load_artifact("DisputeCourt")
    errors = [e for e in market.artifact.abi if e["type"] == "error"]
    merged = replace(artifact, abi=artifact.abi + errors)
    address = market.contract.functions.disputeCourt().call()
    contract = market.w3.eth.contract(address=address, abi=artifact.abi)
    return Market(market.w3, contract, merged, market.accounts)


def court_events(court: Market, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    return market_events(court, receipt, name)


def verifiers(market: Market, n: int, stake: int) -> list[str]:
    """``n`` staked workers (accounts 4..), registered a second before whatever comes next,
    so that a dispute opened after them counts their stake."""
    found = list(market.accounts[4 : 4 + n])
    for who in found:
        register(market, who, stake=stake)
    market.at(market.now() + 1)
    return found


def dispute(court: Market, disputer: str, job_id: int, panel: int, price: int) -> TxReceipt:
    return court.send(disputer, "dispute", job_id, panel, value=panel * price)


def deadlines(court: Market, job_id: int) -> dict[str, int]:
    d = dispute_of(court, job_id)
    return {k: d[k] for k in ("drawDeadline", "commitDeadline", "revealDeadline")}


def dispute_of(court: Market, job_id: int) -> dict[str, Any]:
    names = [
        "disputer", "bond", "requester", "worker", "price", "state", "verdict", "panel",
        "drawn", "committed", "revealed", "digestTag", "openedAt", "drawDeadline",
        "commitDeadline", "revealDeadline", "openedBlock", "verifierStake", "kind", "seed",
    ]  # fmt: skip
    values = court.contract.functions.getDispute(job_id).call()
    return dict(zip(names, values, strict=True))


def seats_of(court: Market, job_id: int) -> list[dict[str, Any]]:
    return [
        {"verifier": v, "status": s, "key": k, "commitment": c, "vote": vote}
        for (v, s, k, c, vote) in court.contract.functions.getSeats(job_id).call()
    ]


def salt_of(verifier: str) -> bytes:
    return Web3.keccak(text=f"salt of {verifier}")


def vote_commitment(court: Market, job_id: int, verifier: str, vote: bytes) -> bytes:
    return bytes(
        court.contract.functions.commitmentOf(job_id, verifier, vote, salt_of(verifier)).call()
    )


def vote(court: Market, job_id: int, votes: dict[str, bytes]) -> TxReceipt:
    """The drawn ``votes`` are committed after the draw and revealed (a verifier given no
    vote stays silent); anyone resolves once the reveal deadline passed. Returns the resolve."""
    d = deadlines(court, job_id)
    court.at(d["drawDeadline"] + 1)
    for verifier, choice in votes.items():
        court.send(verifier, "commitVote", job_id, vote_commitment(court, job_id, verifier, choice))
    court.at(d["commitDeadline"] + 1)
    for verifier, choice in votes.items():
        court.send(verifier, "revealVote", job_id, choice, salt_of(verifier))
    court.at(d["revealDeadline"] + 1)
    return court.send(court.accounts[0], "resolve", job_id)
