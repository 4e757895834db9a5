"""The explorer: the event index behind ``GET /jobs`` and ``GET /events``, and the web pages.

A background thread keeps the SQLite index (hepx.index) in step with the chain; routes also
top it up on demand (throttled), so an app without the thread (tests) answers fresh data too.
Pages are server-rendered Jinja2 templates; a page's ``<main id="live">`` is re-rendered in
place when ``/events`` (Server-Sent Events) reports a new market event: no reload, no bundle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from web3 import Web3

from api.chainview import ChainView
from api.metrics import install_metrics
from api.preview import NoSuchHistogram, histogram_png, preview, walk
from hepx.errors import BlockNotFound, EventIndexError, HepxError, InvalidCid, StoreError
from hepx.index import STATES, MarketIndex
from hepx.units import format_wei

if TYPE_CHECKING:
    from api.app import Services

log = logging.getLogger("hepx.api.explorer")

_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_TEMPLATES.env.filters["wei"] = lambda v: "-" if v is None else format_wei(int(v))
_TEMPLATES.env.filters["short"] = lambda v: (
    "-" if not v else (f"{v[:8]}…{v[-6:]}" if len(str(v)) > 18 else v)
)
_TEMPLATES.env.filters["utc"] = lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
_SSE_POLL = 0.3
_SSE_HEARTBEAT = 15.0
_REFRESH_AGE = 0.5

router = APIRouter()


class IndexService:
    """One MarketIndex for the current deployment, kept fresh by a background thread."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._index: MarketIndex | None = None
        self._market: str | None = None
        self._view: ChainView | None = None
        self.last_sync = 0.0
        self.last_error: str | None = None
        self.head: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _kind_of(self, spec_cid: str) -> str | None:
        try:
            spec = json.loads(self.services.store().read_bytes(spec_cid))
        except (StoreError, ValueError):
            return None  # not in this store, or not JSON: the kind stays unknown
        kind = spec.get("kind") if isinstance(spec, dict) else None
        return str(kind) if kind else None

    def index(self) -> MarketIndex:
        deployment = self.services.deployment()
        client = self.services.checked_client()
        with self._lock:
            if self._index is None or self._market != deployment.job_market:
                path = self.services.settings.index_file
                try:
                    index = MarketIndex(
                        path,
                        client,
                        deployment.deploy_block,
                        kind_of=self._kind_of,
                        confirmations=self.services.settings.confirmations,
                    )
                except EventIndexError as exc:
                    # The index is a cache of the chain: one for another market is rebuilt.
                    log.warning("event=index_reset path=%s reason=%s", path, exc)
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{path}{suffix}").unlink(missing_ok=True)
                    index = MarketIndex(
                        path,
                        client,
                        deployment.deploy_block,
                        kind_of=self._kind_of,
                        confirmations=self.services.settings.confirmations,
                    )
                self._index, self._market = index, deployment.job_market
                self._view = ChainView(client)
            return self._index

    def posted_block(self, job_id: int) -> int | None:
        """The block of the job's JobPosted if the index has it, read as it is (no sync)."""
        try:
            job = self.index().job(job_id)
        except HepxError as exc:  # only a shortcut: the caller scans from the deploy block
            log.debug("event=index_unavailable job=%d error=%s", job_id, exc)
            return None
        return None if job is None else job.posted_block

    def view(self) -> ChainView:
        self.index()
        assert self._view is not None
        return self._view

    def refresh(self, max_age: float = _REFRESH_AGE, *, inline: bool = False) -> MarketIndex:
        """The index, synced first unless a sync finished within ``max_age`` seconds.

        While the background thread runs, requests read without syncing (it keeps the index
        within a poll interval of the chain), so a page never waits on the RPC.
        """
        index = self.index()
        if not inline and self._thread is not None and self._thread.is_alive():
            return index
        if time.monotonic() - self.last_sync < max_age:
            return index
        with self._sync_lock:
            if time.monotonic() - self.last_sync >= max_age:
                result = index.sync()
                self.head = result.to_block + index.confirmations
                self.last_sync = time.monotonic()
                self.last_error = None
                if result.rolled_back_to is not None:
                    log.warning("event=reorg rolled_back_to=%d", result.rolled_back_to)
        return index

    def _run(self) -> None:
        interval = self.services.settings.poll_interval
        while not self._stop.is_set():
            try:
                self.refresh(max_age=interval / 2, inline=True)
            except HepxError as exc:
                if str(exc) != self.last_error:
                    log.warning("event=index_sync_failed error=%s", exc)
                self.last_error = str(exc)
                self._stop.wait(min(5.0, interval * 8))
                continue
            except Exception as exc:  # e.g. no contract at the address yet; keep following
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(min(5.0, interval * 8))
                continue
            self._stop.wait(interval)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hepx-index", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _indexer(request: Request) -> IndexService:
    service: IndexService = request.app.state.indexer
    return service


