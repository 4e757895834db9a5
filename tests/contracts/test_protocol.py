"""Protocol tests on a real anvil: registry, terms, auctions, replicas, allowlists, ERC-20.

Every transition and every refusal of the calls beyond the spine's fast path (which
test_job_market.py covers), each deadline checked at its last allowed second and one after.
"""

from __future__ import annotations

import pytest
from eth_utils.abi import function_signature_to_4byte_selector
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
from protocol_helpers import (
    SALT,
    STAKE,
    ZERO32,
    A,
    B,
    Mode,
    Slot,
    Terms,
    apply_and_award,
    bound_commitment,
    deploy_contract,
    kind_id,
    market_events,
    merkle,
    post_terms,
    register,
    register_all,
    replicated,
    slots_of,
    terms_of,
    transact,
    worker_of,
)


def workers(market: Market, n: int) -> list[str]:
    return list(market.accounts[4 : 4 + n])  # clear of requester, worker and stranger


# ------------------------------------------------------------------ registry


def test_register_records_stake_kinds_and_deposit_payment(market: Market, worker: str) -> None:
    receipt = market.send(worker, "register", [kind_id("echo")], value=STAKE)
    assert worker_of(market, worker) == {
        "registered": True, "stake": STAKE, "locked": 0, "unbondEnd": 0, "unbonding": 0,
        "stakeSince": receipt["blockNumber"],
    }  # fmt: skip
    assert market.contract.functions.hasKind(worker, kind_id("echo")).call()
    assert not market.contract.functions.hasKind(worker, kind_id("hep.pythia")).call()
    [payment] = market_events(market, receipt, "Payment")
    assert (payment["amount"], payment["reason"], payment["direction"]) == (STAKE, 5, 0)


def test_register_twice_reverts_already_registered(market: Market, worker: str) -> None:
    register(market, worker)
    market.assert_reverts("RegistryAlreadyRegistered", (worker,), worker, "register", [])


def test_add_stake_needs_registration_and_a_deposit(market: Market, worker: str) -> None:
    market.assert_reverts("RegistryNotRegistered", (worker,), worker, "addStake", value=STAKE)
    register(market, worker, stake=0)
    market.assert_reverts("RegistryInvalidAmount", (0,), worker, "addStake")
    market.send(worker, "addStake", value=STAKE)
    assert worker_of(market, worker)["stake"] == STAKE


def test_set_kinds_declares_and_drops_and_caps_the_count(market: Market, worker: str) -> None:
    register(market, worker)
    market.send(worker, "setKinds", [kind_id("a"), kind_id("b")], True)
    market.send(worker, "setKinds", [kind_id("a")], False)
    has = market.contract.functions.hasKind
    assert (has(worker, kind_id("a")).call(), has(worker, kind_id("b")).call()) == (False, True)
    market.assert_reverts("RegistryTooManyKinds", (33, 32), worker, "setKinds", [ZERO32] * 33, True)


