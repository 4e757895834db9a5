"""A subset of the JobMarket tests, written the Ape way (project/accounts/chain fixtures)."""

from __future__ import annotations

from typing import Any

import ape
import pytest

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
RESULT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
ETHER = 10**18
CHALLENGE_WINDOW = 3600


@pytest.fixture(scope="module")
def market(project: Any, accounts: Any) -> Any:
    calls = accounts[0].deploy(project.MarketCalls, CHALLENGE_WINDOW, 2**256 - 1)
    return accounts[0].deploy(project.JobMarket, CHALLENGE_WINDOW, 2**256 - 1, calls.address)


def test_fast_path_job_pays_worker_its_price_and_refunds_the_rest(
    market: Any, accounts: Any
) -> None:
    requester, worker = accounts[1], accounts[2]
    receipt = market.postJob(CID, 600, 1800, sender=requester, value=ETHER)
    job_id = receipt.events[0].jobId
    market.claim(job_id, 6 * ETHER // 10, sender=worker)
    market.submitResult(job_id, RESULT_CID, bytes(32), sender=worker)
    market.accept(job_id, sender=requester)
    assert market.getJob(job_id).state == 4  # Settled
    assert market.withdrawable(worker) == 6 * ETHER // 10
    assert market.withdrawable(requester) == 4 * ETHER // 10


def test_claim_after_the_claim_deadline_reverts(market: Any, accounts: Any, chain: Any) -> None:
    receipt = market.postJob(CID, 600, 1800, sender=accounts[1], value=ETHER)
    job_id = receipt.events[0].jobId
    chain.pending_timestamp += 601
    with ape.reverts():
        market.claim(job_id, 1, sender=accounts[2])


def test_replicated_job_settles_on_the_quorum_digest(
    market: Any, accounts: Any, chain: Any
) -> None:
    requester, workers = accounts[1], accounts[3:6]
    for w in workers:  # replicas are drawn by stake bonded before the post
        market.register([], sender=w, value=ETHER // 10)
    zero = b"\0" * 32
    terms = (0, 3, 2, "0x" + "00" * 20, ETHER, 0, 600, 1800, 900, zero, zero)
    receipt = market.postJobWithTerms(CID, terms, sender=requester, value=3 * ETHER)
    job_id = receipt.events[0].jobId
    digests = [b"\x01" * 32, b"\x01" * 32, b"\x02" * 32]
    salts = [bytes([i + 1]) * 32 for i in range(3)]
    chain.mine()  # the draw's seed is a later block's
    for w in workers:
        market.claim(job_id, ETHER, sender=w)
    chain.pending_timestamp += 601  # past the match deadline: the draw is awarded
    market.award(job_id, sender=accounts[6])
    for w, d, s in zip(workers, digests, salts, strict=True):
        market.commitResult(job_id, market.commitmentOf(job_id, w, d, s), sender=w)
    for w, d, s in zip(workers, digests, salts, strict=True):
        market.revealResult(job_id, d, s, RESULT_CID, sender=w)
    market.finalize(job_id, sender=accounts[6])
    assert market.getJob(job_id).state == 4
    # No stake was locked (no min stake, an unbounded stake-free limit): nothing to slash.
    assert [market.withdrawable(w) for w in workers] == [ETHER, ETHER, 0]


def test_worker_stake_unbonds_after_the_delay(market: Any, accounts: Any, chain: Any) -> None:
    worker = accounts[7]
    market.register([], sender=worker, value=ETHER)
    market.unbond(ETHER, sender=worker)
    with ape.reverts():
        market.withdrawStake(sender=worker)
    chain.pending_timestamp += CHALLENGE_WINDOW + 1
    market.withdrawStake(sender=worker)
    assert market.getWorker(worker).unbonding == 0