def _fresh(request: Request) -> MarketIndex:
    return _indexer(request).refresh()


# ---------------------------------------------------------------- JSON


def _job_page(
    request: Request,
    state: str | None,
    kind: str | None,
    requester: str | None,
    worker: str | None,
    page: int,
    per_page: int,
) -> dict[str, Any]:
    index = _fresh(request)
    try:
        found = index.jobs(
            state=state or None,
            kind=kind or None,
            requester=requester or None,
            worker=worker or None,
            page=page,
            per_page=per_page,
        )
    except EventIndexError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {
        "items": [job.to_json() for job in found.items],
        "total": found.total,
        "page": found.page,
        "per_page": found.per_page,
        "pages": found.pages,
        "synced_block": index.synced_block,
    }


@router.get("/jobs", summary="Jobs from the event index, newest first, filtered and paginated")
def list_jobs(
    request: Request,
    state: Annotated[str | None, Query(description=f"One of {', '.join(STATES)}")] = None,
    kind: Annotated[str | None, Query(description="Job kind, e.g. hep.pythia")] = None,
    requester: Annotated[str | None, Query(description="Requester address")] = None,
    worker: Annotated[str | None, Query(description="Worker address")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 25,
) -> dict[str, Any]:
    return _job_page(request, state, kind, requester, worker, page, per_page)


@router.get("/events", summary="Decoded market events as Server-Sent Events (live)")
async def events(
    request: Request,
    job: Annotated[int | None, Query(description="Only this job's events")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Start after this event id (default: now)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="Close after this many events")] = None,
) -> StreamingResponse:
    service = _indexer(request)
    index = await run_in_threadpool(service.refresh)
    last_id = request.headers.get("last-event-id")
    start = int(last_id) if last_id and last_id.isdigit() else after
    cursor: int = await run_in_threadpool(index.last_event_id) if start is None else start

    async def stream() -> Any:
        nonlocal cursor
        sent = 0
        quiet_since = time.monotonic()
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            batch = await run_in_threadpool(index.events, job_id=job, after_id=cursor, limit=200)
            for event in batch:
                cursor = event.id
                yield f"id: {event.id}\ndata: {json.dumps(event.to_json())}\n\n"
                sent += 1
                if limit is not None and sent >= limit:
                    return
            if batch:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > _SSE_HEARTBEAT:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(_SSE_POLL)
            try:
                await run_in_threadpool(service.refresh)
            except HepxError as exc:
                yield f"event: error\ndata: {json.dumps({'detail': str(exc)})}\n\n"
                await asyncio.sleep(1.0)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/explorer/status", summary="The event index: synced block, counts, ots support")
def explorer_status(request: Request) -> dict[str, Any]:
    service = _indexer(request)
    index = service.refresh()
    return {
        **index.status(),
        "head": service.head,
        "ots": service.view().has_ots(),
        "states": index.state_counts(),
    }


@router.get("/explorer/workers", summary="Workers: jobs won, settled, failures, earnings")
def explorer_workers(request: Request) -> dict[str, Any]:
    return {"workers": _workers_with_stake(request)}


