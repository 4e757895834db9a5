"""The hepx REST API: post jobs, follow them, and an IPFS-style gateway to the content store.

Routes that touch web3 or the store are plain ``def`` (FastAPI runs them in its threadpool);
the two that read a raw request body are ``async`` and hand the work to the threadpool.
hepx errors become HTTP answers in one place (:func:`_error_response`).
"""

from __future__ import annotations

import html
import logging
import mimetypes
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from web3.exceptions import BadFunctionCallOutput

from api.gateway import requested_format, serve_format
from api.models import (
    ChainHealth,
    CidOut,
    DirEntryOut,
    DirListingOut,
    ErrorOut,
    HealthOut,
    JobOut,
    JobPostedOut,
    PaymentOut,
    ResultOut,
    Transition,
)
from hepx.chain import JobState, MarketClient, MarketEvent
from hepx.config import Settings, load_settings
from hepx.deployment import Deployment
from hepx.errors import (
    BlockCorrupted,
    BlockNotFound,
    ChainError,
    ChainUnavailable,
    ConfigError,
    HepxError,
    InvalidCid,
    SpecError,
    StoreError,
    TxReverted,
)
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore, PathNotFound, open_backend
from hepx.terms import post_spec

log = logging.getLogger("hepx.api")

# An API request should fail fast when the chain is down, not after the client's long backoff.
_RPC_RETRIES = 3
_RPC_BACKOFF = 0.2
_UINT256_MAX = 2**256 - 1
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_SETTLING_EVENTS = ("JobSettled", "JobCancelled", "JobExpired", "ReplicasSettled", "JobNoQuorum")
# Mirrors IJobMarket.PaymentReason / PaymentDirection.
_PAYMENT_REASONS = (
    "escrow",
    "worker_payment",
    "refund",
    "withdrawal",
    "slash",
    "stake_deposit",
    "stake_withdrawal",
)
_PAYMENT_DIRECTIONS = ("in", "credit", "out")
# Reverts of postJob that mean the request itself is wrong, not the market's state.
_INPUT_ERRORS = (
    "JobMarketInvalidWindow",
    "JobMarketInvalidEscrow",
    "JobMarketEmptyCid",
    "JobMarketPriceAboveMax",
)
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_IMMUTABLE = "public, max-age=29030400, immutable"


class Services:
    """What the routes share: settings, the deployment, one MarketClient and the store.

    The deployment file is read lazily and re-read when it changes, so the API starts before
    the contracts are deployed and follows a redeploy without a restart.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._deployment: Deployment | None = None
        self._deployment_mtime: int | None = None
        self._client: MarketClient | None = None
        self._chain_checked = False
        self._store: LocalStore | None = None
        # The block a job was posted in, if something knows it (the explorer's index does):
        # a job's page scans its logs from there instead of from the deploy block.
        self.posted_block: Callable[[int], int | None] = lambda job_id: None

    def deployment(self) -> Deployment:
        path = self.settings.deployment_path
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = None
        with self._lock:
            if self._deployment is None or mtime != self._deployment_mtime:
                self._deployment = Deployment.load(path)  # ConfigError says what to do
                self._deployment_mtime = mtime
                self._client = None
                self._chain_checked = False
            return self._deployment

    def client(self) -> MarketClient:
        deployment = self.deployment()
        with self._lock:
            if self._client is None:
                key = self.settings.private_key
                try:
                    self._client = MarketClient(
                        self.settings.rpc_url,
                        deployment.job_market,
                        key.get_secret_value() if key else None,
                        retries=_RPC_RETRIES,
                        backoff=_RPC_BACKOFF,
                    )
                except ValueError as exc:  # the key; never echo it
                    raise ConfigError(
                        "HEPX_PRIVATE_KEY is not a valid private key: expected 32 bytes as hex"
                    ) from exc
            return self._client

    def checked_client(self) -> MarketClient:
        """The client, after checking once that the RPC serves the deployment's chain."""
        client = self.client()
        if not self._chain_checked:
            deployment = self.deployment()
            chain_id = client.chain_id()
            if chain_id != deployment.chain_id:
                raise ConfigError(
                    f"RPC {self.settings.rpc_url} serves chain {chain_id} but the deployment "
                    f"file {self.settings.deployment_path} is for chain {deployment.chain_id}: "
                    "point HEPX_RPC_URL at the right chain or redeploy"
                )
            self._chain_checked = True
        return client

    def store(self) -> LocalStore:
        with self._lock:
            if self._store is None:
                self._store = open_backend(self.settings)  # HEPX_STORE_BACKEND picks it
            return self._store


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]
router = APIRouter()


