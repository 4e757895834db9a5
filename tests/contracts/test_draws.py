"""Replicated jobs' seats are drawn by stake (issue 13), each rule tried by the party it stops.

Before the draw, the first `replicas` claims took the seats: two Sybil addresses that claimed
in the block after the post held 2 of a 2-of-3 job's 3 seats at once, whatever the honest
workers' stake, and outvoted the honest replica. Now a claim applies; the `replicas` smallest
keys `-log2(U) / stake` (U from a seed no applicant knew when it could still stake) hold the
seats when the match deadline passes.
"""

from __future__ import annotations

import math

from eth_abi.abi import encode as abi_encode
from market_helpers import CID, ETHER, Market, State
from protocol_helpers import (
    STAKE,
    ZERO32,
    Slot,
    market_events,
    post_terms,
    register,
    register_all,
    replicated,
    slots_of,
    terms_of,
    worker_of,
)
from web3 import Web3


def key_of(seed: bytes, who: str, stake: int) -> float:
    """The draw key as the contract computes it, in floating point."""
    h = int.from_bytes(Web3.keccak(abi_encode(["bytes32", "address"], [seed, who])))
    return (256 - math.log2(h + 1)) * 2**32 * 2**128 / stake


def apply_all(market: Market, job_id: int, applicants: list[str]) -> tuple[list[str], set[str]]:
    """Each applicant claims; returns those the draw refused (a full draw of smaller keys) and
    those a smaller key displaced."""
    refused, displaced = [], set()
    for who in applicants:
        receipt = market.try_send(who, "claim", job_id, 1)
        if receipt["status"] == 0:
            assert market.revert_error(receipt)[0] == "JobMarketNotDrawn"
            refused.append(who)
        for out in market_events(market, receipt, "ReplicaDisplaced"):
            displaced.add(out["worker"])
    return refused, displaced


