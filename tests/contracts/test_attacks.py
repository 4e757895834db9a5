"""Attacks of issue 13 on the contracts, each run as the attacker would on a real anvil; each
test asserts that the attack fails. On the contract before this change every one succeeded:
the copier was paid, the honest committer slashed, the requester credited the slash.
"""

from __future__ import annotations

from market_helpers import ETHER, RESULT_CID, RESULT_DIGEST, Market, State
from protocol_helpers import (
    SALT,
    STAKE,
    A,
    B,
    Mode,
    Slot,
    Terms,
    apply_and_award,
    bound_commitment,
    market_events,
    post_terms,
    register,
    replicated,
    slots_of,
    worker_of,
)


def staked(market: Market, n: int) -> list[str]:
    found = list(market.accounts[4 : 4 + n])
    for w in found:
        register(market, w, stake=STAKE)
    return found


def burned_total(market: Market) -> int:
    return int(market.contract.functions.burned().call())


def test_a_copied_commitment_cannot_be_revealed_by_the_copier(
    market: Market, requester: str
) -> None:
    honest, copier, third = staked(market, 3)
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    apply_and_award(market, job_id, [honest, copier, third], ETHER // 2)
    mine = bound_commitment(market, job_id, honest, A, SALT[0])
    receipt = market.send(honest, "commitResult", job_id, mine)
    [seen] = market_events(market, receipt, "ResultCommitted")
    market.send(copier, "commitResult", job_id, seen["commitment"])  # copied from the event
    market.send(third, "commitResult", job_id, bound_commitment(market, job_id, third, A, SALT[2]))
    market.send(honest, "revealResult", job_id, A, SALT[0], RESULT_CID)
    # The copier now knows the honest digest and salt, but the commitment names the honest
    # worker: it opens for nobody else.
    market.assert_reverts(
        "JobMarketCommitmentMismatch", (job_id, copier),
        copier, "revealResult", job_id, A, SALT[0], RESULT_CID,
    )  # fmt: skip


def test_a_commitment_made_for_another_job_or_market_does_not_open(
    market: Market, requester: str
) -> None:
    w1, w2, w3 = staked(market, 3)
    job_id = post_terms(market, requester, replicated(3, 2))
    apply_and_award(market, job_id, [w1, w2, w3])
    wrong_job = bound_commitment(market, job_id + 1, w1, A, SALT[0])
    market.send(w1, "commitResult", job_id, wrong_job)
    for w, salt in ((w2, SALT[1]), (w3, SALT[2])):
        market.send(w, "commitResult", job_id, bound_commitment(market, job_id, w, A, salt))
    market.assert_reverts(
        "JobMarketCommitmentMismatch", (job_id, w1),
        w1, "revealResult", job_id, A, SALT[0], RESULT_CID,
    )  # fmt: skip


def test_an_on_time_committer_is_not_slashed_before_its_reveal_window_ran(
    market: Market, requester: str
) -> None:
    committer, no_show_1, no_show_2 = staked(market, 3)
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    apply_and_award(market, job_id, [committer, no_show_1, no_show_2])
    market.send(
        committer, "commitResult", job_id, bound_commitment(market, job_id, committer, A, SALT[0])
    )
    commit_deadline = market.job(job_id)["deadline"]
    market.at(commit_deadline + 1)  # quorum out of reach; reveals have not even opened
    market.send(requester, "finalize", job_id)
    assert market.job(job_id)["state"] == State.NO_QUORUM
    statuses = [s["status"] for s in slots_of(market, job_id)]
    assert statuses == [Slot.RELEASED, Slot.SLASHED, Slot.SLASHED]
    assert worker_of(market, committer) == {**worker_of(market, committer), "stake": STAKE}
    assert worker_of(market, committer)["locked"] == 0


def test_the_requester_is_never_credited_a_replicas_slash(
    market: Market, requester: str, stranger: str
) -> None:
    # A requester running a Sybil majority would profit from the honest minority's stake if
    # slashes were credited to it; they are split among the quorum instead.
    s1, s2, honest = staked(market, 3)
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    apply_and_award(market, job_id, [s1, s2, honest], ETHER // 4)
    for w, digest, salt in ((s1, B, SALT[0]), (s2, B, SALT[1]), (honest, A, SALT[2])):
        market.send(w, "commitResult", job_id, bound_commitment(market, job_id, w, digest, salt))
    for w, digest, salt in ((s1, B, SALT[0]), (s2, B, SALT[1]), (honest, A, SALT[2])):
        market.send(w, "revealResult", job_id, digest, salt, RESULT_CID)
    market.send(stranger, "finalize", job_id)
    paid = 2 * (ETHER // 4)
    assert market.withdrawable(requester) == 3 * ETHER - paid  # the refund, no stake
    assert market.withdrawable(stranger) == 0
    # The slash is split between the quorum's replicas (in ETH, beside their price).
    assert market.withdrawable(s1) == ETHER // 4 + STAKE // 2
    assert market.withdrawable(s2) == ETHER // 4 + STAKE // 2
    assert worker_of(market, honest)["stake"] == 0


def test_a_slash_with_nobody_honest_to_pay_is_burned_not_credited(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    register(market, worker, stake=STAKE)
    job_id = post_terms(market, requester, Terms(min_stake=STAKE))
    market.send(worker, "claim", job_id, ETHER)
    market.at(market.job(job_id)["deadline"] + 1)
    before = burned_total(market)
    receipt = market.send(requester, "expire", job_id)  # the requester calls it: no gain
    assert market.withdrawable(requester) == ETHER  # its escrow back, nothing more
    assert market.withdrawable(stranger) == 0
    assert burned_total(market) == before + STAKE
    burns = [p for p in market_events(market, receipt, "Payment") if p["reason"] == 4]
    assert [(p["payee"], p["amount"]) for p in burns] == [("0x" + "00" * 20, STAKE)]
    # The books still balance: what the market holds = credits + stakes + burned.
    held = market.balance(market.address)
    assert held == market.withdrawable(requester) + worker_of(market, worker)["stake"] + (
        burned_total(market)
    )


COUNTERS_SLOT = 2  # nextJobId | nextAccountId << 128 (as in test_job_market.py)


def test_replicas_without_an_account_id_are_paid_after_ids_ran_out(
    market: Market, requester: str, stranger: str
) -> None:
    # Before: paying a winner that had no account id took a fresh one; once ids ran out that
    # reverted, so the job could never be finalized and its escrow was frozen. Drawn replicas
    # are registered (which gives an id); the ids running out mid-job still freeze nothing.
    w1, w2, w3 = staked(market, 3)
    job_id = post_terms(market, requester, replicated(3, 2))
    apply_and_award(market, job_id, [w1, w2, w3], ETHER // 4)
    counters = int(market.w3.eth.get_storage_at(market.address, COUNTERS_SLOT).hex(), 16)
    full = (counters & (2**128 - 1)) | ((2**32) << 128)  # every id taken
    market.rpc("anvil_setStorageAt", market.address, hex(COUNTERS_SLOT), f"0x{full:064x}")
    for i, w in enumerate((w1, w2, w3)):
        market.send(w, "commitResult", job_id, bound_commitment(market, job_id, w, A, SALT[i]))
    for i, w in enumerate((w1, w2, w3)):
        market.send(w, "revealResult", job_id, A, SALT[i], RESULT_CID)
    market.send(stranger, "finalize", job_id)
    assert market.job(job_id)["state"] == State.SETTLED
    assert [market.withdrawable(w) for w in (w1, w2, w3)] == [ETHER // 4] * 3
    before = market.balance(w1)
    receipt = market.send(w1, "withdraw")
    assert market.balance(w1) == before + ETHER // 4 - market.gas_cost(receipt)
    assert market.withdrawable(w1) == 0
    market.assert_reverts("JobMarketNothingToWithdraw", (w1,), w1, "withdraw")


def test_a_zero_bid_is_refused_so_it_cannot_lock_an_auction(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    # Before: a bid of 0 was held and no later bid could be strictly lower, so a griefer
    # owned every stake-free auction it bid 0 on.
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION))
    market.assert_reverts("JobMarketInvalidAmount", (0,), worker, "bid", job_id, 0, [])
    market.send(worker, "bid", job_id, 2, [])
    market.send(stranger, "bid", job_id, 1, [])  # a real lower offer still beats it
    assert [(s["worker"], s["price"]) for s in slots_of(market, job_id)] == [(stranger, 1)]


def test_ties_keep_arrival_order(market: Market, requester: str) -> None:
    # Before: with several held bids a replacement took the evicted bid's index, so among equal
    # prices an earlier bid could be evicted. Auctions now hold one bid: an equal one never
    # replaces it, a lower one does.
    a, b, c = market.accounts[4:7]
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION))
    market.send(a, "bid", job_id, 5, [])
    market.assert_reverts("JobMarketBidTooHigh", (job_id, 5, 5), b, "bid", job_id, 5, [])
    receipt = market.send(c, "bid", job_id, 4, [])
    assert market_events(market, receipt, "BidOutbid") == [{"jobId": job_id, "worker": a}]
    assert [(s["worker"], s["price"]) for s in slots_of(market, job_id)] == [(c, 4)]
    market.assert_reverts("JobMarketAlreadyAssigned", (job_id, c), c, "bid", job_id, 3, [])


def test_on_a_public_market_an_unstaked_squatter_cannot_claim_a_paid_job(
    public_market: Market, requester: str, stranger: str
) -> None:
    # Before: anyone claimed any fast-path job with no stake and sat on the escrow until the
    # run deadline at no cost. Above the stake-free limit (0 on a public chain) a claim locks
    # a stake of its price.
    market = public_market
    job_id = market.post(requester)
    market.assert_reverts("RegistryNotRegistered", (stranger,), stranger, "claim", job_id, 1)
    register(market, stranger, stake=ETHER // 2)
    market.assert_reverts(
        "RegistryInsufficientStake", (stranger, ETHER // 2, ETHER),
        stranger, "claim", job_id, ETHER,
    )  # fmt: skip
    assert market.contract.functions.stakeRequired(0, ETHER).call() == ETHER


def test_a_staked_squatter_loses_its_stake_and_the_requester_gets_its_escrow_back(
    public_market: Market, requester: str, worker: str, stranger: str
) -> None:
    market = public_market
    register(market, worker, stake=ETHER)
    job_id = market.post(requester)
    market.send(worker, "claim", job_id, ETHER // 2)  # and never runs it
    assert worker_of(market, worker)["locked"] == ETHER // 2
    market.at(market.job(job_id)["deadline"] + 1)  # the run window set at posting
    market.send(requester, "expire", job_id)
    assert market.withdrawable(requester) == ETHER  # all of its escrow, nothing more
    assert worker_of(market, worker)["stake"] == ETHER // 2  # the squat cost its price
    assert burned_total(market) == ETHER // 2


def test_an_honest_staked_worker_gets_its_stake_back_with_its_pay(
    public_market: Market, requester: str, worker: str
) -> None:
    market = public_market
    register(market, worker, stake=ETHER)
    job_id = market.post(requester)
    market.send(worker, "claim", job_id, ETHER // 2)
    market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    market.send(requester, "accept", job_id)
    assert worker_of(market, worker) == {**worker_of(market, worker), "stake": ETHER, "locked": 0}
    assert market.withdrawable(worker) == ETHER // 2


def test_jobs_at_or_below_the_stake_free_limit_need_no_stake(market: Market) -> None:
    # The default test market has no limit; a devnet's is 0.01 ether (DEVNET_STAKE_FREE_LIMIT).
    assert market.contract.functions.stakeRequired(7, ETHER).call() == 7  # only the min stake


def test_nobody_can_keep_an_auction_winners_stake_locked_by_not_awarding(
    market: Market, requester: str, stranger: str
) -> None:
    # Before: once enough bids were in, expire was refused (JobMarketAwardDue) for ever, so a
    # winner whose bid nobody awarded kept its stake locked with no way out.
    (winner,) = staked(market, 1)
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION, min_stake=STAKE))
    market.send(winner, "bid", job_id, ETHER // 2, [])
    award_end = market.job(job_id)["deadline"] + Terms().run_window
    market.at(award_end)
    market.assert_reverts("JobMarketAwardDue", (job_id, award_end), stranger, "expire", job_id)
    market.at(award_end + 1)
    market.send(stranger, "expire", job_id)
    assert market.job(job_id)["state"] == State.EXPIRED
    assert worker_of(market, winner)["locked"] == 0  # released, not slashed
    assert worker_of(market, winner)["stake"] == STAKE
    assert market.withdrawable(requester) == ETHER