def test_unbond_then_withdraw_stake_exactly_at_the_unbond_end(market: Market, worker: str) -> None:
    register(market, worker, stake=STAKE)
    receipt = market.send(worker, "unbond", STAKE // 4)
    end = market.now() + CHALLENGE_WINDOW  # the unbond delay is the challenge window
    assert market_events(market, receipt, "UnbondStarted")[0]["unbondEnd"] == end
    assert worker_of(market, worker)["stake"] == STAKE - STAKE // 4
    market.at(end - 1)
    market.assert_reverts("RegistryUnbondNotDue", (worker, end), worker, "withdrawStake")
    market.at(end)
    before = market.balance(worker)
    receipt = market.send(worker, "withdrawStake")
    assert market.balance(worker) - before == STAKE // 4 - market.gas_cost(receipt)
    market.assert_reverts("RegistryNothingUnbonding", (worker,), worker, "withdrawStake")


def test_unbond_refuses_zero_and_more_than_the_unlocked_stake(
    market: Market, requester: str, worker: str
) -> None:
    register(market, worker, stake=STAKE)
    job_id = post_terms(market, requester, Terms(min_stake=STAKE // 2))
    market.send(worker, "claim", job_id, ETHER)
    assert market.contract.functions.availableStake(worker).call() == STAKE // 2
    market.assert_reverts("RegistryInvalidAmount", (0,), worker, "unbond", 0)
    market.assert_reverts(
        "RegistryInsufficientStake", (worker, STAKE // 2, STAKE), worker, "unbond", STAKE
    )


# ------------------------------------------------------------------ posting with terms


@pytest.mark.parametrize(
    ("replicas", "quorum"), [(0, 0), (1, 0), (1, 2), (2, 1), (3, 1), (3, 4), (9, 5), (4, 2)]
)
def test_post_refuses_bad_replica_counts(
    market: Market, requester: str, replicas: int, quorum: int
) -> None:
    terms = replicated(replicas, quorum)
    market.assert_reverts(
        "JobMarketInvalidReplicas", (replicas, quorum, 8), requester, "postJobWithTerms",
        "cid", terms.as_arg(), value=terms.escrow(),
    )  # fmt: skip


def test_post_refuses_bad_windows_prices_and_values(market: Market, requester: str) -> None:
    def refused(error: str, args: tuple[object, ...], terms: Terms, value: int) -> None:
        market.assert_reverts(
            error, args, requester, "postJobWithTerms", "cid", terms.as_arg(), value=value
        )

    base = Terms()
    refused("JobMarketInvalidWindow", (0, MAX_WINDOW), base.but(match_window=0), ETHER)
    refused("JobMarketInvalidWindow", (MAX_WINDOW + 1, MAX_WINDOW),
            base.but(run_window=MAX_WINDOW + 1), ETHER)  # fmt: skip
    refused("JobMarketInvalidWindow", (5, 0), base.but(reveal_window=5), ETHER)
    refused("JobMarketInvalidWindow", (0, MAX_WINDOW), replicated(reveal_window=0), 3 * ETHER)
    refused("JobMarketInvalidAmount", (0,), base.but(max_price=0), 0)
    refused("JobMarketInvalidAmount", (2**88,), base.but(max_price=2**88), 0)
    refused("JobMarketInvalidEscrow", (ETHER - 1,), base, ETHER - 1)
    refused("JobMarketInvalidEscrow", (ETHER,), replicated(), ETHER)
    market.assert_reverts(
        "JobMarketEmptyCid", (), requester, "postJobWithTerms", "", base.as_arg(), value=ETHER
    )


def test_post_with_terms_stores_terms_and_emits_posted_then_terms(
    market: Market, requester: str
) -> None:
    terms = replicated(3, 2, min_stake=STAKE, kind=kind_id("echo"))
    start = market.now() + 1
    market.at(start)
    receipt = market.send(
        requester, "postJobWithTerms", "cid", terms.as_arg(), value=terms.escrow()
    )
    names = [name for name, _ in market.events(receipt)]
    assert names == ["JobPosted", "JobTermsSet", "Payment"]
    posted = market.events(receipt)[0][1]
    assert (posted["maxPrice"], posted["claimDeadline"]) == (3 * ETHER, start + 600)
    job_id = posted["jobId"]
    stored = terms_of(market, job_id)
    assert (stored["mode"], stored["replicas"], stored["quorum"]) == (Mode.CLAIM, 3, 2)
    # The draw's seed comes from a later block, set by its first claim.
    assert (stored["postedBlock"], stored["drawSeed"]) == (receipt["blockNumber"], ZERO32)
    assert (stored["minStake"], stored["kind"], stored["revealWindow"]) == (
        STAKE, kind_id("echo"), 900,
    )  # fmt: skip
    assert market.job(job_id)["escrow"] == 3 * ETHER


def test_fast_path_job_reports_default_terms(market: Market, requester: str, worker: str) -> None:
    job_id = market.post(requester, escrow=5)
    stored = terms_of(market, job_id)
    assert (stored["mode"], stored["replicas"], stored["quorum"], stored["maxPrice"]) == (
        0, 1, 1, 5,
    )  # fmt: skip
    market.send(worker, "claim", job_id, 2)
    assert terms_of(market, job_id)["maxPrice"] == 0  # no longer stored: see JobPosted
    assert terms_of(market, 99)["replicas"] == 0


# ------------------------------------------------------------------ claim with terms


def test_claim_refuses_unregistered_understaked_and_undeclared_workers(
    market: Market, requester: str, worker: str
) -> None:
    job_id = post_terms(market, requester, Terms(min_stake=STAKE, kind=kind_id("echo")))
    market.assert_reverts("RegistryNotRegistered", (worker,), worker, "claim", job_id, 1)
    register(market, worker, stake=STAKE - 1)
    market.assert_reverts(
        "RegistryKindNotDeclared", (worker, kind_id("echo")), worker, "claim", job_id, 1
    )
    market.send(worker, "setKinds", [kind_id("echo")], True)
    market.assert_reverts(
        "RegistryInsufficientStake", (worker, STAKE - 1, STAKE), worker, "claim", job_id, 1
    )
    market.send(worker, "addStake", value=1)
    market.send(worker, "claim", job_id, 1)
    assert worker_of(market, worker)["locked"] == STAKE


def test_claim_with_terms_refuses_price_above_max(
    market: Market, requester: str, worker: str
) -> None:
    job_id = post_terms(market, requester, Terms(max_price=100))
    market.assert_reverts(
        "JobMarketPriceAboveMax", (job_id, 101, 100), worker, "claim", job_id, 101
    )


def test_settled_job_unlocks_stake_and_pays_in_full(
    market: Market, requester: str, worker: str
) -> None:
    register(market, worker, stake=STAKE)
    job_id = post_terms(market, requester, Terms(min_stake=STAKE))
    market.send(worker, "claim", job_id, ETHER // 4)
    market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    market.send(requester, "accept", job_id)
    assert worker_of(market, worker)["locked"] == 0
    assert market.withdrawable(worker) == ETHER // 4
    assert market.withdrawable(requester) == ETHER - ETHER // 4


def test_expire_after_run_deadline_slashes_and_burns_the_locked_stake(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    register(market, worker, stake=STAKE)
    job_id = post_terms(market, requester, Terms(min_stake=STAKE // 2))
    market.send(worker, "claim", job_id, ETHER)
    deadline = market.job(job_id)["deadline"]
    market.at(deadline)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, deadline), stranger, "expire", job_id
    )
    market.at(deadline + 1)
    receipt = market.send(stranger, "expire", job_id)
    slashed = market_events(market, receipt, "StakeSlashed")
    assert slashed == [{"worker": worker, "jobId": job_id, "amount": STAKE // 2}]
    assert worker_of(market, worker)["stake"] == STAKE // 2
    assert worker_of(market, worker)["locked"] == 0
    assert market.withdrawable(requester) == ETHER  # its escrow back; the stake is burned
    assert market.contract.functions.burned().call() == STAKE // 2
    assert market.job(job_id)["state"] == State.EXPIRED


def test_allowlist_admits_listed_workers_with_a_proof_only(market: Market, requester: str) -> None:
    w1, w2, w3, outsider = workers(market, 4)
    register_all(market, [w1, w2, w3, outsider])
    root, proofs = merkle([w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2, allowlist_root=root))
    market.assert_reverts(
        "JobMarketNotAllowed", (job_id, outsider), outsider, "claimWithProof", job_id, 1,
        proofs[w1],
    )  # fmt: skip
    market.assert_reverts("JobMarketNotAllowed", (job_id, w1), w1, "claim", job_id, 1)
    for w in (w1, w2, w3):
        market.send(w, "claimWithProof", job_id, 1, proofs[w])
    assert [s["worker"] for s in slots_of(market, job_id)] == [w1, w2, w3]


def test_single_worker_allowlist_root_is_its_leaf_and_needs_no_proof(
    market: Market, requester: str, worker: str, stranger: str
) -> None:
    root, _ = merkle([worker])
    job_id = post_terms(market, requester, Terms(allowlist_root=root))
    market.assert_reverts("JobMarketNotAllowed", (job_id, stranger), stranger, "claim", job_id, 1)
    market.send(worker, "claim", job_id, 1)
    assert market.job(job_id)["worker"] == worker


def test_claim_with_proof_on_a_fast_path_job_is_a_plain_claim(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.post(requester)
    market.send(worker, "claimWithProof", job_id, 7, [])
    assert (market.job(job_id)["state"], market.job(job_id)["price"]) == (State.CLAIMED, 7)


# ------------------------------------------------------------------ auctions


def test_auction_holds_lowest_bid_and_award_after_deadline_assigns_it(
    market: Market, requester: str, stranger: str
) -> None:
    a, b, c = workers(market, 3)
    for w in (a, b, c):
        register(market, w, stake=STAKE)
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION, min_stake=STAKE))
    deadline = market.job(job_id)["deadline"]
    market.send(a, "bid", job_id, ETHER * 9 // 10, [])
    receipt = market.send(b, "bid", job_id, ETHER // 2, [])
    assert market_events(market, receipt, "BidOutbid") == [{"jobId": job_id, "worker": a}]
    assert worker_of(market, a)["locked"] == 0 and worker_of(market, b)["locked"] == STAKE
    market.assert_reverts(
        "JobMarketBidTooHigh", (job_id, ETHER // 2, ETHER // 2), c, "bid", job_id, ETHER // 2, []
    )
    market.assert_reverts("JobMarketAlreadyAssigned", (job_id, b), b, "bid", job_id, 1, [])
    market.assert_reverts("JobMarketAlreadyAssigned", (job_id, b), requester, "cancel", job_id)
    market.at(deadline)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, deadline), stranger, "award", job_id
    )
    market.at(deadline + 1)
    award_end = deadline + Terms().run_window
    market.assert_reverts("JobMarketAwardDue", (job_id, award_end), stranger, "expire", job_id)
    receipt = market.send(stranger, "award", job_id)
    [claimed] = market_events(market, receipt, "JobClaimed")
    assert (claimed["worker"], claimed["price"]) == (b, ETHER // 2)
    job = market.job(job_id)
    assert (job["state"], job["worker"], job["price"]) == (State.CLAIMED, b, ETHER // 2)
    assert market.withdrawable(requester) == ETHER - ETHER // 2  # refunded at the award
    market.send(b, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    market.send(requester, "accept", job_id)
    assert market.withdrawable(b) == ETHER // 2
    assert worker_of(market, b)["locked"] == 0


def test_bid_refusals_wrong_mode_late_and_above_max(
    market: Market, requester: str, worker: str
) -> None:
    claim_job = post_terms(market, requester, Terms())
    market.assert_reverts(
        "JobMarketWrongMode", (claim_job, Mode.CLAIM), worker, "bid", claim_job, 1, []
    )
    fast_job = market.post(requester)
    market.assert_reverts(
        "JobMarketWrongMode", (fast_job, Mode.CLAIM), worker, "bid", fast_job, 1, []
    )
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION, max_price=10))
    market.assert_reverts("JobMarketWrongMode", (job_id, Mode.AUCTION), worker, "claim", job_id, 1)
    market.assert_reverts("JobMarketPriceAboveMax", (job_id, 11, 10), worker, "bid", job_id, 11, [])
    deadline = market.job(job_id)["deadline"]
    market.at(deadline + 1)
    market.assert_reverts(
        "JobMarketDeadlinePassed", (job_id, deadline), worker, "bid", job_id, 1, []
    )


def test_award_refusals_and_expiry_of_an_auction_without_bids(
    market: Market, requester: str, stranger: str
) -> None:
    fast_job = market.post(requester)
    market.assert_reverts("JobMarketWrongMode", (fast_job, Mode.CLAIM), stranger, "award", fast_job)
    job_id = post_terms(market, requester, Terms(mode=Mode.AUCTION))
    market.advance(601)
    market.assert_reverts("JobMarketNotEnoughWorkers", (job_id, 0, 1), stranger, "award", job_id)
    market.send(stranger, "expire", job_id)
    assert market.job(job_id)["state"] == State.EXPIRED
    assert market.withdrawable(requester) == ETHER


def test_an_auction_has_one_replica_since_replicas_are_drawn(
    market: Market, requester: str
) -> None:
    """The lowest bids could all be one party's: replicated jobs are drawn, not auctioned."""
    terms = replicated(3, 2, mode=Mode.AUCTION)
    market.assert_reverts(
        "JobMarketInvalidReplicas", (3, 2, 1), requester, "postJobWithTerms", CID,
        terms.as_arg(), value=terms.escrow(),
    )  # fmt: skip


# ------------------------------------------------------------------ replication


def commit_all(market: Market, job_id: int, digests: dict[str, bytes]) -> None:
    for i, (w, digest) in enumerate(digests.items()):
        market.send(w, "commitResult", job_id, bound_commitment(market, job_id, w, digest, SALT[i]))


def reveal_all(market: Market, job_id: int, digests: dict[str, bytes]) -> None:
    for i, (w, digest) in enumerate(digests.items()):
        market.send(w, "revealResult", job_id, digest, SALT[i], RESULT_CID)


def test_quorum_pays_majority_and_splits_the_minoritys_slash_among_it(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    apply_and_award(market, job_id, [w1, w2, w3], [ETHER // 2, ETHER // 4, ETHER])
    assert market.job(job_id)["state"] == State.COMMITTING
    digests = {w1: A, w2: A, w3: B}
    market.assert_reverts("JobMarketRevealNotOpen", (job_id, market.job(job_id)["deadline"]),
                          w1, "revealResult", job_id, A, SALT[0], RESULT_CID)  # fmt: skip
    commit_all(market, job_id, digests)
    assert market.job(job_id)["state"] == State.REVEALING
    reveal_all(market, job_id, digests)
    receipt = market.send(stranger, "finalize", job_id)
    [settled] = market_events(market, receipt, "ReplicasSettled")
    paid = ETHER // 2 + ETHER // 4
    assert (settled["digest"], settled["paidWorkers"], settled["payment"]) == (A, 2, paid)
    assert settled["refund"] == 3 * ETHER - paid
    assert market.job(job_id)["state"] == State.SETTLED
    assert [s["status"] for s in slots_of(market, job_id)] == [Slot.PAID, Slot.PAID, Slot.SLASHED]
    assert (market.withdrawable(w1), market.withdrawable(w2), market.withdrawable(w3)) == (
        ETHER // 2 + STAKE // 2, ETHER // 4 + STAKE // 2, 0,
    )  # fmt: skip
    assert market.withdrawable(requester) == 3 * ETHER - paid
    assert worker_of(market, w3)["stake"] == 0
    assert worker_of(market, w1)["locked"] == 0 and worker_of(market, w1)["stake"] == STAKE


def test_commit_refusals_outsider_twice_and_after_the_commit_deadline(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3, stranger])
    job_id = post_terms(market, requester, replicated(3, 2))
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.OPEN), w1, "commitResult", job_id, A
    )
    market.send(w1, "claim", job_id, 1)
    market.assert_reverts("JobMarketAlreadyAssigned", (job_id, w1), w1, "claim", job_id, 1)
    apply_and_award(market, job_id, [w2, w3])
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.COMMITTING), stranger, "claim", job_id, 1
    )
    market.assert_reverts(
        "JobMarketNotAssigned", (job_id, stranger), stranger, "commitResult", job_id, A
    )
    market.send(w1, "commitResult", job_id, A)
    market.assert_reverts("JobMarketNotAssigned", (job_id, w1), w1, "commitResult", job_id, A)
    deadline = market.job(job_id)["deadline"]
    market.at(deadline)
    market.send(w2, "commitResult", job_id, A)  # the commit deadline is inclusive
    market.at(deadline + 1)
    market.assert_reverts(
        "JobMarketDeadlinePassed", (job_id, deadline), w3, "commitResult", job_id, A
    )


def test_reveal_refuses_wrong_salt_and_after_the_reveal_deadline(
    market: Market, requester: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2))
    apply_and_award(market, job_id, [w1, w2, w3])
    commit_all(market, job_id, {w1: A, w2: A, w3: A})
    market.assert_reverts(
        "JobMarketCommitmentMismatch", (job_id, w1), w1, "revealResult", job_id, A, SALT[1],
        RESULT_CID,
    )  # fmt: skip
    market.assert_reverts("JobMarketEmptyCid", (), w1, "revealResult", job_id, A, SALT[0], "")
    deadline = market.job(job_id)["deadline"]
    market.at(deadline)
    market.send(w1, "revealResult", job_id, A, SALT[0], RESULT_CID)
    # Still at the deadline: a second later the deadline check would answer first.
    market.at(deadline)
    market.assert_reverts(
        "JobMarketNotAssigned", (job_id, w1), w1, "revealResult", job_id, A, SALT[0], RESULT_CID
    )
    market.at(deadline + 1)
    market.assert_reverts(
        "JobMarketDeadlinePassed", (job_id, deadline), w2, "revealResult", job_id, A, SALT[1],
        RESULT_CID,
    )  # fmt: skip


def test_no_quorum_refunds_releases_revealers_and_burns_the_no_shows_stake(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2, min_stake=STAKE))
    apply_and_award(market, job_id, [w1, w2, w3])
    commit_all(market, job_id, {w1: A, w2: B})
    commit_deadline = market.job(job_id)["deadline"]
    market.at(commit_deadline + 1)
    receipt = market.send(w1, "revealResult", job_id, A, SALT[0], RESULT_CID)
    reveal_deadline = commit_deadline + 900
    assert market_events(market, receipt, "RevealPhaseStarted")[0]["revealDeadline"] == (
        reveal_deadline
    )
    market.send(w2, "revealResult", job_id, B, SALT[1], RESULT_CID)
    market.at(reveal_deadline)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, reveal_deadline), stranger, "finalize", job_id
    )
    market.at(reveal_deadline + 1)
    receipt = market.send(stranger, "finalize", job_id)
    assert market_events(market, receipt, "JobNoQuorum") == [{"jobId": job_id, "refund": 3 * ETHER}]
    assert market.job(job_id)["state"] == State.NO_QUORUM
    statuses = [s["status"] for s in slots_of(market, job_id)]
    assert statuses == [Slot.RELEASED, Slot.RELEASED, Slot.SLASHED]
    assert market.withdrawable(requester) == 3 * ETHER  # nobody honest was paid: burned
    assert market.contract.functions.burned().call() == STAKE
    assert [worker_of(market, w)["locked"] for w in (w1, w2, w3)] == [0, 0, 0]


def test_finalize_settles_at_the_commit_deadline_when_quorum_is_out_of_reach(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2))
    apply_and_award(market, job_id, [w1, w2, w3])
    market.send(w1, "commitResult", job_id, A)
    deadline = market.job(job_id)["deadline"]
    market.at(deadline)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, deadline), stranger, "finalize", job_id
    )
    market.at(deadline + 1)
    market.send(stranger, "finalize", job_id)
    assert market.job(job_id)["state"] == State.NO_QUORUM


