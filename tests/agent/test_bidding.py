"""agent/bidding.py on its own: what a worker bids, which terms it refuses, and how one
replica sees a replicated job's escrow."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agent.bidding import AuctionFlow, bid_price, per_replica, refusal
from agent.policy import Policy
from hepx.allowlist import merkle_root
from hepx.chain import (
    ZERO_BYTES32,
    Assignment,
    AssignmentStatus,
    Job,
    JobState,
    JobTerms,
    MatchMode,
    kind_id,
)
from hepx.spec import JobSpec, parse_spec

ME, OTHER = "0x" + "1" * 40, "0x" + "2" * 40
TOKEN = "0x" + "7" * 40


def _policy(price: int = 1000, **extra: Any) -> Policy:
    return Policy.model_validate({"kinds": {"echo": {"price": price}}, "max_runtime": 60, **extra})


def _spec(**payment: Any) -> JobSpec:
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": "t"},
            "resources": {"max_runtime": 20},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 60, **payment},
        }
    )


def _terms(**changes: Any) -> JobTerms:
    base = JobTerms(
        mode=MatchMode.CLAIM, replicas=1, quorum=1, assigned=0, committed=0, revealed=0,
        reveal_window=0, token=None, max_price=10**6, min_stake=0, posted_block=0,
        kind=ZERO_BYTES32, allowlist_root=ZERO_BYTES32, draw_seed=ZERO_BYTES32,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_undercut_bids_one_step_below_the_best_bid_others_hold_but_not_below_its_floor() -> None:
    held = [Assignment(OTHER, 2000, AssignmentStatus.BID, b"", b""), Assignment(ME, 1, 1, b"", b"")]
    undercut = _policy(500, bidding={"strategy": "undercut", "step": 10})
    assert bid_price(undercut, 500, 5000, held, ME) == 1990
    assert bid_price(undercut, 500, 5000, [], ME) == 5000  # nobody to beat: the max price
    floored = _policy(500, bidding={"strategy": "undercut", "step": 10, "min_price": 1995})
    assert bid_price(floored, 500, 5000, held, ME) == 1995
    assert bid_price(_policy(500), 500, 5000, held, ME) == 500  # ask: always the kind's price


def test_bids_never_go_below_the_markets_one_wei() -> None:
    held = [Assignment(OTHER, 1, AssignmentStatus.BID, b"", b"")]
    assert bid_price(_policy(0, bidding={"strategy": "undercut"}), 0, 5000, held, ME) == 1
    assert bid_price(_policy(0), 0, 5000, held, ME) == 1


def test_undercut_never_bids_above_the_max_price() -> None:
    held = [Assignment(OTHER, 9000, AssignmentStatus.BID, b"", b"")]
    undercut = _policy(500, bidding={"strategy": "undercut", "step": 10})
    assert bid_price(undercut, 500, 5000, held, ME) == 5000


def test_plain_terms_are_taken() -> None:
    assert refusal(_policy(), _spec(), _terms(), None, True, ME) is None


@pytest.mark.parametrize(
    ("terms", "stake", "declared", "why"),
    [
        (_terms(token=TOKEN), None, True, f"pays in token {TOKEN}, not in policy tokens"),
        (_terms(min_stake=100), 99, True, "min stake 100 wei above our available stake 99"),
        (_terms(min_stake=100), None, True, "min stake 100 wei above our available stake 0"),
        (_terms(kind=kind_id("hep.pythia")), None, True, "on-chain kind does not match its spec"),
        (_terms(kind=kind_id("echo")), None, False, "kind echo not declared in the registry"),
    ],
)
def test_terms_the_worker_cannot_meet_are_refused_with_the_reason(
    terms: JobTerms, stake: int | None, declared: bool, why: str
) -> None:
    reason = refusal(_policy(), _spec(), terms, stake, declared, ME)
    assert reason is not None and why in reason


def test_a_token_in_the_policy_and_enough_stake_are_taken() -> None:
    policy = _policy(tokens=[TOKEN.upper().replace("0X", "0x")])
    assert refusal(policy, _spec(), _terms(token=TOKEN, min_stake=100), 100, True, ME) is None


def test_allowlist_must_match_the_root_on_chain_and_name_this_worker() -> None:
    listed = _spec(allowlist=[ME, OTHER])
    root = merkle_root(listed.payment.allowlist)
    assert refusal(_policy(), listed, _terms(allowlist_root=root), None, True, ME) is None
    stranger = "0x" + "3" * 40
    assert refusal(_policy(), listed, _terms(allowlist_root=root), None, True, stranger) == (
        "not on the job's allowlist"
    )
    other_root = merkle_root(_spec(allowlist=[OTHER]).payment.allowlist)
    why = refusal(_policy(), listed, _terms(allowlist_root=other_root), None, True, ME)
    assert why == "the spec's allowlist does not match the job's allowlist root"


def test_one_replica_sees_its_own_share_of_the_escrow() -> None:
    job = Job(1, OTHER, JobState.OPEN, 0, 60, None, 0, escrow=3 * 10**6)
    assert per_replica(job, _terms(replicas=3, max_price=10**6)).escrow == 10**6
    assert per_replica(job, _terms()) is job


def test_only_jobs_beyond_the_fast_path_need_the_terms_flow() -> None:
    assert not AuctionFlow.needs_terms(_terms())
    assert AuctionFlow.needs_terms(_terms(mode=MatchMode.AUCTION))
    assert AuctionFlow.needs_terms(_terms(replicas=3, quorum=2))
    assert AuctionFlow.needs_terms(_terms(min_stake=1))