def _workers_with_stake(request: Request) -> list[dict[str, Any]]:
    """Index statistics per worker, with its stake from the registry where the market has one."""
    client = _indexer(request).services.client()
    rows = []
    for stats in _fresh(request).workers():
        row: dict[str, Any] = {**stats.__dict__, "stake": None, "locked": None}
        try:
            record = client.worker(stats.address)
            row["stake"], row["locked"] = record.stake, record.locked
        except (HepxError, ValueError, AttributeError):
            pass  # a market without a worker registry: the page says so
        rows.append(row)
    return rows


def _tx_hash(value: str) -> str:
    text = value.lower()
    if (
        len(text) != 66
        or not text.startswith("0x")
        or not all(c in "0123456789abcdef" for c in text[2:])
    ):
        raise HTTPException(422, f"{value!r} is not a transaction hash (0x + 64 hex digits)")
    return text


@router.get("/explorer/tx/{tx_hash}", summary="A transaction, decoded where it is the market's")
def explorer_tx(request: Request, tx_hash: str) -> dict[str, Any]:
    view = _indexer(request).view().tx(_tx_hash(tx_hash))
    if view is None:
        raise HTTPException(404, f"no transaction {tx_hash} on this chain")
    return view.to_json()


# ---------------------------------------------------------------- pages


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    service = _indexer(request)
    fragment = request.headers.get("x-hepx-fragment") == "1"
    base: dict[str, Any] = {
        "layout": "fragment.html" if fragment else "base.html",
        "synced_block": None,
        "last_event_id": 0,
        "index_error": service.last_error,
        "ots": None,
    }
    try:
        index = service.index()
        base["synced_block"] = index.synced_block
        base["last_event_id"] = index.last_event_id()
        base["ots"] = service.view().has_ots()
    except HepxError as exc:
        base["index_error"] = str(exc)
    return _TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status)


