"""Request limits: writes per client per minute (429 with Retry-After), spec and upload sizes
(413), each tried by a client that goes over them; reads stay unlimited."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from api_helpers import echo_spec
from fastapi.testclient import TestClient

from api.app import create_app
from hepx.api_tokens import Scope, TokenBook
from hepx.config import Settings


@pytest.fixture
def limited(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(
        write_rate_limit=3, rate_limit_loopback=True, max_spec_bytes=4096, max_upload_bytes=1000
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_client_over_its_write_rate_gets_429_with_retry_after(limited: TestClient) -> None:
    answers = [limited.post("/ipfs", content=f"blob {i}".encode()) for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 20
    assert "3 writes per minute per client" in refused.json()["detail"]
    assert limited.get("/health").status_code == 200  # reads are not limited


def test_a_token_holder_is_limited_by_its_quota_not_by_the_write_rate(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(write_rate_limit=3, rate_limit_loopback=True)
    secret, _ = TokenBook(settings.tokens_file).create("site", (Scope.STORE,), 0, 10_000)
    with TestClient(create_app(settings)) as client:
        bearer = {"Authorization": f"Bearer {secret}"}
        answers = [client.post("/ipfs", content=f"r{i}".encode(), headers=bearer) for i in range(6)]
        assert [a.status_code for a in answers] == [201] * 6
        forged = {"Authorization": "Bearer hepx_not-a-token"}
        limited = [client.post("/ipfs", content=b"x", headers=forged) for _ in range(4)]
        assert limited[-1].status_code == 429  # a made-up token is just another client


def test_a_spec_or_upload_over_its_size_is_413_and_nothing_is_stored(
    limited: TestClient, make_settings: Callable[..., Settings]
) -> None:
    spec = echo_spec()
    spec["params"] = {"message": "x" * 5000}
    too_big = limited.post("/jobs", json=spec)
    assert too_big.status_code == 413
    assert "over the limit of 4096 bytes" in too_big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b"y" * 600

    streamed = limited.post("/ipfs", content=chunks())
    assert streamed.status_code == 413
    assert "an upload of" in streamed.json()["detail"]
    assert "over the limit of 1000 bytes" in streamed.json()["detail"]
    declared = limited.post("/ipfs", content=b"z" * 1001)
    assert declared.status_code == 413


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """A low write limit that does not apply on loopback (rate_limit_loopback off)."""
    return make_settings(write_rate_limit=5)


def test_the_limits_leave_a_devnet_on_loopback_alone(live_url: str) -> None:
    answers = [httpx.post(f"{live_url}/ipfs", content=f"b{i}".encode()) for i in range(30)]
    assert [a.status_code for a in answers] == [201] * 30


def test_the_openapi_document_names_the_limit_answers(api: TestClient) -> None:
    responses = api.get("/openapi.json").json()["paths"]["/jobs"]["post"]["responses"]
    assert {"413", "429"} <= set(responses)
