"""JobMarket on a real anvil: every transition, every refusal, events and money to the wei."""

from __future__ import annotations

import pytest
from market_helpers import (
    CHALLENGE_WINDOW,
    CID,
    ETHER,
    MAX_WINDOW,
    RESULT_CID,
    RESULT_DIGEST,
    Direction,
    Market,
    Reason,
    State,
    deploy,
)

ZERO = "0x0000000000000000000000000000000000000000"


# ---------------------------------------------------------------- deployment and views


def test_views_report_challenge_window_and_no_jobs_after_deploy(market: Market) -> None:
    assert market.contract.functions.challengeWindow().call() == CHALLENGE_WINDOW
    assert market.contract.functions.jobCount().call() == 0
    assert market.job(1)["state"] is State.NONE


@pytest.mark.parametrize("window", [0, MAX_WINDOW + 1])
def test_constructor_reverts_on_invalid_challenge_window(market: Market, window: int) -> None:
    receipt = deploy(market.w3, market.artifact, market.accounts[0], window)
    assert receipt["status"] == 0
    assert market.revert_error(receipt) == ("JobMarketInvalidWindow", (window, MAX_WINDOW))


# ---------------------------------------------------------------- postJob


def test_post_job_escrows_value_and_stores_open_job(market: Market, requester: str) -> None:
    start = market.now() + 5
    market.at(start)
    before = market.balance(requester)
    receipt = market.send(requester, "postJob", CID, 600, 1800, value=3 * ETHER)

    assert market.events(receipt) == [
        ("JobPosted", {"jobId": 1, "requester": requester, "specCid": CID,
                       "maxPrice": 3 * ETHER, "claimDeadline": start + 600, "runWindow": 1800}),
        ("Payment", {"jobId": 1, "payee": requester, "amount": 3 * ETHER,
                     "reason": Reason.ESCROW, "direction": Direction.IN}),
    ]  # fmt: skip
    assert market.job(1) == {
        "requester": requester, "state": State.OPEN, "deadline": start + 600,
        "runWindow": 1800, "worker": ZERO, "price": 0, "escrow": 3 * ETHER,
    }  # fmt: skip
    assert market.balance(market.address) == 3 * ETHER
    assert market.balance(requester) == before - 3 * ETHER - market.gas_cost(receipt)
    assert market.withdrawable(requester) == 0


COUNTERS_SLOT = 2  # after WorkerRegistry's two mappings: nextJobId | nextAccountId << 128


def test_post_job_refuses_a_new_address_once_account_ids_run_out(
    market: Market, requester: str, stranger: str
) -> None:
    job_id = market.post(requester)
    counters = int(market.w3.eth.get_storage_at(market.address, COUNTERS_SLOT).hex(), 16)
    assert counters == (job_id + 1) | (2 << 128)  # one account so far: the requester's
    full = (job_id + 1) | ((2**32) << 128)
    market.rpc("anvil_setStorageAt", market.address, hex(COUNTERS_SLOT), f"0x{full:064x}")
    market.assert_reverts(
        "JobMarketTooManyAccounts", (), stranger, "postJob", CID, 600, 1800, value=ETHER
    )
    assert market.post(requester) == job_id + 1  # known addresses carry on


def test_post_job_ids_start_at_one_and_count_up(market: Market, requester: str) -> None:
    assert [market.post(requester) for _ in range(3)] == [1, 2, 3]
    assert market.contract.functions.jobCount().call() == 3


def test_post_job_reverts_without_escrow(market: Market, requester: str) -> None:
    market.assert_reverts(
        "JobMarketInvalidEscrow", (0,), requester, "postJob", CID, 600, 600, value=0
    )


def test_post_job_accepts_uint96_max_and_reverts_above(market: Market, requester: str) -> None:
    top = 2**96 - 1
    market.rpc("anvil_setBalance", requester, hex(4 * 2**96))
    market.assert_reverts(
        "JobMarketInvalidEscrow", (top + 1,), requester, "postJob", CID, 600, 600, value=top + 1
    )
    job_id = market.post(requester, escrow=top)
    assert market.job(job_id)["escrow"] == top


def test_post_job_reverts_on_empty_spec_cid(market: Market, requester: str) -> None:
    market.assert_reverts("JobMarketEmptyCid", (), requester, "postJob", "", 600, 600, value=1)


@pytest.mark.parametrize("window", [0, MAX_WINDOW + 1, 2**256 - 1])
@pytest.mark.parametrize("which", ["claim", "run"])
def test_post_job_reverts_on_zero_or_too_long_window(
    market: Market, requester: str, window: int, which: str
) -> None:
    windows = (window, 600) if which == "claim" else (600, window)
    market.assert_reverts(
        "JobMarketInvalidWindow",
        (window, MAX_WINDOW),
        requester,
        "postJob",
        CID,
        *windows,
        value=ETHER,
    )


