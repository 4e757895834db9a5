"""Batch calls (issue 15): postJobs, claimJobs, submitResults and finalizeJobs act on several
jobs in one transaction,
and an item no longer valid is skipped with BatchItemSkipped instead of reverting the batch (a
lost claim race must not cost a reverted transaction). The attack-shaped test first shows what
two workers racing with ``claim`` cost the loser, then the same race through ``claimJobs``."""

from __future__ import annotations

from typing import Any

from market_helpers import (
    CHALLENGE_WINDOW,
    CID,
    ETHER,
    MAX_WINDOW,
    RESULT_CID,
    RESULT_DIGEST,
    Market,
    State,
)


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


def test_post_jobs_posts_a_sweep_with_consecutive_ids_in_one_transaction(
    market: Market, requester: str
) -> None:
    before = market.contract.functions.jobCount().call()
    escrows = [ETHER, 2 * ETHER, 3]
    cids = [f"{CID}{i}" for i in range(3)]
    receipt = market.send(requester, "postJobs", cids, escrows, 600, 1800, value=sum(escrows))
    ids = [before + 1 + i for i in range(3)]
    posted = [args for name, args in market.events(receipt) if name == "JobPosted"]
    assert [(p["jobId"], p["specCid"], p["maxPrice"]) for p in posted] == list(
        zip(ids, cids, escrows, strict=True)
    )
    assert [market.job(j)["escrow"] for j in ids] == escrows
    assert {market.job(j)["state"] for j in ids} == {State.OPEN}
    assert market.contract.functions.jobCount().call() == before + 3
    assert market.balance(market.address) == sum(escrows)


def test_post_jobs_refuses_a_wrong_value_and_bad_items_whole(
    market: Market, requester: str
) -> None:
    def refused(error: str, args: tuple[Any, ...], *call: Any, value: int) -> None:
        market.assert_reverts(error, args, requester, "postJobs", *call, value=value)

    refused("JobMarketInvalidEscrow", (ETHER,), [CID, CID], [ETHER, ETHER], 600, 1800, value=ETHER)
    refused("JobMarketInvalidEscrow", (0,), [CID, CID], [ETHER, 0], 600, 1800, value=ETHER)
    refused("JobMarketEmptyCid", (), [CID, ""], [1, 1], 600, 1800, value=2)
    refused("JobMarketBatchMismatch", (2, 1), [CID, CID], [2], 600, 1800, value=2)
    refused("JobMarketBatchMismatch", (0, 0), [], [], 600, 1800, value=0)
    refused("JobMarketInvalidWindow", (0, MAX_WINDOW), [CID], [1], 0, 1800, value=1)
    assert market.contract.functions.jobCount().call() == 0


def test_submit_results_submits_the_callers_jobs_and_skips_what_is_not_its_own(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    mine = [market.claimed(requester, worker) for _ in range(2)]
    others = market.claimed(requester, stranger)  # a worker cannot submit another's job
    late = market.claimed(requester, worker, run_window=60)
    done = market.submitted(requester, worker)
    market.advance(61)  # past `late`'s run deadline only
    ids = [*mine, others, late, done]
    receipt = market.send(worker, "submitResults", ids, [RESULT_CID] * 5, [RESULT_DIGEST] * 5, [])
    submitted = [
        args["jobId"] for name, args in market.events(receipt) if name == "ResultSubmitted"
    ]
    skipped = [
        (args["jobId"], args["state"])
        for name, args in market.events(receipt)
        if name == "BatchItemSkipped"
    ]
    assert submitted == mine
    assert skipped == [(others, State.CLAIMED), (late, State.CLAIMED), (done, State.SUBMITTED)]
    assert market.job(others)["state"] == State.CLAIMED  # untouched
    fresh = market.claimed(requester, worker)
    market.assert_reverts(
        "JobMarketEmptyCid", (), worker, "submitResults", [fresh], [""], [RESULT_DIGEST], []
    )
    market.assert_reverts(
        "JobMarketBatchMismatch", (2, 1), worker, "submitResults", mine, [RESULT_CID],
        [RESULT_DIGEST] * 2, [],
    )  # fmt: skip


def test_a_workers_next_submission_settles_its_matured_results(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    matured = market.submitted(requester, worker)
    someone_elses = market.submitted(requester, stranger)
    market.advance(CHALLENGE_WINDOW + 1)
    fresh = market.claimed(requester, worker)
    young = market.submitted(requester, worker)
    receipt = market.send(
        worker, "submitResults", [fresh], [RESULT_CID], [RESULT_DIGEST],
        [matured, someone_elses, young],
    )  # fmt: skip
    settled = [args["jobId"] for name, args in market.events(receipt) if name == "JobSettled"]
    # Anyone may settle a matured result (finalize's rule): the stranger's is paid to it.
    assert settled == [matured, someone_elses]
    assert market.job(young)["state"] == State.SUBMITTED  # still in its challenge window
    assert market.job(fresh)["state"] == State.SUBMITTED
    assert market.withdrawable(stranger) == ETHER // 2