def test_finalize_waits_for_reveals_while_quorum_is_possible(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2, w3 = workers(market, 3)
    register_all(market, [w1, w2, w3])
    job_id = post_terms(market, requester, replicated(3, 2))
    apply_and_award(market, job_id, [w1, w2, w3])
    commit_all(market, job_id, {w1: A, w2: A})
    deadline = market.job(job_id)["deadline"] + 900
    market.at(deadline)
    market.assert_reverts(
        "JobMarketDeadlineNotReached", (job_id, deadline), stranger, "finalize", job_id
    )
    market.at(deadline + 1)
    market.send(stranger, "finalize", job_id)  # nobody revealed: all slashed, all refunded
    assert market.job(job_id)["state"] == State.NO_QUORUM


def test_partially_filled_replicated_job_is_awarded_or_expired_after_match_deadline(
    market: Market, requester: str, stranger: str
) -> None:
    w1, w2 = workers(market, 2)
    register_all(market, [w1, w2])
    enough = post_terms(market, requester, replicated(3, 2))
    short = post_terms(market, requester, replicated(3, 2))
    for w in (w1, w2):
        market.send(w, "claim", enough, 1)
    market.send(w1, "claim", short, 1)
    market.advance(601)
    market.assert_reverts("JobMarketNotEnoughWorkers", (short, 1, 2), stranger, "award", short)
    market.send(stranger, "expire", short)
    assert slots_of(market, short)[0]["status"] == Slot.RELEASED
    receipt = market.send(stranger, "award", enough)
    assert market_events(market, receipt, "CommitPhaseStarted")[0]["workers"] == 2
    commit_all(market, enough, {w1: A, w2: A})
    reveal_all(market, enough, {w1: A, w2: A})
    market.send(stranger, "finalize", enough)
    assert market.job(enough)["state"] == State.SETTLED
    assert market.withdrawable(requester) == 3 * ETHER + 3 * ETHER - 2


def test_finalize_and_expire_refuse_wrong_states(
    market: Market, requester: str, stranger: str
) -> None:
    register_all(market, workers(market, 3))
    job_id = post_terms(market, requester, replicated(3, 2))
    market.assert_reverts("JobMarketWrongState", (job_id, State.OPEN), stranger, "finalize", job_id)
    apply_and_award(market, job_id, workers(market, 3))
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.COMMITTING), stranger, "expire", job_id
    )
    market.assert_reverts(
        "JobMarketWrongState", (job_id, State.COMMITTING), requester, "cancel", job_id
    )


