"""The explorer on a real anvil and store: /jobs from the index, /events as SSE, the pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from api_helpers import echo_spec, seat_replicas, stake_for_draws
from fastapi.testclient import TestClient

from api.app import create_app
from hepx.anvil import Anvil
from hepx.chain import MarketClient
from hepx.config import Settings
from hepx.deployment import Deployment
from hepx.store import LocalStore


@pytest.fixture
def api(make_settings: Callable[..., Settings]) -> TestClient:
    return TestClient(create_app(make_settings()))


def _post(api: TestClient, **payment: Any) -> dict[str, Any]:
    reply = api.post("/jobs", json=echo_spec(**payment))
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _worker(node: Anvil, deployment: Deployment) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=node.accounts[5].private_key)


def test_job_list_comes_from_the_index_with_state_kind_and_address_filters(
    api: TestClient, node: Anvil, deployment: Deployment
) -> None:
    first, second = _post(api), _post(api)
    worker = _worker(node, deployment)
    worker.claim(second["job_id"], 1000)

    listing = api.get("/jobs", params={"per_page": 500}).json()
    by_id = {job["job_id"]: job for job in listing["items"]}
    assert by_id[first["job_id"]]["state"] == "open"
    assert by_id[first["job_id"]]["kind"] == "echo"  # read from the spec in the store
    assert by_id[second["job_id"]]["state"] == "claimed"
    assert by_id[second["job_id"]]["worker"] == worker.sender

    claimed = api.get("/jobs", params={"state": "claimed", "worker": worker.sender.lower()})
    assert [j["job_id"] for j in claimed.json()["items"]] == [second["job_id"]]
    assert api.get("/jobs", params={"kind": "hep.pythia"}).json()["total"] == 0
    one = api.get("/jobs", params={"per_page": 1}).json()
    assert one["items"][0]["job_id"] == second["job_id"]  # newest first
    assert one["pages"] == one["total"] >= 2


def test_job_list_refuses_unknown_state_and_bad_address(api: TestClient) -> None:
    reply = api.get("/jobs", params={"state": "finished"})
    assert reply.status_code == 422
    assert "unknown state 'finished'" in reply.json()["detail"]
    reply = api.get("/jobs", params={"requester": "bob"})
    assert reply.status_code == 422
    assert "requester 'bob' is not an address" in reply.json()["detail"]
    # Found by schemathesis: a page number past SQLite's int64 offset was a 500.
    reply = api.get("/jobs", params={"page": 5030193234915530291324467019776})
    assert reply.status_code == 422
    assert "page" in str(reply.json()["detail"])


def test_events_stream_decoded_market_events_as_sse(api: TestClient) -> None:
    posted = _post(api)
    with api.stream(
        "GET", "/events", params={"after": 0, "job": posted["job_id"], "limit": 2}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = [
        json.loads(line.removeprefix("data: "))
        for line in body.splitlines()
        if line.startswith("data: ")
    ]
    assert [e["event"] for e in events] == ["JobPosted", "Payment"]
    assert events[0]["tx_hash"] == posted["tx_hash"]
    assert events[0]["args"]["specCid"] == posted["spec_cid"]
    assert all(e["job_id"] == posted["job_id"] for e in events)
    ids = [int(line.removeprefix("id: ")) for line in body.splitlines() if line.startswith("id: ")]
    assert ids == sorted(ids) and len(ids) == 2


def test_job_page_shows_timeline_gas_and_payments_with_links(
    api: TestClient, node: Anvil, deployment: Deployment
) -> None:
    posted = _post(api)
    job_id = posted["job_id"]
    worker = _worker(node, deployment)
    claim = worker.claim(job_id, 1000)
    page = api.get(f"/job/{job_id}")
    assert page.status_code == 200
    html = page.text
    assert f'href="/tx/{posted["tx_hash"]}"' in html
    assert f'href="/tx/{claim.tx_hash}"' in html
    assert f'href="/address/{worker.sender}"' in html
    assert f">{claim.gas_used}<" in html  # the claim's gas, from its receipt
    assert 'data-event="JobClaimed"' in html
    assert "escrow" in html  # the Payment of the posting
    # A fragment request (the live refresh) carries no page chrome.
    fragment = api.get(f"/job/{job_id}", headers={"X-Hepx-Fragment": "1"}).text
    assert "<html" not in fragment and 'data-event="JobClaimed"' in fragment


def test_job_page_and_json_name_slash_payments(
    api: TestClient, node: Anvil, deployment: Deployment
) -> None:
    # Bug on main: the page had its own list of four payment reasons, so a slash showed as
    # "4". Now every label comes from the contract's PaymentReason enum.
    stake = 10**15
    workers = [
        MarketClient.from_deployment(deployment, private_key=node.accounts[i].private_key)
        for i in (7, 8, 9)
    ]
    stake_for_draws(workers, stake)
    job_id = _post(api, max_price=1000, replicas=3, quorum=2, min_stake=stake)["job_id"]
    seat_replicas(workers, job_id, 1000)
    digest = b"\x07" * 32
    for i, worker in enumerate(workers[:2]):  # the third never commits
        worker.commit_result(job_id, worker.commitment(job_id, digest, bytes([i + 1]) * 32))
    node_rpc = workers[0].w3.provider
    node_rpc.make_request("evm_increaseTime", [601])  # type: ignore[arg-type]
    node_rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    for i, worker in enumerate(workers[:2]):
        worker.reveal_result(job_id, digest, bytes([i + 1]) * 32, "bafyslashtest")
    node_rpc.make_request("evm_increaseTime", [301])  # type: ignore[arg-type]
    node_rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    workers[0].finalize(job_id)

    payments = api.get(f"/jobs/{job_id}").json()["payments"]
    slashed = [p for p in payments if p["reason"] == "slash"]
    # The no-show's stake is split between the two replicas of the quorum.
    assert sorted(p["payee"] for p in slashed) == sorted(w.sender for w in workers[:2])
    assert sum(p["amount"] for p in slashed) == stake
    assert {p["reason"] for p in payments} <= {
        "escrow", "worker_payment", "refund", "slash", "withdrawal"
    }  # fmt: skip
    rows = unescape(api.get(f"/job/{job_id}").text)
    assert "<td>slash</td>" in rows and "<td>worker payment</td>" in rows
    assert "<td>4</td>" not in rows


def test_tx_page_and_json_decode_the_market_call_and_events(api: TestClient) -> None:
    posted = _post(api)
    decoded = api.get(f"/explorer/tx/{posted['tx_hash']}").json()
    assert decoded["call"]["function"] == "postJob"
    assert decoded["call"]["signature"] == "postJob(string,uint256,uint256)"
    assert decoded["call"]["args"]["specCid"] == posted["spec_cid"]
    assert [log["event"] for log in decoded["logs"]] == ["JobPosted", "Payment"]
    assert decoded["ots"] is True and decoded["internal"][0]["type"] == "CALL"
    html = api.get(f"/tx/{posted['tx_hash']}").text
    assert "postJob(string,uint256,uint256)" in html and 'data-event="JobPosted"' in html
    missing = api.get("/tx/0x" + "ab" * 32)
    assert missing.status_code == 404 and "no transaction" in missing.text
    assert api.get("/tx/0x1234").status_code == 422


def test_block_address_and_workers_pages_answer(
    api: TestClient, node: Anvil, deployment: Deployment
) -> None:
    posted = _post(api)
    worker = _worker(node, deployment)
    claim = worker.claim(posted["job_id"], 1000)
    block = api.get(f"/block/{claim.block_number}").text
    assert f'href="/tx/{claim.tx_hash}"' in block and ">claim<" in block
    address = api.get(f"/address/{worker.sender}").text
    assert f'href="/job/{posted["job_id"]}"' in address
    assert "ots_searchTransactionsBefore" in address  # anvil has ots_*: the history is shown
    workers = api.get("/explorer/workers").json()["workers"]
    mine = next(w for w in workers if w["address"] == worker.sender)
    assert mine["jobs_won"] >= 1
    assert mine["stake"] == worker.worker(worker.sender).stake  # from the registry
    assert worker.sender in api.get("/workers").text
    assert api.get("/address/nope").status_code == 422
    assert api.get("/block/999999999").status_code == 404


def test_result_page_previews_text_json_and_links_files(
    api: TestClient, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    result = tmp_path / "result"
    (result / "outputs").mkdir(parents=True)
    (result / "outputs" / "message.txt").write_text("hello <world>\n")
    (result / "provenance.json").write_text('{"job_id": 7, "worker": "0xabc"}')
    cid = LocalStore(make_settings().store_path).add_dir(result)
    html = api.get(f"/result/{cid}").text
    assert "hello &lt;world&gt;" in html  # escaped text preview
    assert '"job_id": 7,\n  "worker"' in unescape(html)  # pretty-printed JSON
    assert f'href="/ipfs/{cid}/outputs/message.txt"' in html
    assert api.get("/result/bafkreinotacid").status_code == 400


def test_status_reports_index_progress_and_ots(api: TestClient) -> None:
    _post(api)
    status = api.get("/explorer/status").json()
    assert status["synced_block"] == status["head"]
    assert status["ots"] is True
    assert status["jobs"] >= 1 and status["states"]["open"] >= 1


def test_result_page_draws_root_histograms_as_png(
    api: TestClient, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    np = pytest.importorskip("numpy")
    uproot = pytest.importorskip("uproot")
    pytest.importorskip("matplotlib")
    result = tmp_path / "result"
    result.mkdir()
    with uproot.recreate(result / "hists.root") as root_file:
        root_file["mass"] = np.histogram(np.linspace(0, 10, 500) ** 1.5, bins=20)
    cid = LocalStore(make_settings().store_path).add_dir(result)
    html = api.get(f"/result/{cid}").text
    file_cid = LocalStore(make_settings().store_path).resolve(cid, "hists.root")
    assert f'src="/plot/{file_cid}/mass.png"' in html
    png = api.get(f"/plot/{file_cid}/mass.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = (
        int.from_bytes(png.content[16:20], "big"),
        int.from_bytes(png.content[20:24], "big"),
    )
    assert (width, height) == (640, 360)
    assert api.get(f"/plot/{file_cid}/nope.png").status_code == 404


def test_metrics_report_jobs_by_state_lag_latency_and_earnings(
    api: TestClient, node: Anvil, deployment: Deployment
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    posted = _post(api)
    worker = _worker(node, deployment)
    worker.claim(posted["job_id"], 1000)
    reply = api.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }
    jobs = api.get("/jobs", params={"per_page": 500}).json()["items"]
    for state in ("open", "claimed"):
        expected = sum(1 for job in jobs if job["state"] == state)
        assert got[("hepx_jobs", (("state", state),))] == expected
    assert got[("hepx_chain_head_lag_blocks", ())] == 0
    assert got[("hepx_index_up", ())] == 1
    claimed = sum(1 for job in jobs if job["worker"])
    assert got[("hepx_job_claim_latency_blocks_count", ())] == claimed
    assert got[("hepx_worker_jobs", (("outcome", "in_progress"), ("worker", worker.sender)))] >= 1
    assert got[("hepx_store_bytes", ())] > 0


def test_pages_say_so_when_the_node_has_no_otterscan_methods(api: TestClient) -> None:
    posted = _post(api)
    view = api.app.state.services.index.view()  # type: ignore[attr-defined]
    view._ots = False  # as on a node that answers ots_getApiLevel with "method not found"
    decoded = api.get(f"/explorer/tx/{posted['tx_hash']}").json()
    assert decoded["ots"] is False and decoded["internal"] is None
    assert decoded["call"]["function"] == "postJob"  # eth_* alone still decodes the market
    assert (
        "no ots_* (Otterscan) methods: internal calls are not shown"
        in api.get(f"/tx/{posted['tx_hash']}").text
    )
    address = api.get(f"/address/{decoded['from']}").text
    assert "transaction history is not available" in address
    assert f'href="/job/{posted["job_id"]}"' in address  # the index still lists its jobs


def test_job_page_scans_logs_from_the_posted_block_once_the_index_has_the_job(
    api: TestClient, deployment: Deployment
) -> None:
    client = api.app.state.services.client()  # type: ignore[attr-defined]
    client.w3.provider.make_request("anvil_mine", [hex(30)])  # posted well after the deploy
    job_id = _post(api)["job_id"]
    starts: list[int] = []
    scan = client.events

    def recording(from_block: int, to_block: int, job_id: int | None = None) -> Any:
        starts.append(from_block)
        return scan(from_block, to_block, job_id)

    client.events = recording
    unindexed = api.get(f"/jobs/{job_id}").json()  # the index has not synced since the post
    assert api.get("/jobs").status_code == 200  # syncs it
    indexed = api.get(f"/jobs/{job_id}").json()
    posted_block = indexed["transitions"][0]["block"]
    assert posted_block > deployment.deploy_block + 30
    assert starts == [deployment.deploy_block, posted_block]
    assert indexed == unindexed  # the same transitions and payments either way
