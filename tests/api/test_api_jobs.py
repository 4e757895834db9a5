"""POST /jobs, GET /jobs/{id} and /jobs/{id}/result against the real market on anvil."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from api_helpers import echo_spec
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import error_response
from hepx.anvil import Anvil, free_port
from hepx.chain import JobState, MarketClient
from hepx.config import Settings
from hepx.deployment import Deployment
from hepx.errors import TxReverted
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore, cid_of_bytes

ONE_CENT_ETH = 10**16


def test_post_job_stores_spec_and_opens_job_with_escrow(
    api: TestClient,
    store: LocalStore,
    market_as: Callable[[int], MarketClient],
    deployment: Deployment,
    node: Anvil,
) -> None:
    input_cid = api.post("/ipfs", content=b"1 2 3\n").json()["cid"]
    spec = echo_spec()
    spec["inputs"] = [{"name": "numbers.txt", "cid": input_cid}]

    reply = api.post("/jobs", json=spec)

    assert reply.status_code == 201, reply.text
    body = reply.json()
    market = market_as(0)
    job = market.job(body["job_id"])
    assert job.state is JobState.OPEN
    assert job.escrow == ONE_CENT_ETH
    assert job.requester.lower() == node.accounts[0].address.lower()
    posted = [
        ev
        for ev in market.events(deployment.deploy_block, market.block_number(), body["job_id"])
        if ev.name == "JobPosted"
    ]
    assert [ev.tx_hash for ev in posted] == [body["tx_hash"]]
    assert posted[0].args["specCid"] == body["spec_cid"]
    stored = store.read_bytes(body["spec_cid"])
    assert stored == canonical_json(parse_spec(stored))
    assert parse_spec(stored).inputs[0].cid == input_cid


def test_post_job_accepts_a_yaml_body(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    reply = api.post(
        "/jobs",
        content=yaml.safe_dump(echo_spec(max_price="3 gwei")),
        headers={"content-type": "application/yaml"},
    )

    assert reply.status_code == 201, reply.text
    assert market_as(0).job(reply.json()["job_id"]).escrow == 3 * 10**9


def test_post_job_with_invalid_spec_is_422_naming_the_field_and_posts_nothing(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    before = market_as(0).job_count()

    reply = api.post("/jobs", json=echo_spec(claim_window=-5))

    assert reply.status_code == 422
    assert "payment.claim_window" in reply.json()["detail"]
    assert market_as(0).job_count() == before


def test_post_job_lists_every_problem_of_the_spec(api: TestClient) -> None:
    spec = echo_spec(run_window=0)
    spec["metadata"]["name"] = "Not Valid!"

    detail = api.post("/jobs", json=spec).json()["detail"]

    assert "payment.run_window" in detail
    assert "metadata.name" in detail


def test_post_job_with_input_missing_from_store_is_422_naming_input_and_cid(
    api: TestClient, market_as: Callable[[int], MarketClient], tmp_path: Path
) -> None:
    absent = LocalStore(tmp_path / "elsewhere", fsync=False).add_bytes(b"absent")
    spec = echo_spec()
    spec["inputs"] = [{"name": "events.txt", "cid": absent}]
    before = market_as(0).job_count()

    reply = api.post("/jobs", json=spec)

    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert "'events.txt'" in detail and absent in detail and "POST /ipfs" in detail
    assert market_as(0).job_count() == before


def test_post_job_with_unsupported_content_type_is_415(api: TestClient) -> None:
    reply = api.post("/jobs", content=b"kind=echo", headers={"content-type": "text/plain"})

    assert reply.status_code == 415
    assert "application/json" in reply.json()["detail"]


def test_post_job_without_requester_key_is_503(
    make_settings: Callable[..., Settings], market_as: Callable[[int], MarketClient]
) -> None:
    before = market_as(0).job_count()
    with TestClient(create_app(make_settings(private_key=None))) as api:
        reply = api.post("/jobs", json=echo_spec())

    assert reply.status_code == 503
    assert "HEPX_PRIVATE_KEY" in reply.json()["detail"]
    assert market_as(0).job_count() == before


def test_post_job_without_deployment_is_503_naming_the_file(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(deployment=None)
    with TestClient(create_app(settings)) as api:
        reply = api.post("/jobs", json=echo_spec())

    assert reply.status_code == 503
    assert str(settings.deployment_path) in reply.json()["detail"]


def test_post_job_when_chain_is_down_is_503_naming_the_rpc_url(
    make_settings: Callable[..., Settings],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_app(make_settings(rpc_url=dead))) as api:
        reply = api.post("/jobs", json=echo_spec())

    assert reply.status_code == 503
    assert dead in reply.json()["detail"]


def test_get_unknown_job_is_404(api: TestClient) -> None:
    reply = api.get("/jobs/999")

    assert reply.status_code == 404
    assert "job 999 does not exist" in reply.json()["detail"]


def test_get_job_with_negative_id_is_422(api: TestClient) -> None:
    assert api.get("/jobs/-1").status_code == 422


def test_result_of_open_job_is_404(api: TestClient) -> None:
    job_id = api.post("/jobs", json=echo_spec()).json()["job_id"]

    reply = api.get(f"/jobs/{job_id}/result")

    assert reply.status_code == 404
    assert "no result yet" in reply.json()["detail"]


def test_job_shows_every_transition_payment_and_result_after_claim_submit_accept(
    api: TestClient, market_as: Callable[[int], MarketClient], node: Anvil
) -> None:
    posted = api.post("/jobs", json=echo_spec()).json()
    job_id = posted["job_id"]
    result_bytes = b"the answer is 42\n"
    result_cid = api.post("/ipfs", content=result_bytes).json()["cid"]
    worker, requester = market_as(2), market_as(0)
    price = ONE_CENT_ETH // 4
    claim_tx = worker.claim(job_id, price).tx_hash
    submit_tx = worker.submit_result(job_id, result_cid, bytes(32)).tx_hash
    accept_tx = requester.accept(job_id).tx_hash

    job = api.get(f"/jobs/{job_id}").json()

    assert job["state"] == "settled"
    assert job["worker"].lower() == node.accounts[2].address.lower()
    assert job["price"] == price
    assert job["max_price"] == ONE_CENT_ETH
    assert [(t["event"], t["tx_hash"]) for t in job["transitions"]] == [
        ("JobPosted", posted["tx_hash"]),
        ("JobClaimed", claim_tx),
        ("ResultSubmitted", submit_tx),
        ("JobSettled", accept_tx),
    ]
    assert job["transitions"][2]["args"]["resultCid"] == result_cid
    assert job["result_cid"] == result_cid
    assert job["settle_tx"] == accept_tx
    credits = {
        (p["payee"].lower(), p["reason"]): p["amount"]
        for p in job["payments"]
        if p["direction"] == "credit"
    }
    assert credits == {
        (node.accounts[2].address.lower(), "worker_payment"): price,
        (node.accounts[0].address.lower(), "refund"): ONE_CENT_ETH - price,
    }
    result = api.get(f"/jobs/{job_id}/result").json()
    assert result["result_cid"] == result_cid and result["tx_hash"] == submit_tx
    assert api.get(result["url"]).content == result_bytes


def test_tx_reverted_maps_to_409_with_decoded_error() -> None:
    exc = TxReverted("accept refused: JobMarketWrongState(7, 1)", "JobMarketWrongState", (7, 1))

    reply = error_response(exc)

    assert reply.status_code == 409
    assert b'"error":"JobMarketWrongState"' in reply.body and b'"args":[7,1]' in reply.body


def test_tx_reverted_for_bad_request_values_maps_to_422() -> None:
    exc = TxReverted("postJob refused", "JobMarketInvalidWindow", (0, 365 * 86400))

    assert error_response(exc).status_code == 422


def test_four_posts_at_once_all_land_at_once(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    # On main three of these hung for the receipt timeout and failed: they shared a nonce.
    replies: list[object] = [None] * 4

    def post(i: int) -> None:
        spec = echo_spec()
        spec["metadata"] = {"name": f"concurrent-{i}"}
        replies[i] = api.post("/jobs", json=spec)

    started = time.monotonic()
    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.status_code for r in replies] == [201] * 4  # type: ignore[union-attr]
    assert time.monotonic() - started < 15
    ids = {r.json()["job_id"] for r in replies}  # type: ignore[union-attr]
    assert len(ids) == 4
    reader = market_as(0)
    assert {reader.job(i).state for i in ids} == {JobState.OPEN}


def test_a_job_is_found_by_the_spec_cid_its_requester_computed_before_posting(
    api: TestClient,
) -> None:
    # What a workflow runner does when the answer to its POST /jobs was lost.
    spec = echo_spec()
    spec["metadata"]["labels"] = {"run": f"found-{time.time_ns()}"}
    expected = cid_of_bytes(canonical_json(parse_spec(spec)))
    assert api.get("/jobs", params={"spec_cid": expected}).json()["items"] == []
    posted = api.post("/jobs", json=spec).json()
    assert posted["spec_cid"] == expected
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30  # the index is synced at most once a second
    while not found and time.monotonic() < deadline:
        found = api.get("/jobs", params={"spec_cid": expected}).json()["items"]
        time.sleep(0.2)
    assert [j["job_id"] for j in found] == [posted["job_id"]]


def test_the_api_refunds_its_own_lapsed_jobs_and_the_explorer_says_from_where(
    api: TestClient, market_as: Callable[[int], MarketClient], node: Anvil
) -> None:
    # A worker that claims and vanishes (its host died) must not lock the escrow for good:
    # nobody else has a reason to call expire, so the API, whose key paid, does.
    unclaimed = api.post("/jobs", json=echo_spec(claim_window=2)).json()["job_id"]
    vanished = api.post("/jobs", json=echo_spec(run_window=60)).json()["job_id"]
    running = api.post("/jobs", json=echo_spec()).json()["job_id"]
    worker = market_as(1)
    worker.claim(vanished, ONE_CENT_ETH)
    worker.claim(running, ONE_CENT_ETH)
    requester = market_as(0)
    before = requester.withdrawable(requester.sender)
    for method, params in (("evm_increaseTime", [120]), ("evm_mine", [])):
        httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    services = api.app.state.services  # type: ignore[attr-defined]
    expired = services.index.expire_lapsed(services.index.refresh(inline=True, max_age=0))
    assert {unclaimed, vanished} <= set(expired) and running not in expired
    assert requester.job(unclaimed).state is JobState.EXPIRED
    assert requester.job(vanished).state is JobState.EXPIRED
    assert requester.job(running).state is JobState.CLAIMED
    assert requester.withdrawable(requester.sender) - before >= 2 * ONE_CENT_ETH
    services.index.refresh(inline=True, max_age=0)
    page = api.get(f"/job/{vanished}").text
    assert "expired from" in page and "claimed" in page
    # A second round finds nothing left to do (and sends no reverting transaction).
    assert services.index.expire_lapsed(services.index.refresh(inline=True, max_age=0)) == []


def test_fifty_concurrent_posts_through_http_each_land_exactly_once(
    live_url: str, market_as: Callable[[int], MarketClient], deployment: Deployment
) -> None:
    """50 clients POST /jobs at the same moment to one API (one key): every post answers 201
    and lands on chain exactly once (one JobPosted per spec). Prints the latency figures."""
    count = 50
    replies: list[httpx.Response | None] = [None] * count
    seconds: list[float] = [0.0] * count
    start = threading.Barrier(count)

    def post(i: int) -> None:
        spec = echo_spec()
        spec["metadata"] = {"name": f"fifty-{i}"}
        start.wait()
        began = time.monotonic()
        replies[i] = httpx.post(f"{live_url}/jobs", json=spec, timeout=120)
        seconds[i] = time.monotonic() - began

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert [r.status_code if r else None for r in replies] == [201] * count
    posted = [r.json() for r in replies if r is not None]
    assert len({p["job_id"] for p in posted}) == count
    reader = market_as(0)
    landed: dict[str, int] = {}
    for event in reader.events(deployment.deploy_block, reader.block_number()):
        if event.name == "JobPosted":
            cid = str(event.args["specCid"])
            landed[cid] = landed.get(cid, 0) + 1
    assert [landed.get(p["spec_cid"]) for p in posted] == [1] * count  # none lost, none twice
    ordered = sorted(seconds)
    print(
        f"\n{count} concurrent POST /jobs: {len(posted)} landed, duplicates "
        f"{sum(landed[p['spec_cid']] - 1 for p in posted)}, p50 {ordered[count // 2]:.2f} s, "
        f"p95 {ordered[int(count * 0.95)]:.2f} s, max {ordered[-1]:.2f} s"
    )