# ---------------------------------------------------------------- errors


def _error_response(exc: HepxError) -> JSONResponse:
    """The one mapping from hepx errors to HTTP status codes."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, SpecError):
        status = 422
    elif isinstance(exc, InvalidCid):
        status = 400
    elif isinstance(exc, BlockNotFound | PathNotFound):
        status = 404
    elif isinstance(exc, BlockCorrupted):
        status, body["detail"] = 502, f"stored {exc}: the store is damaged or was tampered with"
    elif isinstance(exc, StoreError):
        status = 500
    elif isinstance(exc, ConfigError):
        status = 503
    elif isinstance(exc, ChainUnavailable):
        status, body["detail"] = 503, f"chain unavailable: {exc}"
    elif isinstance(exc, TxReverted):
        status = 422 if exc.error in _INPUT_ERRORS else 409
        body["error"] = exc.error
        body["args"] = [_json_safe(a) for a in exc.error_args]
    elif isinstance(exc, ChainError):
        status = 502
    else:
        status = 500
    if status >= 500:
        log.warning("request failed status=%d error=%s", status, body["detail"])
    return JSONResponse(body, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_hepx_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HepxError)
        return _error_response(exc)

    async def on_no_contract(request: Request, exc: Exception) -> Response:
        # web3 raises this when no code answers at the address: a stale deployment file.
        services = _services(request)
        return JSONResponse(
            {
                "detail": f"no JobMarket contract answers on {services.settings.rpc_url} at the "
                f"address in {services.settings.deployment_path} (was the chain restarted?): "
                "redeploy the contracts"
            },
            status_code=503,
        )

    app.add_exception_handler(HepxError, on_hepx_error)
    app.add_exception_handler(BadFunctionCallOutput, on_no_contract)


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 404, 409, 415, 422, 502, 503)
}


# ---------------------------------------------------------------- jobs


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and friends become plain numbers
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def _check_media_type(body: bytes, content_type: str) -> None:
    media = content_type.split(";")[0].strip().lower()
    if not (media in ("", "application/json", *_YAML_TYPES) or media.endswith("+json")):
        raise HTTPException(
            415,
            f"unsupported content type {media!r}: send the spec as application/json "
            "or application/yaml",
        )
    if not body.strip():
        raise HTTPException(422, "empty body: send a job spec as JSON or YAML")


def _post_job(services: Services, body: bytes, content_type: str) -> JobPostedOut:
    _check_media_type(body, content_type)
    spec = parse_spec(body)  # reads JSON and YAML, refuses duplicate keys
    store = services.store()
    missing: list[str] = []
    for item in spec.inputs:
        try:
            present = store.has(item.cid)
        except InvalidCid as exc:
            raise HTTPException(422, f"input {item.name!r}: {exc}") from exc
        if not present:
            missing.append(f"input {item.name!r}: CID {item.cid} is not in the store")
    if missing:
        raise HTTPException(
            422, "; ".join(missing) + "; add it with `hepx store add` or POST /ipfs"
        )
    if services.settings.private_key is None:
        raise HTTPException(503, "no requester key configured (HEPX_PRIVATE_KEY)")
    client = services.checked_client()
    spec_cid = store.add_bytes(canonical_json(spec))
    payment = spec.payment
    job_id, tx = post_spec(client, spec_cid, spec)  # fast path, or with terms (mode, replicas...)
    # Keep the spec and inputs through `hepx store gc` past the job's windows plus retention.
    windows = int(payment.claim_window) + int(payment.run_window)
    keep = time.time() + windows + services.settings.pin_retention
    store.pin(f"job-{job_id}-spec", spec_cid, keep)
    for i, ref in enumerate(spec.inputs):
        store.pin(f"job-{job_id}-input-{i}", ref.cid, keep)
    log.info(
        "job posted job_id=%d tx=%s spec_cid=%s requester=%s max_price=%d",
        job_id,
        tx.tx_hash,
        spec_cid,
        client.sender,
        int(payment.max_price_wei),
    )
    return JobPostedOut(job_id=job_id, tx_hash=tx.tx_hash, spec_cid=spec_cid)


@router.post(
    "/jobs",
    status_code=201,
    summary="Post a job: store its spec and put it on chain with the max price in escrow",
    response_model=JobPostedOut,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A job spec (schema at GET /jobs/schema), as JSON or YAML",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_job(request: Request, services: ServicesDep) -> JobPostedOut:
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    return await run_in_threadpool(_post_job, services, body, content_type)


@router.get("/jobs/schema", summary="JSON schema of a job spec")
def job_schema() -> dict[str, Any]:
    from hepx.spec import json_schema

    return json_schema()


def _job_events(services: Services, job_id: int) -> tuple[Any, list[MarketEvent]]:
    client = services.client()
    job = client.job(job_id)
    if job.state is JobState.NONE:
        raise HTTPException(
            404, f"job {job_id} does not exist (the market has {client.job_count()} jobs)"
        )
    head = client.block_number()
    start = services.posted_block(job_id) or services.deployment().deploy_block
    return job, client.events(start, head, job_id=job_id)


JobIdParam = Annotated[
    int, PathParam(ge=0, le=_UINT256_MAX, description="The job's id on chain (from 1)")
]


@router.get(
    "/jobs/{job_id}",
    summary="A job's state on chain, with every transition and payment",
    response_model=JobOut,
    responses=_ERRORS,
)
def get_job(job_id: JobIdParam, services: ServicesDep) -> JobOut:
    job, events = _job_events(services, job_id)
    transitions: list[Transition] = []
    payments: list[PaymentOut] = []
    spec_cid = result_cid = settle_tx = None
    max_price: int | None = None
    for ev in events:
        if ev.name == "Payment":
            reason, direction = int(ev.args["reason"]), int(ev.args["direction"])
            payments.append(
                PaymentOut(
                    payee=str(ev.args["payee"]),
                    amount=int(ev.args["amount"]),
                    reason=_label(_PAYMENT_REASONS, reason),
                    direction=_label(_PAYMENT_DIRECTIONS, direction),
                    block=ev.block_number,
                    tx_hash=ev.tx_hash,
                )
            )
            continue
        transitions.append(
            Transition(
                event=ev.name,
                block=ev.block_number,
                tx_hash=ev.tx_hash,
                log_index=ev.log_index,
                args=_json_safe(ev.args),
            )
        )
        if ev.name == "JobPosted":
            spec_cid, max_price = str(ev.args["specCid"]), int(ev.args["maxPrice"])
        elif ev.name == "ResultSubmitted":
            result_cid = str(ev.args["resultCid"])
        if ev.name in _SETTLING_EVENTS:
            settle_tx = ev.tx_hash
    result_cid = result_cid or _agreed_result(events)
    return JobOut(
        job_id=job_id,
        state=job.state.label,
        requester=job.requester,
        worker=job.worker,
        price=job.price,
        max_price=max_price,
        escrow=job.escrow,
        deadline=job.deadline,
        run_window=job.run_window,
        spec_cid=spec_cid,
        result_cid=result_cid,
        settle_tx=settle_tx,
        transitions=transitions,
        payments=payments,
    )


def _agreed_result(events: list[MarketEvent]) -> str | None:
    """A replicated job's result: the first CID revealed with the digest the quorum settled on."""
    settled = [ev for ev in events if ev.name == "ReplicasSettled"]
    if not settled:
        return None
    digest = settled[-1].args["digest"]
    for ev in events:
        if ev.name == "ResultRevealed" and ev.args["digest"] == digest:
            return str(ev.args["resultCid"])
    return None


