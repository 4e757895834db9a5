"""Sweeps (issue 15): many jobs under one record, taken in lots, each rule tried by the party
it stops, on a real anvil. The calls reach the market's fallback (MarketCalls' code in the
market's storage); the market's ABI as hepx loads it holds them."""

from __future__ import annotations

from typing import Any

from dispute_helpers import GARBAGE, HONEST, court_of, dispute, verifiers, vote
from market_helpers import (
    CHALLENGE_WINDOW,
    CID,
    ETHER,
    GAS_LIMIT,
    RESULT_CID,
    Market,
    Reason,
    State,
)
from protocol_helpers import deploy_contract, market_events, register, worker_of
from test_batch_calls import _same_block
from web3 import Web3

from hepx.chain.enums import LotState

PRICE = ETHER // 100
N = 5


def _sweep(m: Market, requester: str, n: int = N, price: int = PRICE, claim: int = 600,
           run: int = 1800) -> int:  # fmt: skip
    receipt = m.send(requester, "postSweep", [f"{CID}{i}" for i in range(n)], price, claim, run,
                     value=n * price)  # fmt: skip
    [posted] = market_events(m, receipt, "SweepPosted")
    return int(posted["sweepId"])


def _lot(m: Market, worker: str, sweep_id: int, most: int = N) -> tuple[int, int]:
    receipt = m.send(worker, "claimLot", sweep_id, _next_job(m, sweep_id), most)
    [claimed] = market_events(m, receipt, "LotClaimed")
    return int(claimed["lotId"]), int(claimed["count"])


def _next_job(m: Market, sweep_id: int) -> int:
    return sweep_id + int(_sweep_of(m, sweep_id)["taken"])


def _digests(n: int, garbage_at: int | None = None) -> list[bytes]:
    return [GARBAGE if i == garbage_at else Web3.keccak(text=f"result {i}") for i in range(n)]


def _submit(m: Market, worker: str, lot_id: int, n: int, matured: list[int] | None = None,
            digests: list[bytes] | None = None) -> Any:  # fmt: skip
    return m.send(worker, "submitLot", lot_id, [RESULT_CID] * n, digests or _digests(n),
                  matured or [])  # fmt: skip


def _sweep_of(m: Market, sweep_id: int) -> dict[str, Any]:
    names = ["requester", "count", "taken", "price", "claimDeadline", "runWindow"]
    return dict(zip(names, m.contract.functions.getSweep(sweep_id).call(), strict=True))


def _lot_of(m: Market, lot_id: int) -> dict[str, Any]:
    names = ["worker", "requester", "count", "opened", "state", "deadline", "price", "digests"]
    return dict(zip(names, m.contract.functions.getLot(lot_id).call(), strict=True))


def _books_balance(m: Market) -> bool:
    """The market's balance is exactly what it owes: credits, escrows (jobs' and sweeps'
    unfinished lots and untaken jobs), stakes and the burned."""
    fns = m.contract.functions
    owed = sum(m.withdrawable(a) for a in m.accounts) + int(fns.burned().call())
    owed += sum(worker_of(m, a)["stake"] + worker_of(m, a)["unbonding"] for a in m.accounts)
    count = int(fns.jobCount().call())
    for job_id in range(1, count + 1):
        owed += m.job(job_id)["escrow"]
        sweep = _sweep_of(m, job_id)
        owed += (sweep["count"] - sweep["taken"]) * sweep["price"]
        lot = _lot_of(m, job_id)
        if lot["state"] in (LotState.CLAIMED, LotState.SUBMITTED):
            owed += (lot["count"] - lot["opened"]) * lot["price"]
    return owed == m.balance(m.address)


def test_a_sweep_reserves_consecutive_job_ids_and_carries_every_spec(
    market: Market, requester: str
) -> None:
    first = int(market.contract.functions.jobCount().call()) + 1
    receipt = market.send(requester, "postSweep", [CID, CID + "x"], PRICE, 600, 1800,
                          value=2 * PRICE)  # fmt: skip
    [posted] = market_events(market, receipt, "SweepPosted")
    assert (posted["sweepId"], posted["specCids"]) == (first, [CID, CID + "x"])
    assert market_events(market, receipt, "Payment")[0]["amount"] == 2 * PRICE
    assert market.post(requester) == first + 2  # the next ordinary job comes after the sweep
    assert _sweep_of(market, first)["count"] == 2
    assert market.job(first)["state"] == State.NONE  # a sweep's jobs have no storage


