"""Disputes by re-execution (issue 13), each rule tried by the party it stops, on a real anvil.

Before the court, a worker that claimed a job and submitted a made-up result was paid in full
once the challenge window passed: nothing could refuse a result. These tests run on a market
deployed as on a public chain (every paid job staked): the worker locks its price, and so does
each verifier drawn.
"""

from __future__ import annotations

import math

from dispute_helpers import (
    GARBAGE,
    HONEST,
    court_events,
    court_of,
    deadlines,
    dispute,
    dispute_of,
    salt_of,
    seats_of,
    verifiers,
    vote,
    vote_commitment,
)
from eth_abi.abi import encode as abi_encode
from market_helpers import ETHER, RESULT_CID, Market, State
from protocol_helpers import (
    Terms,
    deploy_contract,
    market_events,
    post_terms,
    register,
    transact,
    worker_of,
)
from web3 import Web3

PRICE = ETHER // 2  # Market.claimed's price: the rest of the escrow is refunded at the claim
UPHELD, REFUTED, NO_MAJORITY = 1, 2, 3


def _burned(market: Market) -> int:
    return int(market.contract.functions.burned().call())


def _submitted(market: Market, digest: bytes) -> tuple[Market, str, str, int]:
    """A staked worker's submission on the public market; returns (court, requester, worker,
    job id)."""
    requester, worker = market.accounts[1], market.accounts[2]
    register(market, worker, stake=ETHER)
    job_id = market.claimed(requester, worker)
    market.send(worker, "submitResult", job_id, RESULT_CID, digest)
    return court_of(market), requester, worker, job_id


def _seated(market: Market, digest: bytes) -> tuple[Market, str, str, int, list[str]]:
    """A submission of ``digest``, disputed by its requester, with three staked verifiers
    seated; returns (court, requester, worker, job id, the verifiers)."""
    panel = verifiers(market, 3, ETHER)
    court, requester, worker, job = _submitted(market, digest)
    dispute(court, requester, job, 3, PRICE)
    for v in panel:
        court.send(v, "volunteer", job)
    return court, requester, worker, job, panel


