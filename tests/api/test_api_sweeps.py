"""POST /jobs/batch with "sweep": true posts one sweep record (postSweep), and GET /jobs/{id}
shows each of its jobs as the chain has it: open in the sweep, claimed and submitted in a
worker's lot (with its own result), cancelled when the requester takes the rest back."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from test_api_batch import PRICE, _sweep

from hepx.chain import MarketClient

RESULT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_a_sweeps_jobs_are_shown_one_by_one_through_their_lots(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    requester, worker = market_as(0), market_as(1)
    specs = _sweep(3)
    for spec in specs:  # specs of their own: the session's other tests post "point i" too
        spec["metadata"]["name"] = "sweep-shown"
    reply = api.post("/jobs/batch", json={"specs": specs, "sweep": True})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    sweep_id = body["sweep_id"]
    ids = [job["job_id"] for job in body["jobs"]]
    assert ids == [sweep_id, sweep_id + 1, sweep_id + 2]
    swept = requester.sweep(sweep_id)
    assert (swept.count, swept.price, swept.requester) == (3, PRICE, requester.sender)
    first = api.get(f"/jobs/{ids[1]}").json()
    assert (first["state"], first["spec_cid"], first["max_price"]) == (
        "open", body["jobs"][1]["spec_cid"], PRICE,
    )  # fmt: skip
    assert [t["event"] for t in first["transitions"]] == ["SweepPosted"]
    found = api.get("/jobs", params={"spec_cid": body["jobs"][2]["spec_cid"]}).json()
    assert [item["job_id"] for item in found["items"]] == [ids[2]]

    lot, count, _ = worker.claim_lot(sweep_id, sweep_id, 2)
    assert (lot, count) == (sweep_id, 2)
    claimed = api.get(f"/jobs/{ids[1]}").json()
    assert (claimed["state"], claimed["worker"]) == ("claimed", worker.sender)
    digests = [bytes([i + 1]) * 32 for i in range(2)]
    worker.submit_lot(lot, [(f"{RESULT}", digests[0]), (f"{RESULT}x", digests[1])])
    done = api.get(f"/jobs/{ids[1]}").json()
    assert (done["state"], done["result_cid"]) == ("submitted", f"{RESULT}x")
    assert [t["event"] for t in done["transitions"]] == ["SweepPosted", "LotClaimed",
                                                         "LotSubmitted"]  # fmt: skip

    requester.refund_sweep(sweep_id)  # the requester takes the untaken job back
    rest = api.get(f"/jobs/{ids[2]}").json()
    assert (rest["state"], rest["escrow"]) == ("cancelled", 0)
    assert api.get(f"/jobs/{ids[0]}").json()["state"] == "submitted"  # its lot's, unchanged
    assert ids[2] in _listed(api, "cancelled")


def _listed(api: TestClient, state: str, wait: float = 10.0) -> list[int]:
    """The jobs GET /jobs lists in ``state``, once its index (synced in the background) has
    the last block."""
    deadline = time.monotonic() + wait
    while True:
        found = [j["job_id"] for j in api.get("/jobs", params={"state": state}).json()["items"]]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_sweep_of_several_prices_is_refused_and_nothing_posted(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    before = market_as(0).job_count()
    specs = [*_sweep(1), *_sweep(1, max_price="0.02 ether")]
    reply = api.post("/jobs/batch", json={"specs": specs, "sweep": True})
    assert reply.status_code == 422 and "max_price differ" in reply.text
    assert market_as(0).job_count() == before


def test_a_job_number_no_sweep_holds_is_still_404(api: TestClient) -> None:
    reply = api.post("/jobs/batch", json={"specs": _sweep(2), "sweep": True})
    beyond = reply.json()["sweep_id"] + 5
    assert api.get(f"/jobs/{beyond}").status_code == 404


def test_a_sweeps_job_opened_to_a_dispute_still_shows_its_spec_and_its_lot(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    requester, worker = market_as(0), market_as(1)
    specs = _sweep(2)
    for spec in specs:
        spec["metadata"]["name"] = "sweep-opened"
    body = api.post("/jobs/batch", json={"specs": specs, "sweep": True}).json()
    sweep_id = body["sweep_id"]
    lot, _, _ = worker.claim_lot(sweep_id, sweep_id, 2)
    digests = [bytes([7]) * 32, bytes([8]) * 32]
    worker.submit_lot(lot, [(RESULT, digests[0]), (f"{RESULT}y", digests[1])])
    requester.open_lot_job(lot, sweep_id + 1, digests)
    shown = api.get(f"/jobs/{sweep_id + 1}").json()
    assert (shown["state"], shown["spec_cid"], shown["result_cid"]) == (
        "submitted", body["jobs"][1]["spec_cid"], f"{RESULT}y",
    )  # fmt: skip
    assert [t["event"] for t in shown["transitions"]] == [
        "SweepPosted", "LotClaimed", "LotSubmitted", "LotJobOpened",
    ]  # fmt: skip