def test_malformed_sweeps_are_refused(market: Market, requester: str) -> None:
    m = market
    m.assert_reverts("JobMarketInvalidEscrow", (PRICE,), requester, "postSweep", [CID, CID],
                     PRICE, 600, 1800, value=PRICE)  # fmt: skip
    m.assert_reverts("JobMarketInvalidAmount", (0,), requester, "postSweep", [CID], 0, 600, 1800)
    m.assert_reverts("JobMarketEmptyCid", (), requester, "postSweep", [CID, ""], PRICE, 600,
                     1800, value=2 * PRICE)  # fmt: skip
    m.assert_reverts("SweepInvalidSize", (0, 10_000), requester, "postSweep", [], PRICE, 600, 1800)
    m.assert_reverts("JobMarketInvalidWindow", (0, 365 * 86400), requester, "postSweep", [CID],
                     PRICE, 0, 1800, value=PRICE)  # fmt: skip
    m.assert_reverts("SweepUnknown", (999,), requester, "claimLot", 999, 999, 1)
    sweep = _sweep(m, requester)
    m.assert_reverts("JobMarketInvalidAmount", (0,), requester, "claimLot", sweep, sweep, 0)


def test_workers_claiming_in_one_block_get_disjoint_lots_and_the_last_is_skipped_not_reverted(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    """Each claim names the job its lot starts at; one that finds the cursor moved (or no job
    left) takes nothing and reverts nothing."""
    m = market
    sweep = _sweep(m, requester)
    third, fourth = m.accounts[5], m.accounts[6]
    a, b, c, d = _same_block(
        m,
        [(worker, "claimLot", (sweep, sweep, 3)), (stranger, "claimLot", (sweep, sweep, 3)),
         (third, "claimLot", (sweep, sweep + 3, 3)), (fourth, "claimLot", (sweep, sweep + 5, 1))],
    )  # fmt: skip
    assert (a["status"], b["status"], c["status"], d["status"]) == (1, 1, 1, 1)
    [first] = market_events(m, a, "LotClaimed")
    [second] = market_events(m, c, "LotClaimed")
    assert (first["lotId"], first["count"], first["worker"]) == (sweep, 3, worker)
    assert (second["lotId"], second["count"], second["worker"]) == (sweep + 3, 2, third)
    # The stranger named job 0, taken by then: none of jobs 3.. (whose specs it did not read).
    assert market_events(m, b, "SweepClaimSkipped") == [{"sweepId": sweep, "worker": stranger}]
    assert market_events(m, d, "SweepClaimSkipped") == [{"sweepId": sweep, "worker": fourth}]
    assert _sweep_of(m, sweep)["taken"] == N


def test_a_claim_that_names_a_job_other_than_the_next_takes_nothing_and_locks_no_stake(
    public_market: Market,
) -> None:
    m = public_market
    requester, worker = m.accounts[1], m.accounts[2]
    register(m, worker, stake=10 * PRICE)
    sweep = _sweep(m, requester)
    for named in (sweep + 1, sweep + N, sweep - 1):
        receipt = m.send(worker, "claimLot", sweep, named, 2)
        assert [name for name, _ in m.events(receipt)] == ["SweepClaimSkipped"]
    assert _sweep_of(m, sweep)["taken"] == 0
    assert m.contract.functions.availableStake(worker).call() == 10 * PRICE
    assert _lot(m, worker, sweep, 2) == (sweep, 2)


def test_claims_after_the_claim_deadline_are_skipped_and_the_rest_refunded_by_anyone(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    m = market
    sweep = _sweep(m, requester)
    _lot(m, worker, sweep, 2)
    m.assert_reverts("JobMarketNotRequester", (sweep, stranger), stranger, "refundSweep", sweep)
    m.at(_sweep_of(m, sweep)["claimDeadline"] + 1)
    receipt = m.send(worker, "claimLot", sweep, sweep + 2, 3)
    assert [name for name, _ in m.events(receipt)] == ["SweepClaimSkipped"]
    credit = m.withdrawable(requester)
    receipt = m.send(stranger, "refundSweep", sweep)
    assert market_events(m, receipt, "SweepRefunded") == [
        {"sweepId": sweep, "jobs": 3, "refund": 3 * PRICE}
    ]
    assert m.withdrawable(requester) == credit + 3 * PRICE
    m.assert_reverts("SweepNothingToRefund", (sweep,), stranger, "refundSweep", sweep)
    assert _books_balance(m)


def test_a_requester_cancels_the_untaken_rest_and_no_worker_can_take_it_after(
    market: Market, requester: str, worker: str
) -> None:
    m = market
    sweep = _sweep(m, requester)
    lot, _ = _lot(m, worker, sweep, 1)
    m.send(requester, "refundSweep", sweep)
    receipt = m.send(worker, "claimLot", sweep, sweep + 1, 1)
    assert [name for name, _ in m.events(receipt)] == ["SweepClaimSkipped"]
    _submit(m, worker, lot, 1)  # the lot taken before the cancel is still the worker's
    assert _books_balance(m)


def test_only_the_lots_worker_submits_with_one_result_per_job_before_its_run_deadline(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    m = market
    lot, n = _lot(m, worker, _sweep(m, requester), 3)
    m.assert_reverts("LotNotWorker", (lot, stranger), stranger, "submitLot", lot,
                     [RESULT_CID] * n, _digests(n), [])  # fmt: skip
    m.assert_reverts("LotResultsMismatch", (lot, n, n - 1, n), worker, "submitLot", lot,
                     [RESULT_CID] * (n - 1), _digests(n), [])  # fmt: skip
    m.assert_reverts("JobMarketEmptyCid", (), worker, "submitLot", lot,
                     [RESULT_CID] * (n - 1) + [""], _digests(n), [])  # fmt: skip
    deadline = _lot_of(m, lot)["deadline"]
    m.at(deadline + 1)
    m.assert_reverts("LotDeadlinePassed", (lot, deadline), worker, "submitLot", lot,
                     [RESULT_CID] * n, _digests(n), [])  # fmt: skip


def test_a_lot_is_paid_once_after_its_challenge_window_and_a_next_submission_carries_it(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    m = market
    sweep = _sweep(m, requester, run=2 * CHALLENGE_WINDOW)  # a second lot runs past the first
    first, n = _lot(m, worker, sweep, 2)
    receipt = _submit(m, worker, first, n)
    [submitted] = market_events(m, receipt, "LotSubmitted")
    assert submitted["digests"] == _digests(n)
    m.assert_reverts("LotWrongState", (first, LotState.SUBMITTED), worker, "submitLot", first,
                     [RESULT_CID] * n, _digests(n), [])  # fmt: skip
    early = m.send(stranger, "settleLots", [first])
    assert market_events(m, early, "LotSettleSkipped") == [
        {"lotId": first, "caller": stranger, "state": LotState.SUBMITTED}
    ]
    second, n2 = _lot(m, worker, sweep, N)
    m.at(_lot_of(m, first)["deadline"] + 1)
    credit = m.withdrawable(worker)
    receipt = _submit(m, worker, second, n2, matured=[first])
    assert market_events(m, receipt, "LotSettled") == [
        {"lotId": first, "worker": worker, "jobs": n, "payment": n * PRICE}
    ]
    assert m.withdrawable(worker) == credit + n * PRICE
    again = m.send(stranger, "settleLots", [first])
    assert [name for name, _ in m.events(again)] == ["LotSettleSkipped"]
    assert m.withdrawable(worker) == credit + n * PRICE
    assert _books_balance(m)


def test_a_lot_not_submitted_by_its_run_deadline_burns_its_stake_and_refunds_the_requester(
    public_market: Market,
) -> None:
    m = public_market
    requester, worker, keeper = m.accounts[1], m.accounts[2], m.accounts[3]
    register(m, worker, stake=ETHER)
    lot, n = _lot(m, worker, _sweep(m, requester), 4)
    assert worker_of(m, worker)["locked"] == n * PRICE  # every job's stake, locked at once
    deadline = _lot_of(m, lot)["deadline"]
    m.assert_reverts("LotDeadlineNotReached", (lot, deadline), keeper, "expireLot", lot)
    m.at(deadline + 1)
    credit = m.withdrawable(requester)
    receipt = m.send(keeper, "expireLot", lot)
    assert market_events(m, receipt, "LotExpired") == [{"lotId": lot, "refund": n * PRICE}]
    assert m.withdrawable(requester) == credit + n * PRICE  # the escrow, not the stake
    assert m.withdrawable(keeper) == 0
    assert (worker_of(m, worker)["stake"], worker_of(m, worker)["locked"]) == (ETHER - n * PRICE, 0)
    m.assert_reverts("LotWrongState", (lot, LotState.EXPIRED), worker, "submitLot", lot,
                     [RESULT_CID] * n, _digests(n), [])  # fmt: skip
    assert _books_balance(m)


def test_a_worker_without_the_lots_stake_cannot_take_it(public_market: Market) -> None:
    m = public_market
    requester, worker = m.accounts[1], m.accounts[2]
    register(m, worker, stake=2 * PRICE)
    sweep = _sweep(m, requester)
    m.assert_reverts("RegistryInsufficientStake", (worker, 2 * PRICE, 3 * PRICE), worker,
                     "claimLot", sweep, sweep, 3)  # fmt: skip
    assert _lot(m, worker, sweep, 2) == (sweep, 2)


def test_a_job_is_opened_to_a_dispute_only_with_the_lots_own_digests_inside_its_window(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    m = market
    lot, n = _lot(m, worker, _sweep(m, requester), 3)
    digests = _digests(n)
    m.assert_reverts("LotWrongState", (lot, LotState.CLAIMED), stranger, "openLotJob", lot, lot,
                     digests)  # fmt: skip
    _submit(m, worker, lot, n, digests=digests)
    forged = [digests[0], HONEST, digests[2]]
    m.assert_reverts("LotDigestsMismatch", (lot,), stranger, "openLotJob", lot, lot + 1, forged)
    m.assert_reverts("LotJobNotInLot", (lot, lot + n), stranger, "openLotJob", lot, lot + n,
                     digests)  # fmt: skip
    receipt = m.send(stranger, "openLotJob", lot, lot + 1, digests)
    assert market_events(m, receipt, "LotJobOpened") == [
        {"lotId": lot, "jobId": lot + 1, "digest": digests[1]}
    ]
    job = m.job(lot + 1)
    assert (job["state"], job["worker"], job["price"]) == (State.SUBMITTED, worker, PRICE)
    assert job["deadline"] == _lot_of(m, lot)["deadline"]
    m.assert_reverts("JobMarketWrongState", (lot + 1, State.SUBMITTED), stranger, "openLotJob",
                     lot, lot + 1, digests)  # fmt: skip
    # Undisputed, the opened job is paid on its own and its lot pays the others.
    m.at(_lot_of(m, lot)["deadline"] + 1)
    m.assert_reverts("LotDeadlinePassed", (lot, _lot_of(m, lot)["deadline"]), stranger,
                     "openLotJob", lot, lot + 2, digests)  # fmt: skip
    credit = m.withdrawable(worker)
    m.send(stranger, "settleLots", [lot])
    m.send(stranger, "finalize", lot + 1)
    assert m.withdrawable(worker) == credit + n * PRICE
    assert _books_balance(m)


def test_a_made_up_result_in_a_lot_is_refuted_and_slashed_while_the_lot_pays_the_rest(
    public_market: Market,
) -> None:
    m = public_market
    requester, worker = m.accounts[1], m.accounts[2]
    panel = verifiers(m, 3, ETHER)
    register(m, worker, stake=ETHER)
    lot, n = _lot(m, worker, _sweep(m, requester), 3)
    digests = _digests(n, garbage_at=2)
    _submit(m, worker, lot, n, digests=digests)
    m.send(requester, "openLotJob", lot, lot + 2, digests)
    court = court_of(m)
    credit = m.withdrawable(requester)
    dispute(court, requester, lot + 2, 3, PRICE)
    for v in panel:
        court.send(v, "volunteer", lot + 2)
    receipt = vote(court, lot + 2, dict.fromkeys(panel, HONEST))
    assert market_events(m, receipt, "JobOverturned") == [{"jobId": lot + 2, "refund": PRICE}]
    assert m.withdrawable(requester) == credit + PRICE + 3 * PRICE  # its price and the bond
    m.send(requester, "settleLots", [lot])
    assert m.withdrawable(worker) == (n - 1) * PRICE
    assert (worker_of(m, worker)["stake"], worker_of(m, worker)["locked"]) == (ETHER - PRICE, 0)
    reasons = [p["reason"] for p in market_events(m, receipt, "Payment")]
    assert Reason.SLASH in reasons and Reason.WORKER_PAYMENT not in reasons
    assert _books_balance(m)


def test_sweep_calls_need_the_market_and_its_code_built_for_the_same_parameters(
    market: Market,
) -> None:
    m = market
    fns = m.contract.functions
    calls = m.w3.eth.contract(address=fns.marketCalls().call(), abi=m.artifact.abi).functions
    assert calls.builtFor().call() == [CHALLENGE_WINDOW, 2**256 - 1]
    # Plain ether sent to the market still bounces: the fallback finds no such call.
    tx = {"from": m.accounts[1], "to": m.address, "value": 1, "gas": 100_000}
    assert m.w3.eth.wait_for_transaction_receipt(m.w3.eth.send_transaction(tx))["status"] == 0
    # A market named code built for another challenge window refuses to be deployed.
    other = deploy_contract(m, "MarketCalls", m.accounts[0], CHALLENGE_WINDOW + 1, 0)
    factory = m.w3.eth.contract(abi=m.artifact.abi, bytecode=m.artifact.bytecode)
    deploy = factory.constructor(CHALLENGE_WINDOW, 0, other.address).build_transaction(
        {"from": m.accounts[0], "gas": 12 * GAS_LIMIT}
    )
    receipt = m.w3.eth.wait_for_transaction_receipt(m.w3.eth.send_transaction(deploy))
    assert receipt["status"] == 0
    assert m.revert_error(receipt) == (
        "JobMarketCallsMismatch",
        (other.address, CHALLENGE_WINDOW + 1, 0),
    )
