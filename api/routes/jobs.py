"""``/jobs``: post a job, list them (from the event index), one job's state and result."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api.errors import ERROR_RESPONSES
from api.limits import check_size
from api.models import (
    DisputeIn,
    DisputeOpenedOut,
    DisputeOut,
    JobOut,
    JobPostedOut,
    PaymentOut,
    ResultOut,
    Transition,
)
from api.services import FreshIndex, Services, ServicesDep
from hepx.chain import (
    FINAL_EVENTS,
    JobState,
    MarketEvent,
    PaymentDirection,
    PaymentReason,
    json_safe,
    lapsed,
)
from hepx.errors import EventIndexError, InvalidCid
from hepx.index import MAX_PAGE, MAX_PER_PAGE, STATES, MarketIndex
from hepx.kinds import why_not_disputable
from hepx.spec import canonical_json, json_schema, parse_spec
from hepx.terms import post_spec

log = logging.getLogger("hepx.api")

_UINT256_MAX = 2**256 - 1
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")

router = APIRouter()


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
    responses=ERROR_RESPONSES,
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
    check_size(len(body), services.settings.max_spec_bytes, "a job spec")
    content_type = request.headers.get("content-type", "")
    return await run_in_threadpool(_post_job, services, body, content_type)


@router.get("/jobs/schema", summary="JSON schema of a job spec")
def job_schema() -> dict[str, Any]:
    return json_schema()


def _job_events(services: Services, job_id: int) -> tuple[Any, list[MarketEvent]]:
    client = services.client()
    job = client.job(job_id)
    if job.state is JobState.NONE:
        raise HTTPException(
            404, f"job {job_id} does not exist (the market has {client.job_count()} jobs)"
        )
    head = client.block_number()
    start = services.index.posted_block(job_id) or services.deployment().deploy_block
    return job, client.events(start, head, job_id=job_id)


JobIdParam = Annotated[
    int, PathParam(ge=0, le=_UINT256_MAX, description="The job's id on chain (from 1)")
]


@router.get(
    "/jobs/{job_id}",
    summary="A job's state on chain, with every transition and payment",
    response_model=JobOut,
    responses=ERROR_RESPONSES,
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
                    reason=PaymentReason.label_of(reason),
                    direction=PaymentDirection.label_of(direction),
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
                args=json_safe(ev.args),
            )
        )
        if ev.name == "JobPosted":
            spec_cid, max_price = str(ev.args["specCid"]), int(ev.args["maxPrice"])
        elif ev.name == "ResultSubmitted":
            result_cid = str(ev.args["resultCid"])
        if ev.name in FINAL_EVENTS:
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
        # Only a job still open or claimed can lapse: the others need no extra RPC call.
        lapsed=lapsed(job.state.label, job.deadline, services.client().chain_now())
        if job.state in (JobState.OPEN, JobState.CLAIMED)
        else None,
        run_window=job.run_window,
        spec_cid=spec_cid,
        result_cid=result_cid,
        settle_tx=settle_tx,
        transitions=transitions,
        payments=payments,
        not_disputable=_not_disputable(services, spec_cid),
        dispute=dispute_of(services, job_id)
        if any(t.event == "JobDisputed" for t in transitions)
        else None,
    )


def _not_disputable(services: Services, spec_cid: str | None) -> str | None:
    return why_not_disputable(services.index.kind_of(spec_cid) if spec_cid else None)


def dispute_of(services: Services, job_id: int) -> DisputeOut | None:
    court = services.court()
    dispute = court.dispute(job_id)
    return None if dispute is None else DisputeOut.of(dispute, court.seats(job_id))


def _dispute(services: Services, job_id: int, panel: int) -> DisputeOpenedOut:
    if services.settings.private_key is None:
        raise HTTPException(503, "no key configured to pay the bond (HEPX_PRIVATE_KEY)")
    services.checked_client()
    job, events = _job_events(services, job_id)
    if job.state is not JobState.SUBMITTED:
        raise HTTPException(
            409, f"job {job_id} is {job.state.label}: only a submitted result can be disputed"
        )
    posts = [str(ev.args["specCid"]) for ev in events if ev.name == "JobPosted"]
    why = _not_disputable(services, posts[-1] if posts else None)
    if why is not None:
        raise HTTPException(409, f"job {job_id} is not disputable: {why}")
    court = services.court()
    tx = court.open_dispute(job_id, job.price, panel)
    log.info("job disputed job_id=%d tx=%s panel=%d bond=%d", job_id, tx.tx_hash, panel,
             panel * job.price)  # fmt: skip
    opened = dispute_of(services, job_id)
    assert opened is not None
    return DisputeOpenedOut(job_id=job_id, tx_hash=tx.tx_hash, dispute=opened)


@router.post(
    "/jobs/{job_id}/dispute",
    status_code=201,
    summary="Dispute a submitted result: the API's key pays the bond (panel x price); "
    "verifiers drawn by stake re-run the job",
    response_model=DisputeOpenedOut,
    responses=ERROR_RESPONSES,
)
def dispute_job(
    job_id: JobIdParam, services: ServicesDep, body: DisputeIn | None = None
) -> DisputeOpenedOut:
    return _dispute(services, job_id, (body or DisputeIn()).panel)


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


@router.get(
    "/jobs/{job_id}/result",
    summary="Where a job's result is: its CID and gateway path",
    response_model=ResultOut,
    responses=ERROR_RESPONSES,
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
    return [ev.tx_hash for ev in events if ev.name in FINAL_EVENTS][-1]


def job_page(
    index: MarketIndex,
    state: str | None,
    kind: str | None,
    requester: str | None,
    worker: str | None,
    page: int,
    per_page: int,
    spec_cid: str | None = None,
) -> dict[str, Any]:
    try:
        found = index.jobs(
            state=state or None,
            kind=kind or None,
            requester=requester or None,
            worker=worker or None,
            spec_cid=spec_cid or None,
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
    index: FreshIndex,
    state: Annotated[str | None, Query(description=f"One of {', '.join(STATES)}")] = None,
    kind: Annotated[str | None, Query(description="Job kind, e.g. hep.pythia")] = None,
    requester: Annotated[str | None, Query(description="Requester address")] = None,
    worker: Annotated[str | None, Query(description="Worker address")] = None,
    spec_cid: Annotated[
        str | None, Query(description="CID of the job's spec (as POST /jobs answered it)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 25,
) -> dict[str, Any]:
    return job_page(index, state, kind, requester, worker, page, per_page, spec_cid)
