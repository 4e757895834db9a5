"""POST /jobs/batch: a sweep of specs posted in one postJobs transaction (custodial), and each
way a caller can get it wrong or try to get more than it may: refused whole, nothing posted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from api_helpers import echo_spec
from fastapi.testclient import TestClient

from api.app import create_app
from hepx.api_tokens import Scope, TokenBook
from hepx.chain import JobState, MarketClient
from hepx.config import Settings
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

PRICE = 10**16  # echo_spec's max price: 0.01 ether


def _sweep(n: int, **payment: Any) -> list[dict[str, Any]]:
    specs = []
    for i in range(n):
        spec = echo_spec(**payment)
        spec["params"] = {"message": f"point {i}"}
        specs.append(spec)
    return specs


def test_a_sweep_is_posted_in_one_transaction_with_consecutive_ids(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    market = market_as(0)
    reply = api.post("/jobs/batch", json={"specs": _sweep(3)})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    ids = [job["job_id"] for job in body["jobs"]]
    assert ids == list(range(ids[0], ids[0] + 3))
    assert {job["tx_hash"] for job in body["jobs"]} == {body["tx_hash"]}
    receipt = market.w3.eth.get_transaction_receipt(body["tx_hash"])
    assert receipt["status"] == 1
    for job_id, job in zip(ids, body["jobs"], strict=True):
        on_chain = market.job(job_id)
        assert (on_chain.state, on_chain.escrow) == (JobState.OPEN, PRICE)
        assert market.posted_spec_cid(job_id, receipt["blockNumber"]) == job["spec_cid"]
    assert len({job["spec_cid"] for job in body["jobs"]}) == 3  # each spec stored apart
    shown = api.get(f"/jobs/{ids[1]}").json()  # the index sees them like any job
    assert shown["spec_cid"] == body["jobs"][1]["spec_cid"]


def test_a_batch_is_refused_whole_for_any_bad_spec(
    api: TestClient, market_as: Callable[[int], MarketClient], store: LocalStore, tmp_path: Path
) -> None:
    before = market_as(0).job_count()
    cases = [
        ({"specs": []}, "1 to 200 specs, not 0"),
        ({"specs": [*_sweep(1), {"kind": "echo"}]}, "spec 1:"),
        ({"specs": [*_sweep(1), *_sweep(1, replicas=3, reveal_window=60)]}, "spec 1 has"),
        ({"specs": [*_sweep(1), *_sweep(1, run_window=700)]}, "(claim_window, run_window)"),
        ({"specs": "not a list"}, "malformed batch"),
        ({"specs": _sweep(201)}, "1 to 200 specs, not 201"),
    ]
    for body, message in cases:
        reply = api.post("/jobs/batch", json=body)
        assert reply.status_code == 422, (message, reply.text)
        assert message in reply.text, reply.text
    missing = echo_spec()
    missing["inputs"] = [
        {"name": "data", "cid": "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"}
    ]
    reply = api.post("/jobs/batch", json={"specs": [*_sweep(1), missing]})
    assert reply.status_code == 422 and "spec 1: input 'data'" in reply.text
    assert market_as(0).job_count() == before  # nothing was posted
    # ... nor stored: the batch's specs go into the store together or not at all.
    good = LocalStore(tmp_path / "elsewhere", fsync=False).add_bytes(
        canonical_json(parse_spec(_sweep(1)[0]))
    )
    assert not store.has(good)
    assert api.post("/jobs/batch", json={"specs": _sweep(1)}).status_code == 201
    assert store.has(good)


def test_a_batch_spends_only_what_the_callers_token_has_left(
    make_settings: Callable[..., Settings], market_as: Callable[[int], MarketClient]
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    secret, _ = book.create("sweeper", (Scope.JOBS,), 2 * PRICE, 0)
    before = market_as(0).job_count()
    with TestClient(create_app(settings)) as api:
        assert api.post("/jobs/batch", json={"specs": _sweep(2)}).status_code == 401
        headers = {"Authorization": f"Bearer {secret}"}
        over = api.post("/jobs/batch", json={"specs": _sweep(3)}, headers=headers)
        assert over.status_code == 403 and "over budget" in over.json()["detail"]
        assert market_as(0).job_count() == before
        ok = api.post("/jobs/batch", json={"specs": _sweep(2)}, headers=headers)
        assert ok.status_code == 201, ok.text
    assert book.get("sweeper").spent_wei == 2 * PRICE
    assert market_as(0).job_count() == before + 2


def test_custodial_mode_off_posts_no_batch(
    make_settings: Callable[..., Settings], market_as: Callable[[int], MarketClient]
) -> None:
    before = market_as(0).job_count()
    with TestClient(create_app(make_settings(custodial=False))) as api:
        reply = api.post("/jobs/batch", json={"specs": _sweep(2)})
    assert reply.status_code == 403 and "custodial mode is off" in reply.json()["detail"]
    assert market_as(0).job_count() == before