def _label(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


@router.get(
    "/jobs/{job_id}/result",
    summary="Where a job's result is: its CID and gateway path",
    response_model=ResultOut,
    responses=_ERRORS,
)
def get_result(job_id: JobIdParam, services: ServicesDep) -> ResultOut:
    job, events = _job_events(services, job_id)
    submitted = [ev for ev in events if ev.name == "ResultSubmitted"]
    agreed = _agreed_result(events)
    if not submitted and agreed is None:
        raise HTTPException(404, f"job {job_id} has no result yet (state {job.state.label})")
    cid = str(submitted[-1].args["resultCid"]) if submitted else str(agreed)
    tx = submitted[-1].tx_hash if submitted else _settle_tx(events)
    return ResultOut(
        job_id=job_id,
        state=job.state.label,
        result_cid=cid,
        url=f"/ipfs/{cid}",
        tx_hash=tx,
    )


def _settle_tx(events: list[MarketEvent]) -> str:
    return [ev.tx_hash for ev in events if ev.name in _SETTLING_EVENTS][-1]


# ---------------------------------------------------------------- content store


def _add_spooled(services: Services, spool: BinaryIO, size: int) -> CidOut:
    spool.seek(0)
    cid = services.store().add_stream(spool)
    log.info("stored cid=%s size=%d", cid, size)
    return CidOut(cid=cid, size=size)


@router.post(
    "/ipfs",
    status_code=201,
    summary="Store the request body as a file; answers its CID",
    response_model=CidOut,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def post_ipfs(request: Request, services: ServicesDep) -> CidOut:
    # Spool to disk past a few MiB so a large upload does not sit in memory.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        size = 0
        async for chunk in request.stream():
            spool.write(chunk)
            size += len(chunk)
        return await run_in_threadpool(_add_spooled, services, cast(BinaryIO, spool), size)


class _RangeNotSatisfiable(Exception):
    pass


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` (inclusive) of a single ``bytes=`` range; None to serve everything."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multipart ranges: RFC 9110 lets us send the whole file
    first_text, sep, last_text = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first_text == "":  # suffix: the last N bytes
            length = int(last_text)
            if length <= 0:
                raise _RangeNotSatisfiable
            return max(size - length, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None  # a malformed Range header is ignored
    if first < 0 or first > last:
        return None
    if first >= size:
        raise _RangeNotSatisfiable
    return first, min(last, size - 1)


def _stream(cid: str, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    try:
        yield from rest
    except BlockCorrupted:
        # Headers are gone already: cut the connection so the client sees a short body
        # rather than wrong bytes.
        log.error("aborting stream: corrupted block under cid=%s", cid)
        raise


def _listing(cid: str, ipfs_path: str, services: Services, request: Request) -> Response:
    entries = [
        DirEntryOut(
            name=e.name, cid=str(e.cid), size=int(e.size), type="directory" if e.is_dir else "file"
        )
        for e in services.store().ls(cid)
    ]
    headers = {"X-Ipfs-Path": ipfs_path, "Etag": f'"{cid}"', "Cache-Control": _IMMUTABLE}
    if "text/html" in request.headers.get("accept", ""):
        rows = "".join(
            f'<tr><td><a href="{html.escape(ipfs_path.rstrip("/") + "/" + e.name)}">'
            f"{html.escape(e.name)}</a></td><td>{e.size}</td>"
            f"<td><code>{html.escape(e.cid)}</code></td></tr>"
            for e in entries
        )
        page = (
            f"<!doctype html><title>{html.escape(ipfs_path)}</title>"
            f"<h1>{html.escape(ipfs_path)}</h1><table><tr><th>name</th><th>size</th>"
            f"<th>cid</th></tr>{rows}</table>"
        )
        return HTMLResponse(page, headers=headers)
    return JSONResponse(DirListingOut(cid=cid, entries=entries).model_dump(), headers=headers)


def _serve(cid: str, path: str, request: Request, services: Services) -> Response:
    store = services.store()
    if fmt := requested_format(request):  # ?format=raw|car: verifiable responses
        return serve_format(fmt, cid, path, request, store)
    ipfs_path = f"/ipfs/{cid}" + (f"/{path.strip('/')}" if path.strip("/") else "")
    try:
        target = store.resolve(cid, path) if path.strip("/") else cid
        entry = store.stat(target)
    except BlockNotFound as exc:
        # The missing block may be a child, and CIDv0 is reported in its v1 form: say both.
        raise HTTPException(404, f"{ipfs_path}: {exc}") from exc
    if entry.is_dir:
        return _listing(str(target), ipfs_path, services, request)
    target = str(target)
    etag = f'"{target}"'
    headers = {
        "X-Ipfs-Path": ipfs_path,
        "Etag": etag,
        "Cache-Control": _IMMUTABLE,
        "Accept-Ranges": "bytes",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    size = int(entry.size)
    try:
        byte_range = _parse_range(request.headers.get("range"), size)
    except _RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status = 200
    offset, length = 0, size
    if byte_range is not None:
        first, last = byte_range
        offset, length = first, last - first + 1
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)
    name = path.rstrip("/").rsplit("/", 1)[-1] if path.strip("/") else ""
    media_type = (mimetypes.guess_type(name)[0] if name else None) or "application/octet-stream"
    chunks = iter(store.cat(target, offset=offset, length=length))
    # Read (and verify) the first block before any header goes out, so a damaged store
    # answers an error status instead of a 200 with a broken body.
    first_chunk = next(chunks, b"")
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        _stream(target, first_chunk, chunks),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


CidParam = Annotated[
    str, PathParam(description="A CID (CIDv1 base32 such as bafy..., or CIDv0 Qm...)")
]


@router.get(
    "/ipfs/{cid}",
    summary="A stored file's bytes (Range supported) or a directory's listing",
    responses={**_ERRORS, 206: {"description": "Partial content (Range)"}},
)
@router.head("/ipfs/{cid}", include_in_schema=False)
def get_ipfs(request: Request, cid: CidParam, services: ServicesDep) -> Response:
    return _serve(cid, "", request, services)


@router.get(
    "/ipfs/{cid}/{path:path}",
    summary="A file or directory by path inside a stored directory",
    responses={**_ERRORS, 206: {"description": "Partial content (Range)"}},
)
@router.head("/ipfs/{cid}/{path:path}", include_in_schema=False)
def get_ipfs_path(request: Request, path: str, cid: CidParam, services: ServicesDep) -> Response:
    return _serve(cid, path, request, services)


# ---------------------------------------------------------------- health


@router.get(
    "/health",
    summary="Whether the chain, the market contract and the store are usable",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Degraded: see problems"}},
)
def health(services: ServicesDep) -> Response:
    settings = services.settings
    problems: list[str] = []
    chain = ChainHealth(rpc_url=settings.rpc_url)
    market: str | None = None
    try:
        deployment = services.deployment()
        market = deployment.job_market
        client = services.client()
        chain.chain_id = client.chain_id()
        chain.block = client.block_number()
        if chain.chain_id != deployment.chain_id:
            problems.append(
                f"RPC {settings.rpc_url} serves chain {chain.chain_id} but the deployment is "
                f"for chain {deployment.chain_id}"
            )
        else:
            client.job_count()  # proves a JobMarket answers at the address
    except ConfigError as exc:
        chain.error = f"not checked: {exc}"
        problems.append(str(exc))
    except ChainError as exc:
        chain.error = str(exc)
        problems.append(f"chain unavailable: {exc}")
    except BadFunctionCallOutput:
        problems.append(
            f"no JobMarket contract answers at {market} on {settings.rpc_url}: redeploy"
        )
    try:
        services.store()
    except StoreError as exc:
        problems.append(f"store: {exc}")
    body = HealthOut(
        status="degraded" if problems else "ok",
        chain=chain,
        market=market,
        store=str(settings.store_path),
        problems=problems,
    )
    return JSONResponse(body.model_dump(), status_code=503 if problems else 200)


# ---------------------------------------------------------------- app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings`` (default: environment and config file)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="hepx",
        summary="Compute marketplace for HEP and AI: jobs on chain, data by CID",
        version="0.1.0",
    )
    app.state.services = Services(settings)
    _install_error_handlers(app)
    app.include_router(router)
    from api.explorer import install_explorer  # the explorer imports Services from here

    install_explorer(app, app.state.services)
    return app
