"""POST /jobs with protocol terms: the spec's payment section becomes the job's terms on chain."""

from __future__ import annotations

from collections.abc import Callable

from api_helpers import echo_spec, seat_replicas, stake_for_draws
from fastapi.testclient import TestClient

from hepx.allowlist import merkle_root
from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, MatchMode, TokenClient, kind_id
from hepx.deployment import Deployment

PRICE = 10**15


def test_post_replicas_with_stake_sets_those_terms_on_chain(
    api: TestClient, market_as: Callable[[int], MarketClient], node: Anvil
) -> None:
    workers = [node.accounts[i].address for i in (3, 4, 5)]
    spec = echo_spec(
        max_price=PRICE,
        replicas=3,
        min_stake="0.5 ether",
        reveal_window=120,
        allowlist=workers,
    )
    reply = api.post("/jobs", json=spec)
    assert reply.status_code == 201, reply.text
    market = market_as(0)
    job_id = reply.json()["job_id"]
    terms = market.terms(job_id)
    assert terms.mode == MatchMode.CLAIM
    assert (terms.replicas, terms.quorum, terms.reveal_window) == (3, 2, 120)
    assert terms.max_price == PRICE and market.job(job_id).escrow == 3 * PRICE
    assert terms.min_stake == 5 * 10**17 and terms.kind == kind_id("echo")
    assert terms.allowlist_root == merkle_root(workers)


def test_post_erc20_job_approves_and_escrows_the_token(
    api: TestClient, market_as: Callable[[int], MarketClient], deployment: Deployment, node: Anvil
) -> None:
    assert deployment.test_token is not None
    token = TokenClient(node.url, deployment.test_token, node.accounts[0].private_key)
    token.mint(token.sender, PRICE)
    market = market_as(0)
    held = token.balance_of(market.address)
    reply = api.post("/jobs", json=echo_spec(max_price=PRICE, token=deployment.test_token))
    assert reply.status_code == 201, reply.text
    job_id = reply.json()["job_id"]
    assert market.job(job_id).state == JobState.OPEN
    assert market.terms(job_id).token == deployment.test_token
    assert token.balance_of(market.address) == held + PRICE


def test_post_erc20_job_without_the_balance_is_refused_naming_the_token_error(
    api: TestClient, deployment: Deployment
) -> None:
    assert deployment.test_token is not None
    reply = api.post("/jobs", json=echo_spec(max_price=10**25, token=deployment.test_token))
    assert reply.status_code == 409, reply.text
    assert reply.json()["error"] == "ERC20InsufficientBalance"


def test_an_auction_of_several_replicas_is_422_since_replicas_are_drawn(api: TestClient) -> None:
    reply = api.post("/jobs", json=echo_spec(mode="auction", replicas=3, reveal_window=60))
    assert reply.status_code == 422
    assert "an auction has one replica, not 3" in reply.text


def test_post_job_with_a_quorum_that_is_not_a_majority_is_422(api: TestClient) -> None:
    reply = api.post("/jobs", json=echo_spec(replicas=4, quorum=2, reveal_window=60))
    assert reply.status_code == 422
    assert "quorum 2 does not fit 4 replicas" in reply.text


def test_replicated_job_shows_the_result_the_quorum_agreed_on(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    workers = [market_as(i) for i in (6, 7)]
    stake_for_draws(workers)
    reply = api.post("/jobs", json=echo_spec(max_price=PRICE, replicas=2, reveal_window=60))
    job_id = reply.json()["job_id"]
    digest, cid = b"\x42" * 32, "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    seat_replicas(workers, job_id, PRICE)
    for i, worker in enumerate(workers):
        worker.commit_result(job_id, worker.commitment(job_id, digest, bytes([i]) * 32))
    for i, worker in enumerate(workers):
        worker.reveal_result(job_id, digest, bytes([i]) * 32, cid)
    workers[0].finalize(job_id)

    job = api.get(f"/jobs/{job_id}").json()
    assert job["state"] == "settled" and job["result_cid"] == cid
    assert job["settle_tx"] is not None
    assert [p["reason"] for p in job["payments"]].count("worker_payment") == 2
    result = api.get(f"/jobs/{job_id}/result").json()
    assert result["result_cid"] == cid and result["tx_hash"] == job["settle_tx"]
