"""Batch calls (issue 15): claimJobs and finalizeJobs act on several jobs in one transaction,
and an item no longer valid is skipped with BatchItemSkipped instead of reverting the batch (a
lost claim race must not cost a reverted transaction). The attack-shaped test first shows what
two workers racing with ``claim`` cost the loser, then the same race through ``claimJobs``."""

from __future__ import annotations

from typing import Any

from market_helpers import CHALLENGE_WINDOW, ETHER, RESULT_CID, RESULT_DIGEST, Market, State


def _same_block(m: Market, calls: list[tuple[str, str, tuple[Any, ...]]]) -> list[Any]:
    """Mine ``calls`` (sender, function, args) in one block, in order; their receipts."""
    m.rpc("evm_setAutomine", False)
    try:
        hashes = [
            getattr(m.contract.functions, fn)(*args).transact({"from": sender, "gas": 10**6})
            for sender, fn, args in calls
        ]
        m.rpc("evm_mine")
    finally:
        m.rpc("evm_setAutomine", True)
    return [m.w3.eth.get_transaction_receipt(h) for h in hashes]


def test_two_workers_racing_with_claim_cost_the_loser_a_reverted_transaction(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job = market.post(requester)
    first, second = _same_block(
        market, [(worker, "claim", (job, ETHER)), (stranger, "claim", (job, ETHER))]
    )
    assert (first["status"], second["status"]) == (1, 0)
    assert market.revert_error(second) == ("JobMarketWrongState", (job, State.CLAIMED))


def test_the_same_race_through_claim_jobs_is_skipped_not_reverted(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job = market.post(requester)
    first, second = _same_block(
        market,
        [(worker, "claimJobs", ([job], [ETHER])), (stranger, "claimJobs", ([job], [ETHER]))],
    )
    assert (first["status"], second["status"]) == (1, 1)
    assert [name for name, _ in market.events(first)] == ["JobClaimed"]
    assert market.events(second) == [
        ("BatchItemSkipped", {"jobId": job, "caller": stranger, "state": State.CLAIMED})
    ]
    assert market.job(job)["worker"] == worker
    assert market.balance(market.address) == ETHER  # the loser paid only gas, nothing moved


def test_claim_jobs_claims_every_open_job_and_skips_the_rest(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    taken = market.claimed(requester, stranger)
    cancelled = market.post(requester)
    market.send(requester, "cancel", cancelled)
    start = market.now() + 1
    late = market.post(requester, claim_window=60, at=start)
    market.at(start + 61)
    open_jobs = [market.post(requester) for _ in range(3)]
    never_posted = 10**6
    ids = [taken, open_jobs[0], cancelled, open_jobs[1], late, never_posted, open_jobs[2]]
    prices = [ETHER // 2] * len(ids)
    claimed = market.contract.functions.claimJobs(ids, prices).call({"from": worker})
    assert claimed == 3
    receipt = market.send(worker, "claimJobs", ids, prices)
    skipped = [(a["jobId"], a["state"]) for name, a in market.events(receipt)
               if name == "BatchItemSkipped"]  # fmt: skip
    assert skipped == [
        (taken, State.CLAIMED), (cancelled, State.CANCELLED), (late, State.OPEN),
        (never_posted, State.NONE),
    ]  # fmt: skip
    for job in open_jobs:
        j = market.job(job)
        assert (j["state"], j["worker"], j["price"]) == (State.CLAIMED, worker, ETHER // 2)
    # Each claimed job refunded its unspent escrow at once, as claim does.
    assert market.withdrawable(requester) >= 3 * (ETHER - ETHER // 2)


def test_a_price_above_the_max_reverts_the_whole_batch(
    market: Market, requester: str, worker: str
) -> None:
    good, dear = market.post(requester), market.post(requester, escrow=ETHER // 10)
    market.assert_reverts("JobMarketPriceAboveMax", (dear, ETHER, ETHER // 10), worker,
                          "claimJobs", [good, dear], [ETHER, ETHER])  # fmt: skip
    assert market.job(good)["state"] is State.OPEN  # nothing of the batch happened


def test_arrays_of_different_lengths_are_refused(
    market: Market, requester: str, worker: str
) -> None:
    job = market.post(requester)
    market.assert_reverts("JobMarketBatchMismatch", (1, 2), worker, "claimJobs", [job], [1, 2])
    assert market.job(job)["state"] is State.OPEN


def test_finalize_jobs_settles_the_matured_results_and_skips_the_rest(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    matured = [market.submitted(requester, worker) for _ in range(2)]
    accepted = market.submitted(requester, worker)
    market.send(requester, "accept", accepted)
    claimed_only = market.claimed(requester, worker)
    market.advance(CHALLENGE_WINDOW + 1)
    fresh = market.claimed(requester, worker)
    market.send(worker, "submitResult", fresh, RESULT_CID, RESULT_DIGEST)  # still challengeable
    ids = [matured[0], accepted, claimed_only, fresh, matured[1]]
    before = market.withdrawable(worker)
    receipt = market.send(stranger, "finalizeJobs", ids)  # anyone may, as with finalize
    events = market.events(receipt)
    skipped = [(a["jobId"], a["state"]) for name, a in events if name == "BatchItemSkipped"]
    assert skipped == [
        (accepted, State.SETTLED), (claimed_only, State.CLAIMED), (fresh, State.SUBMITTED),
    ]  # fmt: skip
    assert [a["jobId"] for name, a in events if name == "JobSettled"] == matured
    assert market.withdrawable(worker) == before + 2 * (ETHER // 2)
    assert market.job(fresh)["state"] is State.SUBMITTED  # its requester may still dispute
