"""Who may make the API spend its key or fill its store, each rule tried by the caller it stops:
an outsider without a token, a token over its budget or quota, a revoked or wrongly scoped
token, two requests racing for the last of a budget, and a relayer handed a tampered or
replayed signed request. On main before this change, the first test's outsider posted a job
paid from the API's key (201)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import echo_spec
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from hepx.anvil import Anvil
from hepx.api_tokens import Scope, TokenBook
from hepx.chain import JobRequest, MarketClient, RequestDeskClient, sign_request
from hepx.config import Settings
from hepx.errors import ConfigError

PRICE = 10**16  # echo_spec's max price: 0.01 ether


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_custodial_mode_off_spends_nothing_of_the_api_key_for_anyone(
    make_settings: Callable[..., Settings], market_as: Callable[[int], MarketClient]
) -> None:
    api_key_owner = market_as(0).sender
    before = market_as(0).balance(api_key_owner)
    # The API still refunds its own lapsed jobs with its key (its maintenance, not a caller's
    # request; earlier tests' jobs may lapse): off here, so the balance shows the requests.
    with _client(make_settings(custodial=False, expire_lapsed=False)) as api:
        posted = api.post("/jobs", json=echo_spec())
        assert posted.status_code == 403
        assert "custodial mode is off" in posted.json()["detail"]
        disputed = api.post("/jobs/1/dispute", json={"panel": 3})
        assert disputed.status_code == 403
    assert market_as(0).balance(api_key_owner) == before


def test_once_a_token_exists_spending_needs_one_with_the_jobs_scope(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    jobs, _ = book.create("gateway", (Scope.JOBS,), 10 * PRICE, 0)
    store_only, _ = book.create("uploader", (Scope.STORE,), 10 * PRICE, 10_000)
    revoked, _ = book.create("former", (Scope.JOBS,), 10 * PRICE, 0)
    book.revoke("former")
    with _client(settings) as api:
        anonymous = api.post("/jobs", json=echo_spec())
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        assert "scope 'jobs'" in anonymous.json()["detail"]
        assert (
            api.post("/jobs", json=echo_spec(), headers=_bearer("hepx_made-up")).status_code == 401
        )
        wrong = api.post("/jobs", json=echo_spec(), headers=_bearer(store_only))
        assert wrong.status_code == 403 and "may not jobs" in wrong.json()["detail"]
        gone = api.post("/jobs", json=echo_spec(), headers=_bearer(revoked))
        assert gone.status_code == 403 and "revoked" in gone.json()["detail"]
        ok = api.post("/jobs", json=echo_spec(), headers=_bearer(jobs))
        assert ok.status_code == 201, ok.text
    assert book.get("gateway").spent_wei == PRICE


def test_a_token_over_budget_is_refused_with_what_remains(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    secret, _ = book.create("small", (Scope.JOBS,), PRICE + PRICE // 2, 0)
    with _client(settings) as api:
        assert api.post("/jobs", json=echo_spec(), headers=_bearer(secret)).status_code == 201
        over = api.post("/jobs", json=echo_spec(), headers=_bearer(secret))
        assert over.status_code == 403
        detail = over.json()["detail"]
        assert "over budget" in detail and f"({PRICE // 2} wei)" in detail
        # A replicated job's escrow is n x max price: 3 x 0.01 does not fit either.
        triple = echo_spec(replicas=3, quorum=2, reveal_window=300)
        assert api.post("/jobs", json=triple, headers=_bearer(secret)).status_code == 403
    assert book.get("small").spent_wei == PRICE


def test_a_refused_post_gives_its_reservation_back(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    secret, _ = book.create("gateway", (Scope.JOBS,), 10 * PRICE, 0)
    with _client(settings) as api:
        # The market refuses a claim window over a year: nothing was spent.
        refused = api.post(
            "/jobs", json=echo_spec(claim_window=400 * 86400), headers=_bearer(secret)
        )
        assert refused.status_code in (409, 422), refused.text
    assert book.get("gateway").spent_wei == 0


def test_two_posts_racing_for_the_last_of_a_budget_spend_it_once(
    make_settings: Callable[..., Settings], live_url: str
) -> None:
    # live_url serves the app of the `settings` fixture, whose home make_settings shares.
    book = TokenBook(make_settings().tokens_file)
    secret, _ = book.create("one-job", (Scope.JOBS,), PRICE, 0)
    answers: list[int] = []

    def post() -> None:
        reply = httpx.post(
            f"{live_url}/jobs", json=echo_spec(), headers=_bearer(secret), timeout=60
        )
        answers.append(reply.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201, 403]
    assert book.get("one-job").spent_wei == PRICE


def test_uploads_need_a_store_token_within_its_quota(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    secret, _ = book.create("uploader", (Scope.STORE,), 0, 100)
    jobs_only, _ = book.create("poster", (Scope.JOBS,), PRICE, 10**6)
    with _client(settings) as api:
        assert api.post("/ipfs", content=b"x" * 10).status_code == 401
        assert api.post("/ipfs", content=b"x" * 10, headers=_bearer(jobs_only)).status_code == 403
        assert api.post("/ipfs", content=b"a" * 60, headers=_bearer(secret)).status_code == 201
        over = api.post("/ipfs", content=b"b" * 60, headers=_bearer(secret))
        assert over.status_code == 403
        assert "40 of 100 bytes remain" in over.json()["detail"]
        assert api.get("/health").status_code == 200  # reads need nothing
    assert book.get("uploader").uploaded == 60


def test_beyond_loopback_custodial_needs_tokens_and_stores_need_one(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError, match="custodial mode on 0.0.0.0"):
        create_app(make_settings(api_host="0.0.0.0"))
    # Not custodial: it starts, but storing on a public address needs a token.
    with _client(make_settings(api_host="0.0.0.0", custodial=False)) as api:
        assert api.post("/ipfs", content=b"spam").status_code == 401
    settings = make_settings(api_host="0.0.0.0")
    TokenBook(settings.tokens_file).create("gateway", tuple(Scope), PRICE, 100)
    with _client(settings) as api:
        assert api.post("/jobs", json=echo_spec()).status_code == 401


def _prepare(api: TestClient, requester: str, spec: dict[str, Any]) -> dict[str, Any]:
    reply = api.post(f"/jobs/requests?requester={requester}", json=spec)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _signed(prepared: dict[str, Any], key: str) -> dict[str, Any]:
    request = JobRequest.from_message(prepared["typed_data"]["message"])
    signature = sign_request(request, prepared["chain_id"], prepared["desk"], key)
    return {"request": prepared["typed_data"]["message"], "signature": signature}


def test_a_signed_request_is_relayed_in_the_signers_name_from_its_deposit(
    make_settings: Callable[..., Settings],
    market_as: Callable[[int], MarketClient],
    node: Anvil,
) -> None:
    user = node.accounts[6]
    market = market_as(0)
    relayer_before = market.balance(market.sender)
    with _client(make_settings(custodial=False)) as api:
        prepared = _prepare(api, user.address, echo_spec())
        assert prepared["escrow"] == PRICE and prepared["deposit"] == 0
        assert prepared["typed_data"]["primaryType"] == "JobRequest"
        desk = RequestDeskClient(node.url, prepared["desk"], user.private_key)
        desk.deposit(PRICE)
        body = _signed(prepared, user.private_key)
        posted = api.post("/jobs", json=body)
        assert posted.status_code == 201, posted.text
        job = api.get(f"/jobs/{posted.json()['job_id']}").json()
        assert job["requester"].lower() == user.address.lower() and job["escrow"] == PRICE
        assert desk.deposit_of(user.address) == 0
        # The relayer (the API's key) paid gas, not the escrow.
        spent = relayer_before - market.balance(market.sender)
        assert 0 < spent < PRICE // 10

        replayed = api.post("/jobs", json=body)
        assert replayed.status_code == 409 and replayed.json()["error"] == "DeskNonceUsed"


def _big_upload(api: TestClient) -> str:
    """The CID of a stored file larger than any spec."""
    stored = api.post("/ipfs", content=b"x" * (2 << 20))
    assert stored.status_code == 201, stored.text
    return str(stored.json()["cid"])


def test_a_tampered_signed_request_is_refused_and_costs_the_signer_nothing(
    make_settings: Callable[..., Settings], node: Anvil
) -> None:
    user = node.accounts[7]
    with _client(make_settings(custodial=False)) as api:
        prepared = _prepare(api, user.address, echo_spec())
        desk = RequestDeskClient(node.url, prepared["desk"], user.private_key)
        desk.deposit(5 * PRICE)
        body = _signed(prepared, user.private_key)
        raised = {**body, "request": {**body["request"]}}
        raised["request"]["terms"] = {**body["request"]["terms"], "maxPrice": str(5 * PRICE)}
        refused = api.post("/jobs", json=raised)
        assert refused.status_code == 422
        # The spec says 0.01 ether: terms that differ from it are refused before the chain.
        assert "differ from the spec" in refused.json()["detail"]
        later = {**body, "request": {**body["request"], "expiry": str(2**40)}}
        refused = api.post("/jobs", json=later)
        assert refused.status_code == 422 and "signature is not" in refused.json()["detail"]
        garbled = api.post(
            "/jobs", json={"request": {"nonce": "1"}, "signature": body["signature"]}
        )
        assert garbled.status_code == 422 and "malformed job request" in garbled.json()["detail"]
        for signature, says in (
            ("0x1234", "malformed signed request: signature"),
            ("0x" + "00" * 65, "the signature cannot be read"),
        ):
            bad = api.post("/jobs", json={**body, "signature": signature})
            assert bad.status_code == 422 and says in bad.json()["detail"], bad.text
        for spec_cid, says in (
            ("bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4", "not in this API's"),
            (_big_upload(api), "not a spec"),
            ("not-a-cid", "specCid"),
        ):
            named = {**body, "request": {**body["request"], "specCid": spec_cid}}
            bad = api.post("/jobs", json=named)
            assert bad.status_code == 422 and says in bad.json()["detail"], bad.text
        assert desk.deposit_of(user.address) == 5 * PRICE


def test_the_openapi_document_shows_the_token_scheme_on_spending_and_storing_routes(
    api: TestClient,
) -> None:
    document = api.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["apiToken"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    paths = document["paths"]
    for path, method in (("/jobs", "post"), ("/ipfs", "post"), ("/jobs/{job_id}/dispute", "post")):
        assert paths[path][method]["security"] == [{"apiToken": []}], path
        assert {"401", "403"} <= set(paths[path][method]["responses"]), path
    assert "security" not in paths["/jobs/{job_id}"]["get"]


def test_the_explorer_shows_each_tokens_budget_and_use_but_never_its_secret(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    book = TokenBook(settings.tokens_file)
    secret, _ = book.create("gateway", tuple(Scope), 3 * PRICE, 1000)
    with _client(settings) as api:
        assert api.post("/jobs", json=echo_spec(), headers=_bearer(secret)).status_code == 201
        page = api.get("/tokens")
    assert page.status_code == 200
    assert secret not in page.text and book.path.name not in page.text
    row = page.text.split('data-token="gateway"', 1)[1].split("</tr>", 1)[0]
    assert "0.01 ETH" in row.split('class="spent"', 1)[1]  # spent
    assert "0.02 ETH" in row.split('class="remaining"', 1)[1]  # remaining


def test_hepx_api_run_refuses_an_open_wallet_beyond_loopback(tmp_path: Path) -> None:
    env = {"HEPX_HOME": str(tmp_path), "HEPX_PRIVATE_KEY": "0x" + "11" * 32}
    refused = CliRunner().invoke(cli_app, ["run", "--host", "0.0.0.0", "--custodial"], env=env)
    assert refused.exit_code == 2
    assert "custodial mode on 0.0.0.0" in refused.output
    assert "hepx api token new" in refused.output


def test_one_signed_request_sent_twice_at_once_lands_once(live_url: str, node: Anvil) -> None:
    user = node.accounts[8]
    prepared = httpx.post(
        f"{live_url}/jobs/requests", params={"requester": user.address}, json=echo_spec()
    ).json()
    RequestDeskClient(node.url, prepared["desk"], user.private_key).deposit(2 * PRICE)
    body = _signed(prepared, user.private_key)
    answers: list[int] = []

    def relay() -> None:
        answers.append(httpx.post(f"{live_url}/jobs", json=body, timeout=60).status_code)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201, 409]
    desk = RequestDeskClient(node.url, prepared["desk"])
    assert desk.deposit_of(user.address) == PRICE  # one escrow taken, not two


def test_a_request_for_no_address_or_an_erc20_job_is_refused_before_anything_is_signed(
    api: TestClient, node: Anvil
) -> None:
    bad = api.post("/jobs/requests?requester=nobody", json=echo_spec())
    assert bad.status_code == 422 and "is not an address" in bad.json()["detail"]
    token_job = echo_spec(token="0x" + "12" * 20)
    refused = api.post(f"/jobs/requests?requester={node.accounts[8].address}", json=token_job)
    assert refused.status_code == 422 and "ETH jobs only" in refused.json()["detail"]