def test_post_job_accepts_the_longest_windows(market: Market, requester: str) -> None:
    job_id = market.post(requester, claim_window=MAX_WINDOW, run_window=MAX_WINDOW)
    assert market.job(job_id)["runWindow"] == MAX_WINDOW


# ---------------------------------------------------------------- claim


def test_claim_assigns_worker_price_and_run_deadline_and_refunds_the_rest(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.post(requester, escrow=ETHER, run_window=1800)
    claimed_at = market.now() + 7
    market.at(claimed_at)
    receipt = market.send(worker, "claim", job_id, ETHER // 4)

    rest = ETHER - ETHER // 4
    assert market.events(receipt) == [
        ("JobClaimed", {"jobId": job_id, "worker": worker, "price": ETHER // 4,
                        "runDeadline": claimed_at + 1800}),
        ("Payment", {"jobId": job_id, "payee": requester, "amount": rest,
                     "reason": Reason.REFUND, "direction": Direction.CREDIT}),
    ]  # fmt: skip
    job = market.job(job_id)
    assert (job["state"], job["worker"], job["price"], job["deadline"]) == (
        State.CLAIMED, worker, ETHER // 4, claimed_at + 1800,
    )  # fmt: skip
    assert job["escrow"] == ETHER // 4  # the price stays in escrow until settlement
    assert market.withdrawable(requester) == rest
    assert market.balance(market.address) == ETHER


def test_claim_succeeds_at_exactly_the_claim_deadline(
    market: Market, requester: str, worker: str
) -> None:
    start = market.now() + 1
    job_id = market.post(requester, claim_window=600, at=start)
    market.at(start + 600)
    market.send(worker, "claim", job_id, 1)
    assert market.job(job_id)["state"] is State.CLAIMED


def test_claim_reverts_after_claim_deadline(market: Market, requester: str, worker: str) -> None:
    start = market.now() + 1
    job_id = market.post(requester, claim_window=600, at=start)
    market.at(start + 601)
    market.assert_reverts(
        "JobMarketDeadlinePassed", (job_id, start + 600), worker, "claim", job_id, 1
    )


def test_claim_reverts_for_unknown_job(market: Market, requester: str, worker: str) -> None:
    market.post(requester)
    for job_id in (0, 2, 2**256 - 1):
        market.assert_reverts("JobMarketUnknownJob", (job_id,), worker, "claim", job_id, 1)


def test_second_claim_reverts_with_wrong_state(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job_id = market.claimed(requester, worker)
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.CLAIMED), stranger, "claim", job_id, 1
    )
    assert market.job(job_id)["worker"] == worker


def test_claim_reverts_when_price_above_max_and_accepts_max(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.post(requester, escrow=ETHER)
    market.assert_reverts(
        "JobMarketPriceAboveMax", (job_id, ETHER + 1, ETHER), worker, "claim", job_id, ETHER + 1
    )
    receipt = market.send(worker, "claim", job_id, ETHER)
    assert [name for name, _ in market.events(receipt)] == ["JobClaimed"]  # nothing to refund
    assert market.job(job_id)["price"] == market.job(job_id)["escrow"] == ETHER
    assert market.withdrawable(requester) == 0


# ---------------------------------------------------------------- submitResult


def test_submit_result_starts_challenge_window(market: Market, requester: str, worker: str) -> None:
    job_id = market.claimed(requester, worker)
    submitted_at = market.now() + 11
    market.at(submitted_at)
    receipt = market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)

    end = submitted_at + CHALLENGE_WINDOW
    assert market.events(receipt) == [
        ("ResultSubmitted", {"jobId": job_id, "worker": worker, "resultCid": RESULT_CID,
                             "digest": RESULT_DIGEST, "challengeEnd": end}),
    ]  # fmt: skip
    job = market.job(job_id)
    # The run window's bits now hold the digest's tag: getJob reports it as spent.
    assert (job["state"], job["deadline"], job["runWindow"]) == (State.SUBMITTED, end, 0)


def test_submit_result_reverts_for_anyone_but_the_worker(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job_id = market.claimed(requester, worker)
    for caller in (stranger, requester):
        market.assert_reverts(
            "JobMarketNotWorker",
            (job_id, caller),
            caller,
            "submitResult",
            job_id,
            RESULT_CID,
            RESULT_DIGEST,
        )


def test_submit_result_reverts_on_unclaimed_job(
    market: Market, requester: str, stranger: str
) -> None:
    job_id = market.post(requester)
    market.assert_reverts(
        "JobMarketNotWorker",
        (job_id, stranger),
        stranger,
        "submitResult",
        job_id,
        RESULT_CID,
        RESULT_DIGEST,
    )
    market.assert_reverts(
        "JobMarketUnknownJob",
        (job_id + 1,),
        stranger,
        "submitResult",
        job_id + 1,
        RESULT_CID,
        RESULT_DIGEST,
    )


def test_submit_result_twice_reverts_with_wrong_state(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.submitted(requester, worker)
    market.assert_reverts(
        "JobMarketWrongState",
        (job_id, State.SUBMITTED),
        worker,
        "submitResult",
        job_id,
        CID,
        RESULT_DIGEST,
    )


def test_submit_result_reverts_on_empty_cid(market: Market, requester: str, worker: str) -> None:
    job_id = market.claimed(requester, worker)
    market.assert_reverts(
        "JobMarketEmptyCid", (), worker, "submitResult", job_id, "", RESULT_DIGEST
    )


def test_submit_result_run_deadline_is_inclusive(
    market: Market, requester: str, worker: str
) -> None:
    first = market.post(requester, run_window=900)
    second = market.post(requester, run_window=900)
    claimed_at = market.now() + 1
    market.at(claimed_at)
    market.send(worker, "claim", first, 1)
    market.at(claimed_at + 1)
    market.send(worker, "claim", second, 1)

    market.at(claimed_at + 900)
    market.send(worker, "submitResult", first, RESULT_CID, RESULT_DIGEST)
    market.at(claimed_at + 1 + 901)
    market.assert_reverts(
        "JobMarketDeadlinePassed",
        (second, claimed_at + 1 + 900),
        worker,
        "submitResult",
        second,
        RESULT_CID,
        RESULT_DIGEST,
    )


# ---------------------------------------------------------------- accept and finalize


def test_accept_pays_worker_its_price(market: Market, requester: str, worker: str) -> None:
    job_id = market.submitted(requester, worker, escrow=ETHER, price=ETHER // 4)
    receipt = market.send(requester, "accept", job_id)

    assert market.events(receipt) == [
        ("Payment", {"jobId": job_id, "payee": worker, "amount": ETHER // 4,
                     "reason": Reason.WORKER_PAYMENT, "direction": Direction.CREDIT}),
        ("JobSettled", {"jobId": job_id, "worker": worker, "payment": ETHER // 4}),
    ]  # fmt: skip
    job = market.job(job_id)
    assert (job["state"], job["price"], job["escrow"]) == (State.SETTLED, ETHER // 4, 0)
    assert market.withdrawable(worker) == ETHER // 4
    assert market.withdrawable(requester) == ETHER - ETHER // 4  # refunded at the claim
    assert market.balance(market.address) == ETHER  # credits, not yet sent


def test_accept_at_full_price_credits_no_refund(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.submitted(requester, worker, escrow=ETHER, price=ETHER)
    receipt = market.send(requester, "accept", job_id)
    assert [name for name, _ in market.events(receipt)] == ["Payment", "JobSettled"]
    assert (market.withdrawable(worker), market.withdrawable(requester)) == (ETHER, 0)


def test_accept_reverts_for_anyone_but_the_requester(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.submitted(requester, worker)
    market.assert_reverts("JobMarketNotRequester", (job_id, worker), worker, "accept", job_id)


def test_accept_reverts_before_a_result_and_after_settlement(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.claimed(requester, worker)
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.CLAIMED), requester, "accept", job_id
    )
    market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    market.send(requester, "accept", job_id)
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.SETTLED), requester, "accept", job_id
    )
    assert market.withdrawable(worker) == ETHER // 2  # paid once


def test_accept_still_allowed_after_challenge_window(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.submitted(requester, worker)
    market.advance(CHALLENGE_WINDOW + 100)
    market.send(requester, "accept", job_id)
    assert market.job(job_id)["state"] is State.SETTLED


def test_finalize_by_anyone_only_after_challenge_window(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job_id = market.claimed(requester, worker, escrow=ETHER, price=ETHER // 4)
    submitted_at = market.now() + 1
    market.at(submitted_at)
    market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    end = submitted_at + CHALLENGE_WINDOW

    market.at(end)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, end), stranger, "finalize", job_id
    )
    market.at(end + 1)
    receipt = market.send(stranger, "finalize", job_id)
    assert market.events(receipt)[-1] == (
        "JobSettled",
        {"jobId": job_id, "worker": worker, "payment": ETHER // 4},
    )
    assert market.withdrawable(stranger) == 0
    assert (market.withdrawable(worker), market.withdrawable(requester)) == (
        ETHER // 4, ETHER * 3 // 4,
    )  # fmt: skip


def test_finalize_reverts_unless_submitted(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job_id = market.post(requester)
    market.assert_reverts("JobMarketWrongState", (job_id, State.OPEN), stranger, "finalize", job_id)
    market.assert_reverts("JobMarketUnknownJob", (9,), stranger, "finalize", 9)


# ---------------------------------------------------------------- cancel


def test_cancel_credits_escrow_back_even_after_claim_deadline(
    market: Market, requester: str
) -> None:
    job_id = market.post(requester, escrow=2 * ETHER, claim_window=60)
    market.advance(3600)
    receipt = market.send(requester, "cancel", job_id)
    assert market.events(receipt) == [
        ("Payment", {"jobId": job_id, "payee": requester, "amount": 2 * ETHER,
                     "reason": Reason.REFUND, "direction": Direction.CREDIT}),
        ("JobCancelled", {"jobId": job_id, "refund": 2 * ETHER}),
    ]  # fmt: skip
    assert market.job(job_id)["state"] is State.CANCELLED
    assert market.withdrawable(requester) == 2 * ETHER


def test_cancel_reverts_for_anyone_but_the_requester(
    market: Market, requester: str, stranger: str
) -> None:
    job_id = market.post(requester)
    market.assert_reverts("JobMarketNotRequester", (job_id, stranger), stranger, "cancel", job_id)


def test_cancel_reverts_once_claimed(market: Market, requester: str, worker: str) -> None:
    job_id = market.claimed(requester, worker)
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.CLAIMED), requester, "cancel", job_id
    )
    assert market.withdrawable(requester) == ETHER // 2  # only the claim's refund
    assert market.job(job_id)["escrow"] == ETHER // 2


# ---------------------------------------------------------------- expire


def test_expire_open_job_after_claim_deadline_refunds_requester(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    start = market.now() + 1
    job_id = market.post(requester, escrow=ETHER, claim_window=600, at=start)
    market.at(start + 600)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, start + 600), stranger, "expire", job_id
    )
    market.at(start + 601)
    receipt = market.send(stranger, "expire", job_id)
    assert market.events(receipt) == [
        ("Payment", {"jobId": job_id, "payee": requester, "amount": ETHER,
                     "reason": Reason.REFUND, "direction": Direction.CREDIT}),
        ("JobExpired", {"jobId": job_id, "fromState": State.OPEN, "refund": ETHER}),
    ]  # fmt: skip
    assert market.job(job_id)["state"] is State.EXPIRED
    assert market.withdrawable(requester) == ETHER
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.EXPIRED), worker, "claim", job_id, 1
    )


def test_expire_claimed_job_after_run_deadline_refunds_requester(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    job_id = market.post(requester, escrow=ETHER, run_window=900)
    claimed_at = market.now() + 1
    market.at(claimed_at)
    market.send(worker, "claim", job_id, ETHER // 2)
    market.at(claimed_at + 900)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, claimed_at + 900), stranger, "expire", job_id
    )
    market.at(claimed_at + 901)
    receipt = market.send(stranger, "expire", job_id)
    # Half came back at the claim; the price the worker did not earn comes back now.
    assert market.events(receipt)[-1] == (
        "JobExpired", {"jobId": job_id, "fromState": State.CLAIMED, "refund": ETHER // 2},
    )  # fmt: skip
    assert (market.withdrawable(requester), market.withdrawable(worker)) == (ETHER, 0)
    assert market.job(job_id)["escrow"] == 0
    market.assert_reverts(
        "JobMarketWrongState",
        (job_id, State.EXPIRED),
        worker,
        "submitResult",
        job_id,
        RESULT_CID,
        RESULT_DIGEST,
    )


@pytest.mark.parametrize("final", ["submitted", "settled", "cancelled"])
def test_expire_reverts_in_other_states(
    market: Market, requester: str, worker: str, stranger: str, final: str
) -> None:
    if final == "cancelled":
        job_id = market.post(requester)
        market.send(requester, "cancel", job_id)
        state = State.CANCELLED
    else:
        job_id = market.submitted(requester, worker)
        state = State.SUBMITTED
        if final == "settled":
            market.send(requester, "accept", job_id)
            state = State.SETTLED
    market.advance(MAX_WINDOW * 3)
    market.assert_reverts("JobMarketWrongState", (job_id, state), stranger, "expire", job_id)
    market.assert_reverts("JobMarketUnknownJob", (job_id + 1,), stranger, "expire", job_id + 1)


# ---------------------------------------------------------------- withdraw


def test_withdraw_sends_exactly_the_credit_and_zeroes_it(
    market: Market, requester: str, worker: str
) -> None:
    first = market.submitted(requester, worker, escrow=ETHER, price=ETHER // 3)
    second = market.submitted(requester, worker, escrow=ETHER, price=ETHER // 5)
    market.send(requester, "accept", first)
    market.send(requester, "accept", second)
    credit = ETHER // 3 + ETHER // 5
    assert market.withdrawable(worker) == credit

    worker_before, market_before = market.balance(worker), market.balance(market.address)
    receipt = market.send(worker, "withdraw")
    assert market.events(receipt) == [
        ("Payment", {"jobId": 0, "payee": worker, "amount": credit,
                     "reason": Reason.WITHDRAWAL, "direction": Direction.OUT}),
    ]  # fmt: skip
    assert market.balance(worker) == worker_before + credit - market.gas_cost(receipt)
    assert market.balance(market.address) == market_before - credit
    assert market.withdrawable(worker) == 0
    assert market.withdrawable(requester) == 2 * ETHER - credit
    market.assert_reverts("JobMarketNothingToWithdraw", (worker,), worker, "withdraw")


def test_credits_reach_each_party_when_roles_interleave_and_after_a_withdrawal(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    # Parties are stored as account ids: a requester who also works, and a worker credited
    # again after it withdrew, must each get exactly their own money.
    mine = market.submitted(requester, worker, escrow=ETHER, price=ETHER // 4)
    theirs = market.submitted(stranger, requester, escrow=ETHER, price=ETHER // 2)
    market.send(requester, "accept", mine)
    market.send(stranger, "accept", theirs)
    assert market.withdrawable(worker) == ETHER // 4
    assert market.withdrawable(requester) == ETHER * 3 // 4 + ETHER // 2
    assert market.withdrawable(stranger) == ETHER // 2
    market.send(worker, "withdraw")
    again = market.submitted(stranger, worker, escrow=ETHER, price=ETHER // 8)
    market.send(stranger, "accept", again)
    assert market.withdrawable(worker) == ETHER // 8
    assert market.withdrawable(stranger) == ETHER // 2 + ETHER * 7 // 8
    job = market.job(again)
    assert (job["requester"], job["worker"], job["price"]) == (stranger, worker, ETHER // 8)


def test_withdraw_reverts_with_nothing_to_withdraw(market: Market, stranger: str) -> None:
    market.assert_reverts("JobMarketNothingToWithdraw", (stranger,), stranger, "withdraw")


def test_withdraw_reverts_and_keeps_credit_when_recipient_rejects_ether(market: Market) -> None:
    # An account whose code reverts on every call: its own transactions work (impersonated),
    # but the market's ETH transfer to it fails.
    rejecting = "0x000000000000000000000000000000000000bEEF"
    market.rpc("anvil_setCode", rejecting, "0x5f5ffd")  # PUSH0 PUSH0 REVERT
    market.rpc("anvil_setBalance", rejecting, hex(10 * ETHER))
    market.rpc("anvil_impersonateAccount", rejecting)
    try:
        job_id = market.post(rejecting, escrow=ETHER)
        market.send(rejecting, "cancel", job_id)
        market.assert_reverts("JobMarketTransferFailed", (rejecting, ETHER), rejecting, "withdraw")
    finally:
        market.rpc("anvil_stopImpersonatingAccount", rejecting)
    assert market.withdrawable(rejecting) == ETHER
    assert market.balance(market.address) == ETHER


def test_full_lifecycle_conserves_every_wei(market: Market, requester: str, worker: str) -> None:
    requester_start, worker_start = market.balance(requester), market.balance(worker)
    receipts = [market.send(requester, "postJob", CID, 600, 600, value=ETHER)]
    receipts.append(market.send(worker, "claim", 1, ETHER * 2 // 3))
    receipts.append(market.send(worker, "submitResult", 1, RESULT_CID, RESULT_DIGEST))
    receipts.append(market.send(requester, "accept", 1))
    receipts.append(market.send(worker, "withdraw"))
    receipts.append(market.send(requester, "withdraw"))
    gas = {requester: 0, worker: 0}
    for receipt in receipts:
        gas[receipt["from"]] += market.gas_cost(receipt)

    assert market.balance(market.address) == 0
    assert market.balance(worker) == worker_start + ETHER * 2 // 3 - gas[worker]
    assert market.balance(requester) == requester_start - ETHER * 2 // 3 - gas[requester]