def test_commitment_view_matches_the_offchain_hash(market: Market) -> None:
    view = market.contract.functions.commitmentOf(7, market.accounts[4], A, SALT[0]).call()
    assert view == bound_commitment(market, 7, market.accounts[4], A, SALT[0])


# ------------------------------------------------------------------ ERC-20


def test_token_job_escrows_pays_and_withdraws_in_tokens(
    market: Market, requester: str, worker: str
) -> None:
    token = deploy_contract(market, "TestToken", requester)
    transact(token, requester, "mint", requester, 10 * ETHER)
    transact(token, requester, "approve", market.address, ETHER)
    terms = Terms(token=token.address)
    market.assert_reverts(
        "JobMarketUnexpectedValue", (1,), requester, "postJobWithTerms", "cid", terms.as_arg(),
        value=1,
    )  # fmt: skip
    job_id = post_terms(market, requester, terms)
    assert token.functions.balanceOf(market.address).call() == ETHER
    market.send(worker, "claim", job_id, ETHER // 3)
    credit = market.contract.functions.tokenWithdrawable
    assert credit(token.address, requester).call() == ETHER - ETHER // 3  # refund in tokens
    market.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    market.send(requester, "accept", job_id)
    assert credit(token.address, worker).call() == ETHER // 3
    assert credit(token.address, requester).call() == ETHER - ETHER // 3
    assert market.withdrawable(worker) == 0
    receipt = market.send(worker, "withdrawToken", token.address)
    assert market_events(market, receipt, "TokenWithdrawn") == [
        {"token": token.address, "account": worker, "amount": ETHER // 3}
    ]
    assert token.functions.balanceOf(worker).call() == ETHER // 3
    market.assert_reverts(
        "JobMarketNothingToWithdraw", (worker,), worker, "withdrawToken", token.address
    )


def test_token_job_without_allowance_reverts_with_the_token_error(
    market: Market, requester: str
) -> None:
    token = deploy_contract(market, "TestToken", requester)
    transact(token, requester, "mint", requester, ETHER)
    receipt = market.try_send(
        requester, "postJobWithTerms", "cid", Terms(token=token.address).as_arg()
    )
    assert receipt["status"] == 0
    trace = market.rpc(
        "debug_traceTransaction", "0x" + receipt["transactionHash"].hex(), {"tracer": "callTracer"}
    )
    selector = function_signature_to_4byte_selector(
        "ERC20InsufficientAllowance(address,uint256,uint256)"
    )
    assert bytes.fromhex(trace["output"][2:])[:4] == selector  # the token's own error, bubbled
    assert market.contract.functions.jobCount().call() == 0


def test_fee_on_transfer_token_is_refused(market: Market, requester: str) -> None:
    token = deploy_contract(market, "HostileToken", requester)
    transact(token, requester, "mint", requester, ETHER)
    transact(token, requester, "approve", market.address, ETHER)
    transact(token, requester, "setFee", 100)  # 1 %
    market.assert_reverts(
        "JobMarketTokenShortfall", (token.address, ETHER, ETHER - ETHER // 100), requester,
        "postJobWithTerms", "cid", Terms(token=token.address).as_arg(),
    )  # fmt: skip