def test_a_disputed_worker_cannot_settle_itself_through_a_finalize_batch(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, worker, job = _submitted(m, GARBAGE)
    dispute(court, requester, job, 3, PRICE)
    m.at(m.job(job)["deadline"] + 1)  # past the challenge end, as a batch of matured jobs
    credit_before = m.withdrawable(worker)
    receipt = m.send(worker, "finalizeJobs", [job])
    assert market_events(m, receipt, "BatchItemSkipped") == [
        {"jobId": job, "caller": worker, "state": State.DISPUTED}
    ]
    assert m.job(job)["state"] == State.DISPUTED
    assert m.withdrawable(worker) == credit_before


def test_a_made_up_result_is_refuted_the_worker_slashed_and_the_requester_refunded(
    public_market: Market,
) -> None:
    m = public_market
    panel = verifiers(m, 3, ETHER)
    court, requester, worker, job = _submitted(m, GARBAGE)
    credit_before = m.withdrawable(requester)
    m.at(m.now() + 10)
    receipt = dispute(court, requester, job, 3, PRICE)
    assert m.job(job)["state"] == State.DISPUTED
    assert market_events(m, receipt, "JobDisputed") == [{"jobId": job, "disputer": requester}]
    # The challenge window passes while the panel works: finalize no longer pays the worker.
    m.at(m.job(job)["deadline"] + 1)  # the challenge end; the draw runs a little longer
    m.assert_reverts("JobMarketWrongState", (job, State.DISPUTED), m.accounts[3], "finalize", job)
    for v in panel:
        court.send(v, "volunteer", job)
    burned_before = _burned(m)

    receipt = vote(court, job, dict.fromkeys(panel, HONEST))

    [resolved] = court_events(court, receipt, "DisputeResolved")
    assert (resolved["verdict"], resolved["majority"]) == (REFUTED, 3)
    assert market_events(m, receipt, "JobOverturned") == [{"jobId": job, "refund": PRICE}]
    assert m.job(job)["state"] == State.OVERTURNED
    assert m.withdrawable(requester) == credit_before + PRICE + 3 * PRICE  # price and bond back
    assert m.withdrawable(worker) == 0
    assert worker_of(m, worker)["stake"] == ETHER - PRICE
    assert worker_of(m, worker)["locked"] == 0
    share = PRICE // 2 // 3
    for v in panel:
        assert m.withdrawable(v) == share
        assert (worker_of(m, v)["stake"], worker_of(m, v)["locked"]) == (ETHER, 0)
    assert _burned(m) - burned_before == PRICE - 3 * share


def test_a_requester_disputing_honest_work_pays_the_verifiers_and_the_worker_is_paid(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, worker, job, panel = _seated(m, HONEST)
    credit_before = m.withdrawable(requester)  # the bond came from its balance

    receipt = vote(court, job, dict.fromkeys(panel, HONEST))

    assert court_events(court, receipt, "DisputeResolved")[0]["verdict"] == UPHELD
    assert m.job(job)["state"] == State.SETTLED
    assert m.withdrawable(worker) == PRICE
    assert worker_of(m, worker)["stake"] == ETHER and worker_of(m, worker)["locked"] == 0
    assert m.withdrawable(requester) == credit_before  # the bond is gone: it paid the panel
    for v in panel:
        assert m.withdrawable(v) == PRICE  # 3 x price of bond, split three ways


def test_a_verifier_voting_with_the_worker_against_the_majority_loses_its_stake_to_it(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, worker, job, (honest_a, honest_b, lazy) = _seated(m, GARBAGE)

    # The lazy verifier copies the worker's digest from ResultSubmitted instead of running.
    vote(court, job, {honest_a: HONEST, honest_b: HONEST, lazy: GARBAGE})

    assert m.job(job)["state"] == State.OVERTURNED
    assert worker_of(m, lazy)["stake"] == ETHER - PRICE
    pool = PRICE // 2 + PRICE  # the worker's half and the lazy verifier's stake
    assert m.withdrawable(honest_a) == m.withdrawable(honest_b) == pool // 2
    assert m.withdrawable(lazy) == 0


def test_too_few_verifiers_pay_the_worker_and_return_the_bond_at_the_draw_deadline(
    public_market: Market,
) -> None:
    m = public_market
    [lone] = verifiers(m, 1, ETHER)
    court, requester, worker, job = _submitted(m, GARBAGE)
    credit_before = m.withdrawable(requester)
    dispute(court, requester, job, 3, PRICE)
    court.send(lone, "volunteer", job)
    draw_deadline = deadlines(court, job)["drawDeadline"]
    court.at(draw_deadline)
    court.assert_reverts(
        "CourtDeadlineNotReached", (job, deadlines(court, job)["revealDeadline"]),
        m.accounts[3], "resolve", job,
    )  # fmt: skip
    court.at(draw_deadline + 1)  # no reveal window to wait for: nobody could form a majority

    receipt = court.send(m.accounts[3], "resolve", job)

    assert court_events(court, receipt, "DisputeResolved")[0]["verdict"] == NO_MAJORITY
    assert m.job(job)["state"] == State.SETTLED
    assert m.withdrawable(worker) == PRICE
    assert m.withdrawable(requester) == credit_before + 3 * PRICE
    assert (worker_of(m, lone)["locked"], m.withdrawable(lone)) == (0, 0)


def test_without_a_majority_revealers_are_released_and_silent_seats_slashed_and_burned(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, worker, job, (a, b, silent) = _seated(m, HONEST)
    burned_before = _burned(m)

    receipt = vote(court, job, {a: HONEST, b: Web3.keccak(text="a third answer")})

    assert court_events(court, receipt, "DisputeResolved")[0]["verdict"] == NO_MAJORITY
    assert m.withdrawable(worker) == PRICE
    assert worker_of(m, silent)["stake"] == ETHER - PRICE
    assert _burned(m) - burned_before == PRICE  # nobody to share it with
    for v in (a, b):
        assert (worker_of(m, v)["stake"], worker_of(m, v)["locked"]) == (ETHER, 0)
        assert m.withdrawable(v) == 0


def test_stake_bonded_once_the_dispute_is_known_cannot_volunteer(public_market: Market) -> None:
    m = public_market
    [old] = verifiers(m, 1, ETHER)
    court, requester, _, job = _submitted(m, GARBAGE)
    receipt = dispute(court, requester, job, 3, PRICE)
    opened = receipt["blockNumber"]
    # A Sybil registered after the dispute (it could pick an address the seed favours) ...
    newcomer = m.accounts[8]
    register(m, newcomer, stake=ETHER)
    since = worker_of(m, newcomer)["stakeSince"]
    court.assert_reverts(
        "CourtStakeTooRecent", (newcomer, since, opened), newcomer, "volunteer", job
    )
    # ... and an old worker topping its weight up after it, are both refused.
    m.send(old, "addStake", value=ETHER)
    since = worker_of(m, old)["stakeSince"]
    court.assert_reverts("CourtStakeTooRecent", (old, since, opened), old, "volunteer", job)


def test_the_parties_of_a_job_cannot_verify_it(public_market: Market) -> None:
    m = public_market
    outsider = m.accounts[3]
    register(m, m.accounts[1], stake=ETHER)  # the requester is a staked worker too
    register(m, outsider, stake=ETHER)
    m.at(m.now() + 1)
    court, requester, worker, job = _submitted(m, GARBAGE)
    dispute(court, outsider, job, 3, PRICE)  # anyone may dispute with a bond
    for party in (worker, requester, outsider):
        court.assert_reverts("CourtPartyCannotVerify", (job, party), party, "volunteer", job)


def test_the_panel_holds_the_smallest_keys_and_a_displaced_verifier_is_released(
    public_market: Market,
) -> None:
    m = public_market
    volunteers = verifiers(m, 5, ETHER)
    court, requester, _, job = _submitted(m, GARBAGE)
    dispute(court, requester, job, 3, PRICE)
    refused = []
    for v in volunteers:
        receipt = court.try_send(v, "volunteer", job)
        if receipt["status"] == 0:
            assert court.revert_error(receipt)[0] == "CourtNotDrawn"
            refused.append(v)
    keys = {v: court.contract.functions.keyOf(job, v).call() for v in volunteers}
    seated = {s["verifier"] for s in seats_of(court, job)}
    assert seated == set(sorted(volunteers, key=keys.__getitem__)[:3])
    for v in volunteers:
        assert worker_of(m, v)["locked"] == (PRICE if v in seated else 0)
    assert len(refused) + len(seated) <= 5


def test_draw_keys_are_minus_log2_u_over_stake(public_market: Market) -> None:
    m = public_market
    small, big = verifiers(m, 2, ETHER)
    m.send(big, "addStake", value=9 * ETHER)
    m.at(m.now() + 1)
    court, requester, _, job = _submitted(m, GARBAGE)
    dispute(court, requester, job, 3, PRICE)
    court.send(small, "volunteer", job)
    seed = dispute_of(court, job)["seed"]
    assert seed == Web3.keccak(abi_encode(["uint256", "uint256"], [job, _prevrandao(m)]))
    for who, stake in ((small, ETHER), (big, 10 * ETHER)):
        h = int.from_bytes(Web3.keccak(abi_encode(["bytes32", "address"], [seed, who])))
        expected = (256 - math.log2(h + 1)) * 2**32 * 2**128 / stake
        # 1e-6: a seed-dependent draw once landed 1.3e-8 away (fixed point vs float).
        assert math.isclose(court.contract.functions.keyOf(job, who).call(), expected, rel_tol=1e-6)


def _prevrandao(m: Market) -> int:
    return int.from_bytes(bytes(m.w3.eth.get_block("latest")["mixHash"]))


def test_a_copied_vote_commitment_opens_for_nobody_but_its_author(public_market: Market) -> None:
    m = public_market
    court, _, _, job, (author, copier, third) = _seated(m, GARBAGE)
    d = deadlines(court, job)
    court.at(d["drawDeadline"] + 1)
    mine = vote_commitment(court, job, author, HONEST)
    court.send(author, "commitVote", job, mine)
    court.send(copier, "commitVote", job, mine)
    court.send(third, "commitVote", job, vote_commitment(court, job, third, HONEST))
    court.send(author, "revealVote", job, HONEST, salt_of(author))
    court.assert_reverts(
        "CourtCommitmentMismatch", (job, copier),
        copier, "revealVote", job, HONEST, salt_of(author),
    )  # fmt: skip


def test_no_verdict_before_the_reveal_deadline_unless_every_seat_revealed(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, _, job, panel = _seated(m, GARBAGE)
    d = deadlines(court, job)
    court.at(d["drawDeadline"] + 1)
    for v in panel:
        court.send(v, "commitVote", job, vote_commitment(court, job, v, HONEST))
    # Every seat committed: reveals open at once.
    for v in panel[:2]:
        court.send(v, "revealVote", job, HONEST, salt_of(v))
    # A committed verifier still inside its reveal window cannot be slashed by an early call.
    court.assert_reverts(
        "CourtDeadlineNotReached", (job, d["revealDeadline"]), requester, "resolve", job
    )
    court.send(panel[2], "revealVote", job, HONEST, salt_of(panel[2]))
    court.send(requester, "resolve", job)
    assert m.job(job)["state"] == State.OVERTURNED


def test_dispute_refusals(public_market: Market) -> None:
    m = public_market
    court, requester, worker, job = _submitted(m, GARBAGE)
    court.assert_reverts("CourtInvalidBond", (PRICE, 3 * PRICE), requester, "dispute", job, 3,
                         value=PRICE)  # fmt: skip
    for panel in (1, 4, 11):
        court.assert_reverts("CourtInvalidPanel", (panel, 9), requester, "dispute", job, panel,
                             value=panel * PRICE)  # fmt: skip
    unsubmitted = m.claimed(requester, worker)
    court.assert_reverts("JobMarketWrongState", (unsubmitted, State.CLAIMED),
                         requester, "dispute", unsubmitted, 3, value=3 * PRICE)  # fmt: skip
    challenge_end = m.job(job)["deadline"]
    m.at(challenge_end + 1)
    court.assert_reverts("JobMarketDeadlinePassed", (job, challenge_end),
                         requester, "dispute", job, 3, value=3 * PRICE)  # fmt: skip


def test_a_dispute_is_opened_once_and_token_jobs_are_not_disputable(
    public_market: Market,
) -> None:
    m = public_market
    court, requester, worker, job = _submitted(m, GARBAGE)
    dispute(court, requester, job, 3, PRICE)
    court.assert_reverts("CourtWrongState", (job, 1), m.accounts[3], "dispute", job, 3,
                         value=3 * PRICE)  # fmt: skip
    token = deploy_contract(m, "TestToken", requester)
    transact(token, requester, "mint", requester, ETHER)
    transact(token, requester, "approve", m.address, ETHER)
    token_job = post_terms(m, requester, Terms(token=token.address))
    m.send(worker, "claim", token_job, PRICE)
    m.send(worker, "submitResult", token_job, RESULT_CID, GARBAGE)
    court.assert_reverts("JobMarketNotDisputable", (token_job,), requester, "dispute", token_job,
                         3, value=3 * PRICE)  # fmt: skip


def test_the_seed_comes_from_a_block_after_the_dispute(public_market: Market) -> None:
    m = public_market
    [early] = verifiers(m, 1, ETHER)
    court, requester, _, job = _submitted(m, GARBAGE)
    # Dispute and volunteer in one block: the volunteer would know the seed's block.
    m.rpc("evm_setAutomine", False)
    try:
        fns = court.contract.functions
        hashes = [
            fns.dispute(job, 3).transact({"from": requester, "value": 3 * PRICE, "gas": 10**6}),
            fns.volunteer(job).transact({"from": early, "gas": 10**6}),
        ]
        m.rpc("evm_mine")
    finally:
        m.rpc("evm_setAutomine", True)
    first, second = (m.w3.eth.get_transaction_receipt(h) for h in hashes)
    assert (first["status"], second["status"]) == (1, 0)
    opened_block = dispute_of(court, job)["openedBlock"]
    assert court.revert_error(second) == ("CourtSeedNotReady", (job, opened_block))
    court.send(early, "volunteer", job)  # the next block is fine


def test_only_the_court_may_call_the_markets_dispute_hooks(public_market: Market) -> None:
    m = public_market
    court, requester, worker, job = _submitted(m, GARBAGE)
    outsider = m.accounts[3]
    m.assert_reverts("JobMarketOnlyCourt", (outsider,), outsider, "openDispute", job, outsider)
    for lock in (True, False):  # nobody else may lock (or unlock) a worker's stake
        m.assert_reverts("JobMarketOnlyCourt", (outsider,), outsider, "lockVerifierStake", job,
                         worker, 1, b"\0" * 32, lock)  # fmt: skip
    m.assert_reverts("JobMarketOnlyCourt", (outsider,), outsider, "closeDispute", job, True,
                     outsider, [outsider], [], [], 0)  # fmt: skip
    assert court.contract.functions.market().call() == m.address


def test_outsiders_repeaters_and_latecomers_cannot_sit_or_vote(public_market: Market) -> None:
    m = public_market
    court, _, _, job, panel = _seated(m, GARBAGE)
    outsider = m.accounts[8]  # never registered: no stake to lose
    court.assert_reverts("CourtNoStake", (outsider,), outsider, "volunteer", job)
    # One address, one seat: a second application would double its weight.
    court.assert_reverts("CourtAlreadyVolunteered", (job, panel[0]), panel[0], "volunteer", job)
    d = deadlines(court, job)
    commitment = vote_commitment(court, job, panel[0], HONEST)
    court.assert_reverts("CourtDeadlineNotReached", (job, d["drawDeadline"]),
                         panel[0], "commitVote", job, commitment)  # fmt: skip
    court.at(d["drawDeadline"] + 1)
    late = m.accounts[9]
    register(m, late, stake=ETHER)  # also too recent, but the draw has closed first
    court.assert_reverts("CourtDeadlinePassed", (job, d["drawDeadline"]), late, "volunteer", job)
    court.assert_reverts("CourtNotOnPanel", (job, outsider),
                         outsider, "commitVote", job, commitment)  # fmt: skip
    court.assert_reverts("CourtUnknownDispute", (job + 1,), outsider, "resolve", job + 1)
