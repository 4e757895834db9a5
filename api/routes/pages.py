"""The explorer's web pages: server-rendered Jinja2 templates. A page's ``<main id="live">``
is re-rendered in place when ``/events`` (Server-Sent Events) reports a new market event: no
reload, no bundle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from web3 import Web3

from api.errors import NoSuchHistogram
from api.limits import is_loopback
from api.preview import histogram_png, preview, walk
from api.routes.explorer import tx_hash_of, workers_with_stake
from api.routes.jobs import dispute_of, job_page
from api.services import fresh_index, index_service
from hepx.chain import FINAL_STATE_LABELS, PaymentDirection, PaymentReason
from hepx.errors import BlockNotFound, HepxError, InvalidCid
from hepx.index import STATES
from hepx.kinds import why_not_disputable
from hepx.units import format_wei

# What the wallet page offers to submit: the cheapest job there is (kind echo).
_WALLET_EXAMPLE = """apiVersion: hepx/v1
kind: echo
metadata: {name: from-my-wallet}
params: {message: "hello from a browser wallet"}
resources: {max_runtime: 30}
payment: {max_price: "1000 gwei", claim_window: 120, run_window: 120}
"""
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates"))
_TEMPLATES.env.filters["wei"] = lambda v: "-" if v is None else format_wei(int(v))
_TEMPLATES.env.filters["short"] = lambda v: (
    "-" if not v else (f"{v[:8]}…{v[-6:]}" if len(str(v)) > 18 else v)
)
_TEMPLATES.env.filters["utc"] = lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
# A label as words for people: "worker_payment" -> "worker payment".
_TEMPLATES.env.filters["words"] = lambda label: str(label).replace("_", " ")

router = APIRouter()


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    service = index_service(request)
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
        found = job_page(fresh_index(request), state, kind, requester, worker, page, 25)
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
        counts=fresh_index(request).state_counts(),
    )


@router.get("/job/{job_id}", response_class=HTMLResponse, include_in_schema=False)
def page_job(request: Request, job_id: int) -> HTMLResponse:
    index = fresh_index(request)
    job = index.job(job_id)
    if job is None:
        return _not_found(
            request, f"job {job_id} is not in the index (synced to block {index.synced_block})"
        )
    view = index_service(request).view()
    timeline: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for event in index.events(job_id=job_id):
        row: dict[str, Any] = {"event": event, "gas": view.gas_used(event.tx_hash)}
        if event.name == "Payment":
            reason, direction = int(event.args["reason"]), int(event.args["direction"])
            row["reason"] = PaymentReason.label_of(reason)
            row["direction"] = PaymentDirection.label_of(direction)
            payments.append(row)
        else:
            timeline.append(row)
    services = index_service(request).services
    disputed = any(row["event"].name == "JobDisputed" for row in timeline)
    return _render(
        request,
        "job.html",
        job=job,
        timeline=timeline,
        payments=payments,
        not_disputable=why_not_disputable(job.kind),
        dispute=dispute_of(services, job_id) if disputed else None,
    )


@router.get("/tx/{tx_hash}", response_class=HTMLResponse, include_in_schema=False)
def page_tx(request: Request, tx_hash: str) -> HTMLResponse:
    try:
        wanted = tx_hash_of(tx_hash)
    except HTTPException as exc:
        return _render(request, "error.html", status=422, message=str(exc.detail))
    view = index_service(request).view().tx(wanted)
    if view is None:
        return _not_found(request, f"no transaction {tx_hash} on this chain")
    return _render(request, "tx.html", tx=view)


@router.get("/block/{number}", response_class=HTMLResponse, include_in_schema=False)
def page_block(request: Request, number: int) -> HTMLResponse:
    view = index_service(request).view().block(number)
    if view is None:
        return _not_found(request, f"no block {number} yet")
    return _render(request, "block.html", block=view)


@router.get("/blocks", response_class=HTMLResponse, include_in_schema=False)
def page_blocks(request: Request) -> HTMLResponse:
    return _render(request, "blocks.html", blocks=index_service(request).view().latest_blocks(25))


@router.get("/address/{address}", response_class=HTMLResponse, include_in_schema=False)
def page_address(request: Request, address: str) -> HTMLResponse:
    if not Web3.is_address(address):
        return _render(request, "error.html", status=422, message=f"{address!r} is not an address")
    index = fresh_index(request)
    view = index_service(request).view().address(address)
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
    return _render(request, "workers.html", workers=workers_with_stake(request))


@router.get("/wallet", response_class=HTMLResponse, include_in_schema=False)
def page_wallet(request: Request) -> HTMLResponse:
    services = index_service(request).services
    try:
        desk: str | None = services.desk().address
    except HepxError:
        desk = None  # no deployment yet: the page still loads and says so
    return _render(
        request,
        "wallet.html",
        desk=desk,
        example=_WALLET_EXAMPLE,
        final_states=sorted(FINAL_STATE_LABELS),
    )


@router.get("/tokens", response_class=HTMLResponse, include_in_schema=False)
def page_tokens(request: Request) -> HTMLResponse:
    services = index_service(request).services
    return _render(
        request,
        "tokens.html",
        tokens=services.tokens.records(),
        custodial=services.settings.custodial,
        open_to_all=is_loopback(services.settings.api_host),
    )


@router.get("/result/{cid}", response_class=HTMLResponse, include_in_schema=False)
def page_result(request: Request, cid: str) -> HTMLResponse:
    store = index_service(request).services.store()
    try:
        files = [preview(store, path, fcid, size) for path, fcid, size in walk(store, cid)]
    except InvalidCid as exc:
        return _render(request, "error.html", status=400, message=str(exc))
    except BlockNotFound as exc:
        return _not_found(request, f"{cid} is not in this API's store: {exc}")
    jobs = fresh_index(request).jobs(result_cid=cid).items
    return _render(request, "result.html", cid=cid, files=files, jobs=jobs)


@router.get("/plot/{cid}/{name}.png", include_in_schema=False)
def plot(request: Request, cid: str, name: str) -> Response:
    store = index_service(request).services.store()
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