def test_a_sybil_pair_first_in_the_block_after_the_post_does_not_take_the_seats(
    market: Market, requester: str
) -> None:
    sybils, honest = market.accounts[4:6], market.accounts[6:9]
    register_all(market, sybils, stake=STAKE // 1000)  # 0.07 % of the staked pool each
    register_all(market, honest, stake=STAKE)
    job_id = post_terms(market, requester, replicated(3, 2))
    for who in sybils:  # the fastest claims, in the first block that may claim
        market.send(who, "claim", job_id, 1)
    assert market.job(job_id)["state"] == State.OPEN  # arrival decides nothing
    apply_all(market, job_id, honest)
    market.at(market.job(job_id)["deadline"] + 1)
    market.send(honest[0], "award", job_id)
    seated = [s["worker"] for s in slots_of(market, job_id)]
    assert market.job(job_id)["state"] == State.COMMITTING
    # Holding 1/1500 of the stake, the pair loses the quorum but with probability ~1e-6.
    assert sum(1 for who in seated if who in sybils) < 2, seated


def test_the_seats_are_the_smallest_keys_and_a_displaced_applicant_is_released(
    market: Market, requester: str
) -> None:
    applicants = market.accounts[4:10]
    register_all(market, applicants)
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    refused, displaced = apply_all(market, job_id, applicants)
    seed = terms_of(market, job_id)["drawSeed"]
    keys = {who: key_of(seed, who, STAKE) for who in applicants}
    held = slots_of(market, job_id)
    seated = {s["worker"] for s in held}
    assert seated == set(sorted(applicants, key=keys.__getitem__)[:3])
    assert {s["status"] for s in held} == {Slot.BID}
    for s in held:  # the stored key is the formula's (fixed point against float)
        assert math.isclose(s["drawKey"], keys[s["worker"]], rel_tol=1e-6)
    for who in applicants:
        assert worker_of(market, who)["locked"] == (STAKE if who in seated else 0)
    # Whoever was neither seated nor refused was seated once and displaced by a smaller key.
    assert displaced == set(applicants) - seated - set(refused)


def test_the_seed_is_the_first_claims_prevrandao_and_keys_weigh_stake(
    market: Market, requester: str
) -> None:
    small, big = market.accounts[4:6]
    register(market, small, stake=STAKE)
    register(market, big, stake=10 * STAKE)
    job_id = post_terms(market, requester, replicated(3, 2))
    assert terms_of(market, job_id)["drawSeed"] == ZERO32
    receipt = market.send(small, "claim", job_id, 1)
    prevrandao = int.from_bytes(bytes(market.w3.eth.get_block(receipt["blockNumber"])["mixHash"]))
    seed = terms_of(market, job_id)["drawSeed"]
    assert seed == Web3.keccak(abi_encode(["uint256", "uint256"], [job_id, prevrandao]))
    [drawn] = market_events(market, receipt, "ReplicaDrawn")
    assert math.isclose(drawn["key"], key_of(seed, small, STAKE), rel_tol=1e-6)
    receipt = market.send(big, "claim", job_id, 1)
    [drawn] = market_events(market, receipt, "ReplicaDrawn")
    assert math.isclose(drawn["key"], key_of(seed, big, 10 * STAKE), rel_tol=1e-6)


def test_a_claim_in_the_posts_own_block_cannot_seed_the_draw(
    market: Market, requester: str
) -> None:
    # The post's block's randomness was known when the post was sent: a claim in the same
    # block (a requester's own Sybil, say) would seed the draw with it.
    sybil = market.accounts[4]
    register(market, sybil, stake=STAKE)
    terms = replicated(3, 2)
    fns = market.contract.functions
    market.rpc("evm_setAutomine", False)
    try:
        fns.postJobWithTerms(CID, terms.as_arg()).transact(
            {"from": requester, "value": terms.escrow(), "gas": 600_000}
        )
        job_id = fns.jobCount().call() + 1
        claim = fns.claim(job_id, 1).transact({"from": sybil, "gas": 400_000})
        market.rpc("evm_mine")
    finally:
        market.rpc("evm_setAutomine", True)
    receipt = market.w3.eth.get_transaction_receipt(claim)
    posted = terms_of(market, job_id)["postedBlock"]
    assert posted == receipt["blockNumber"]
    assert market.revert_error(receipt) == ("JobMarketSeedNotReady", (job_id, posted))
    market.send(sybil, "claim", job_id, 1)  # one block later it may


def test_stake_bonded_once_the_job_is_posted_does_not_count_in_its_draw(
    market: Market, requester: str
) -> None:
    old, newcomer, unstaked = market.accounts[4:7]
    register(market, old, stake=STAKE)
    register(market, unstaked, stake=0)
    job_id = post_terms(market, requester, replicated(3, 2))
    posted = terms_of(market, job_id)["postedBlock"]
    # A Sybil registered after the post (it could pick an address the seed favours) ...
    register(market, newcomer, stake=STAKE)
    since = worker_of(market, newcomer)["stakeSince"]
    market.assert_reverts(
        "JobMarketStakeTooRecent", (newcomer, since, posted), newcomer, "claim", job_id, 1
    )
    # ... and an old worker topping its weight up after it, are both refused ...
    market.send(old, "addStake", value=STAKE)
    since = worker_of(market, old)["stakeSince"]
    market.assert_reverts("JobMarketStakeTooRecent", (old, since, posted), old, "claim", job_id, 1)
    # ... and a worker without stake has no weight to be drawn by.
    market.assert_reverts(
        "RegistryInsufficientStake", (unstaked, 0, 1), unstaked, "claim", job_id, 1
    )


def test_a_draw_with_too_few_applicants_expires_and_releases_them(
    market: Market, requester: str, stranger: str
) -> None:
    only = market.accounts[4]
    register(market, only, stake=STAKE)
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    market.send(only, "claim", job_id, 1)
    market.assert_reverts(
        "JobMarketAlreadyAssigned", (job_id, only), requester, "cancel", job_id
    )  # an applicant holds a seat: the requester waits for the deadline
    market.at(market.job(job_id)["deadline"] + 1)
    market.assert_reverts("JobMarketNotEnoughWorkers", (job_id, 1, 2), stranger, "award", job_id)
    market.send(stranger, "expire", job_id)
    assert market.job(job_id)["state"] == State.EXPIRED
    assert worker_of(market, only)["locked"] == 0
    assert market.withdrawable(requester) == 3 * ETHER
