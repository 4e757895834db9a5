"""POST /jobs/{id}/dispute and the dispute in GET /jobs/{id}, against the real market."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml
from api_helpers import echo_spec
from fastapi.testclient import TestClient

from hepx.chain import MarketClient

PRICE = 10**15
EXAMPLES = Path(__file__).parents[2] / "examples"


def _submitted(api: TestClient, market_as: Callable[[int], MarketClient], spec: object) -> int:
    job_id = int(api.post("/jobs", json=spec).json()["job_id"])
    worker = market_as(2)
    worker.claim(job_id, PRICE)
    worker.submit_result(job_id, api.post("/ipfs", content=b"made up\n").json()["cid"],
                         bytes(32))  # fmt: skip
    return job_id


def _page(api: TestClient, job_id: int, showing: str) -> str:
    """The explorer's page of the job once it shows ``showing`` (the index syncs in the
    background, a poll interval behind the chain)."""
    deadline = time.monotonic() + 10
    while True:
        page = api.get(f"/job/{job_id}")
        if page.status_code == 200 and showing in page.text:
            return page.text
        assert time.monotonic() < deadline, f"job {job_id}'s page: {page.status_code}"
        time.sleep(0.1)


def test_a_dispute_is_opened_with_its_bond_and_shown_on_the_job(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    job_id = _submitted(api, market_as, echo_spec())
    assert api.get(f"/jobs/{job_id}").json()["not_disputable"] is None

    opened = api.post(f"/jobs/{job_id}/dispute", json={"panel": 5})

    assert opened.status_code == 201, opened.text
    dispute = opened.json()["dispute"]
    assert (dispute["panel"], dispute["bond"], dispute["state"]) == (5, 5 * PRICE, "drawing")
    assert dispute["verdict"] == "none" and dispute["seats"] == []
    job = api.get(f"/jobs/{job_id}").json()
    assert job["state"] == "disputed"
    assert job["transitions"][-1]["event"] == "JobDisputed"
    assert job["dispute"] == dispute
    page = _page(api, job_id, 'id="dispute"')  # the explorer's job page
    assert 'id="dispute"' in page and "drawing" in page and "no verifier drawn yet" in page
    again = api.post(f"/jobs/{job_id}/dispute")  # a second dispute of the same result
    assert again.status_code == 409 and "is disputed" in again.json()["detail"]


def test_a_dispute_the_market_would_refuse_is_refused_with_the_reason(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    open_job = api.post("/jobs", json=echo_spec()).json()["job_id"]
    refused = api.post(f"/jobs/{open_job}/dispute")
    assert refused.status_code == 409
    assert "is open: only a submitted result can be disputed" in refused.json()["detail"]
    job_id = _submitted(api, market_as, echo_spec())
    even = api.post(f"/jobs/{job_id}/dispute", json={"panel": 4})
    assert even.status_code == 422 and even.json()["error"] == "CourtInvalidPanel"
    assert api.post(f"/jobs/{job_id}/dispute", json={"panel": 11}).status_code == 422
    assert api.post("/jobs/999999/dispute").status_code == 404


def test_an_llm_job_says_it_is_not_disputable_and_a_dispute_is_refused(
    api: TestClient, market_as: Callable[[int], MarketClient]
) -> None:
    spec = yaml.safe_load((EXAMPLES / "llm-chat.yaml").read_text())
    job_id = _submitted(api, market_as, spec)
    why = api.get(f"/jobs/{job_id}").json()["not_disputable"]
    assert why is not None and "LLM" in why
    assert f"no: {why}".replace("'", "&#39;") in _page(api, job_id, 'id="disputable"')
    refused = api.post(f"/jobs/{job_id}/dispute")
    assert refused.status_code == 409 and "not disputable" in refused.json()["detail"]


def test_a_dispute_without_a_key_to_pay_the_bond_is_503(
    make_settings: Callable[..., object], market_as: Callable[[int], MarketClient]
) -> None:
    from api.app import create_app

    with TestClient(create_app(make_settings(private_key=None))) as keyless:  # type: ignore[arg-type]
        reply = keyless.post("/jobs/1/dispute")
    assert reply.status_code == 503 and "bond" in reply.json()["detail"]