def _not_found(request: Request, message: str) -> HTMLResponse:
    return _render(request, "error.html", status=404, message=message)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page_jobs(
    request: Request,
    state: str | None = None,
    kind: str | None = None,
    requester: str | None = None,
    worker: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    filters = {"state": state, "kind": kind, "requester": requester, "worker": worker}
    try:
        found = _job_page(request, state, kind, requester, worker, page, 25)
    except HTTPException as exc:
        return _render(request, "error.html", status=422, message=str(exc.detail))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return _render(
        request,
        "jobs.html",
        jobs=found,
        filters=filters,
        states=STATES,
        query=query,
        counts=_fresh(request).state_counts(),
    )


_PAYMENT_REASONS = ("escrow", "worker payment", "refund", "withdrawal")
_PAYMENT_DIRECTIONS = ("in", "credit", "out")


@router.get("/job/{job_id}", response_class=HTMLResponse, include_in_schema=False)
def page_job(request: Request, job_id: int) -> HTMLResponse:
    index = _fresh(request)
    job = index.job(job_id)
    if job is None:
        return _not_found(
            request, f"job {job_id} is not in the index (synced to block {index.synced_block})"
        )
    view = _indexer(request).view()
    timeline: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for event in index.events(job_id=job_id):
        row: dict[str, Any] = {"event": event, "gas": view.gas_used(event.tx_hash)}
        if event.name == "Payment":
            reason, direction = int(event.args["reason"]), int(event.args["direction"])
            row["reason"] = _PAYMENT_REASONS[reason] if reason < 4 else str(reason)
            row["direction"] = _PAYMENT_DIRECTIONS[direction] if direction < 3 else str(direction)
            payments.append(row)
        else:
            timeline.append(row)
    return _render(request, "job.html", job=job, timeline=timeline, payments=payments)


@router.get("/tx/{tx_hash}", response_class=HTMLResponse, include_in_schema=False)
def page_tx(request: Request, tx_hash: str) -> HTMLResponse:
    try:
        wanted = _tx_hash(tx_hash)
    except HTTPException as exc:
        return _render(request, "error.html", status=422, message=str(exc.detail))
    view = _indexer(request).view().tx(wanted)
    if view is None:
        return _not_found(request, f"no transaction {tx_hash} on this chain")
    return _render(request, "tx.html", tx=view)


@router.get("/block/{number}", response_class=HTMLResponse, include_in_schema=False)
def page_block(request: Request, number: int) -> HTMLResponse:
    view = _indexer(request).view().block(number)
    if view is None:
        return _not_found(request, f"no block {number} yet")
    return _render(request, "block.html", block=view)


@router.get("/blocks", response_class=HTMLResponse, include_in_schema=False)
def page_blocks(request: Request) -> HTMLResponse:
    return _render(request, "blocks.html", blocks=_indexer(request).view().latest_blocks(25))


@router.get("/address/{address}", response_class=HTMLResponse, include_in_schema=False)
def page_address(request: Request, address: str) -> HTMLResponse:
    if not Web3.is_address(address):
        return _render(request, "error.html", status=422, message=f"{address!r} is not an address")
    index = _fresh(request)
    view = _indexer(request).view().address(address)
    return _render(
        request,
        "address.html",
        account=view,
        as_requester=index.jobs(requester=address, per_page=50),
        as_worker=index.jobs(worker=address, per_page=50),
        events=index.events(address=address, newest_first=True, limit=50),
        stats=next((s for s in index.workers() if s.address == view.address), None),
    )


@router.get("/workers", response_class=HTMLResponse, include_in_schema=False)
def page_workers(request: Request) -> HTMLResponse:
    return _render(request, "workers.html", workers=_workers_with_stake(request))


@router.get("/result/{cid}", response_class=HTMLResponse, include_in_schema=False)
def page_result(request: Request, cid: str) -> HTMLResponse:
    store = _indexer(request).services.store()
    try:
        files = [preview(store, path, fcid, size) for path, fcid, size in walk(store, cid)]
    except InvalidCid as exc:
        return _render(request, "error.html", status=400, message=str(exc))
    except BlockNotFound as exc:
        return _not_found(request, f"{cid} is not in this API's store: {exc}")
    jobs = _fresh(request).jobs(result_cid=cid).items
    return _render(request, "result.html", cid=cid, files=files, jobs=jobs)


@router.get("/plot/{cid}/{name}.png", include_in_schema=False)
def plot(request: Request, cid: str, name: str) -> Response:
    store = _indexer(request).services.store()
    try:
        png = histogram_png(store, cid, name)
    except ImportError as exc:
        raise HTTPException(501, "install hepx[hep] (uproot, matplotlib) to draw plots") from exc
    except NoSuchHistogram as exc:
        raise HTTPException(404, str(exc)) from exc
    except (OSError, ValueError) as exc:  # uproot's complaints about a file that is not ROOT
        raise HTTPException(422, f"{cid} is not a readable ROOT file: {exc}") from exc
    return Response(
        png, media_type="image/png", headers={"Cache-Control": "public, max-age=31536000"}
    )


@router.get("/search", include_in_schema=False)
def search(q: str = "") -> Response:
    """Jump to a job id, block number, tx hash, address or CID."""
    text = q.strip()
    if text.isdigit():
        return RedirectResponse(f"/job/{text}", status_code=303)
    if text.lower().startswith("block ") and text[6:].strip().isdigit():
        return RedirectResponse(f"/block/{text[6:].strip()}", status_code=303)
    if len(text) == 66 and text.startswith("0x"):
        return RedirectResponse(f"/tx/{text}", status_code=303)
    if Web3.is_address(text):
        return RedirectResponse(f"/address/{text}", status_code=303)
    if text.startswith(("bafy", "bafk", "Qm")):
        return RedirectResponse(f"/result/{text}", status_code=303)
    return JSONResponse(
        {
            "detail": f"cannot tell what {text!r} is: try a job id, 'block N', a tx hash, an "
            "address or a CID"
        },
        status_code=422,
    )


def install_explorer(app: FastAPI, services: Services) -> IndexService:
    """Add the explorer's routes and its index thread (started with the app) to ``app``."""
    service = IndexService(services)
    app.state.indexer = service
    services.posted_block = service.posted_block
    app.include_router(router)
    install_metrics(app, service)
    app.router.add_event_handler("startup", service.start)
    app.router.add_event_handler("shutdown", service.stop)
    return service
