"""``/jobs``: post a job, list them (from the event index), one job's state and result."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from eth_utils.address import is_address, to_checksum_address
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.access import Credentials, require_custodial, spending, token_for
from api.errors import ERROR_RESPONSES
from api.limits import check_size
from api.models import (
    DisputeIn,
    DisputeOpenedOut,
    DisputeOut,
    JobOut,
    JobPostedOut,
    JobRequestOut,
    PaymentOut,
    ResultOut,
    SignedRequestIn,
    Transition,
)
from api.services import FreshIndex, Services, ServicesDep
from hepx.api_tokens import Scope, TokenRecord
from hepx.chain import (
    FINAL_EVENTS,
    JobRequest,
    JobState,
    MarketEvent,
    PaymentDirection,
    PaymentReason,
    json_safe,
    lapsed,
    new_nonce,
    signer_of,
)
from hepx.errors import EventIndexError, InvalidCid, StoreError
from hepx.index import MAX_PAGE, MAX_PER_PAGE, STATES, MarketIndex
from hepx.kinds import why_not_disputable
from hepx.spec import JobSpec, canonical_json, json_schema, parse_spec
from hepx.terms import post_spec, terms_for

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


def stored_spec(services: Services, body: bytes, content_type: str) -> tuple[JobSpec, str]:
    """The spec in ``body`` and the CID of its canonical form, stored; its inputs must be in
    the store already (workers fetch them from it)."""
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
    return spec, store.add_bytes(canonical_json(spec))


def pin_job(services: Services, job_id: int, spec_cid: str, spec: JobSpec) -> None:
    """Keep the spec and inputs through `hepx store gc` past the job's windows plus retention."""
    store = services.store()
    windows = int(spec.payment.claim_window) + int(spec.payment.run_window)
    keep = time.time() + windows + services.settings.pin_retention
    store.pin(f"job-{job_id}-spec", spec_cid, keep)
    for i, ref in enumerate(spec.inputs):
        store.pin(f"job-{job_id}-input-{i}", ref.cid, keep)


def api_key_for(services: Services, purpose: str) -> None:
    if services.settings.private_key is None:
        raise HTTPException(503, f"no key configured {purpose} (HEPX_PRIVATE_KEY)")


def _post_job(
    services: Services, body: bytes, content_type: str, token: TokenRecord | None
) -> JobPostedOut:
    """Custodial: the API's key posts the job and pays its escrow."""
    require_custodial(services.settings, "posting a job from a plain spec")
    spec, spec_cid = stored_spec(services, body, content_type)
    api_key_for(services, "to post jobs from")
    client = services.checked_client()
    terms = terms_for(spec)
    if token is not None and terms.token is not None:
        raise HTTPException(
            403, "API token budgets are in wei: post an ERC-20 job from your own account"
        )
    with spending(services, token, terms.escrow, f"job {spec.metadata.name!r}"):
        job_id, tx = post_spec(client, spec_cid, spec)  # fast path, or with terms
    pin_job(services, job_id, spec_cid, spec)
    log.info(
        "job posted job_id=%d tx=%s spec_cid=%s requester=%s max_price=%d token=%s",
        job_id,
        tx.tx_hash,
        spec_cid,
        client.sender,
        int(spec.payment.max_price_wei),
        token.name if token else "-",
    )
    return JobPostedOut(job_id=job_id, tx_hash=tx.tx_hash, spec_cid=spec_cid)


def _signed(body: bytes, content_type: str) -> SignedRequestIn | None:
    """The signed request in ``body``, or None if it holds a spec."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # the spec parser says what is wrong with it
    if not isinstance(document, dict) or "signature" not in document:
        return None
    try:
        return SignedRequestIn.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"malformed signed request: {problems}") from exc


def _posted_spec(services: Services, spec_cid: str) -> JobSpec:
    """The stored spec a signed request names (no larger than a spec POST /jobs takes)."""
    store = services.store()
    try:
        size = store.stat(spec_cid).size
        if size > services.settings.max_spec_bytes:
            raise HTTPException(
                422, f"specCid {spec_cid} is {size} bytes, not a spec (at most "
                f"{services.settings.max_spec_bytes})",
            )  # fmt: skip
        return parse_spec(store.read_bytes(spec_cid))
    except InvalidCid as exc:
        raise HTTPException(422, f"specCid: {exc}") from exc
    except StoreError as exc:
        raise HTTPException(
            422, f"spec {spec_cid} is not in this API's store: POST /jobs/requests first"
        ) from exc


def _relay(services: Services, signed: SignedRequestIn) -> JobPostedOut:
    """Relay a request its requester signed: the desk checks the signature and takes the
    escrow from the requester's deposit; the API pays only the gas."""
    try:
        request = JobRequest.from_message(signed.request)
    except (KeyError, TypeError, ValueError) as exc:
        raise HTTPException(422, f"malformed job request: {exc!s}") from exc
    spec = _posted_spec(services, request.spec_cid)
    if terms_for(spec) != request.terms:
        raise HTTPException(
            422, "the signed terms differ from the spec's payment section: sign the typed "
            "data POST /jobs/requests answers for this spec",
        )  # fmt: skip
    api_key_for(services, "to relay requests (it pays their gas)")
    services.checked_client()
    desk = services.desk()
    try:
        signer = signer_of(request, desk.chain_id(), desk.address, signed.signature)
    except ValueError as exc:
        raise HTTPException(422, f"the signature cannot be read: {exc}") from exc
    if signer != request.requester:
        raise HTTPException(
            422, f"the signature is not {request.requester}'s (it recovers to {signer}): "
            "the request was changed after signing or signed for another chain or market",
        )  # fmt: skip
    job_id, tx = desk.relay(request, signed.signature)
    pin_job(services, job_id, request.spec_cid, spec)
    log.info("job relayed job_id=%d tx=%s spec_cid=%s requester=%s nonce=%d",
             job_id, tx.tx_hash, request.spec_cid, request.requester, request.nonce)  # fmt: skip
    return JobPostedOut(job_id=job_id, tx_hash=tx.tx_hash, spec_cid=request.spec_cid)


_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "A job spec (schema at GET /jobs/schema), as JSON or YAML",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/jobs",
    status_code=201,
    summary="Post a job: relay a request its requester signed, or (custodial mode) post a "
    "spec paid from the API's key",
    description="With a body `{request, signature}` (from POST /jobs/requests and the "
    "requester's wallet) the market's request desk posts the job in the signer's name from "
    "its deposit; the API pays only gas. With a job spec, custodial mode must be on and the "
    "escrow is the API's (counted against the caller's API token).",
    response_model=JobPostedOut,
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/SignedRequestIn"},
                            {"type": "object", "description": "A job spec (GET /jobs/schema)"},
                        ]
                    }
                },
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_job(
    request: Request, services: ServicesDep, credentials: Credentials
) -> JobPostedOut:
    body = await request.body()
    check_size(len(body), services.settings.max_spec_bytes, "a job spec")
    content_type = request.headers.get("content-type", "")
    signed = _signed(body, content_type)
    if signed is not None:
        return await run_in_threadpool(_relay, services, signed)
    token = token_for(services, credentials, Scope.JOBS)
    return await run_in_threadpool(_post_job, services, body, content_type, token)


def _prepare(
    services: Services, body: bytes, content_type: str, requester: str, expires_in: int
) -> JobRequestOut:
    if not is_address(requester):
        raise HTTPException(422, f"requester {requester!r} is not an address")
    spec, spec_cid = stored_spec(services, body, content_type)
    terms = terms_for(spec)
    if terms.token is not None:
        raise HTTPException(
            422, "the request desk takes ETH jobs only: post an ERC-20 job from your account"
        )
    services.checked_client()
    desk = services.desk()
    request = JobRequest(
        requester=to_checksum_address(requester),
        spec_cid=spec_cid,
        terms=terms,
        nonce=new_nonce(),
        expiry=int(desk.chain_now()) + expires_in,
    )
    return JobRequestOut(
        spec_cid=spec_cid,
        desk=desk.address,
        chain_id=desk.chain_id(),
        escrow=terms.escrow,
        deposit=desk.deposit_of(request.requester),
        deposit_call=str(desk.contract.encode_abi("deposit", [])),
        typed_data=desk.typed_data(request),
    )


@router.post(
    "/jobs/requests",
    summary="Store a spec and answer the job request its requester signs (EIP-712)",
    description="Nothing is posted: the requester's wallet signs `typed_data` (after "
    "depositing `escrow - deposit` at the desk if it is short) and sends it to POST /jobs.",
    response_model=JobRequestOut,
    responses=ERROR_RESPONSES,
    openapi_extra=_SPEC_BODY,
)
async def prepare_job_request(
    request: Request,
    services: ServicesDep,
    requester: Annotated[str, Query(description="Address that signs and pays")],
    expires_in: Annotated[
        int, Query(ge=60, le=7 * 86400, description="Seconds the request stays valid")
    ] = 3600,
) -> JobRequestOut:
    body = await request.body()
    check_size(len(body), services.settings.max_spec_bytes, "a job spec")
    content_type = request.headers.get("content-type", "")
    return await run_in_threadpool(_prepare, services, body, content_type, requester, expires_in)


@router.get("/jobs/schema", summary="JSON schema of a job spec")
def job_schema() -> dict[str, Any]:
    return json_schema()


def _job_events(services: Services, job_id: int) -> tuple[Any, list[MarketEvent]]:
    client = services.client()
    job = client.job(job_id)
    events: list[MarketEvent] = []
    if job.state is not JobState.NONE:
        head = client.block_number()
        start = services.index.posted_block(job_id) or services.deployment().deploy_block
        events = client.events(start, head, job_id=job_id)
        if any(ev.name == "JobPosted" for ev in events):
            return job, events
    # No post of its own: a sweep's job (opened to a dispute, or not), which its sweep's and
    # lot's events show (the index says whose sweep).
    sweep = services.index.sweep_of(job_id)
    found = None if sweep is None else client.sweep_job(job_id, *sweep, client.block_number())
    if found is not None:
        return found[0], found[2]
    if job.state is JobState.NONE:
        raise HTTPException(
            404, f"job {job_id} does not exist (the market has {client.job_count()} jobs)"
        )
    return job, events


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
        elif ev.name == "SweepPosted":  # a sweep's job: its entries in the sweep's and lot's
            spec_cid = str(ev.args["specCids"][job_id - int(ev.args["sweepId"])])
            max_price = int(ev.args["price"])
        elif ev.name == "LotSubmitted":
            result_cid = str(ev.args["resultCids"][job_id - int(ev.args["lotId"])])
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


def _dispute(
    services: Services, job_id: int, panel: int, token: TokenRecord | None
) -> DisputeOpenedOut:
    require_custodial(services.settings, "a dispute's bond")
    api_key_for(services, "to pay the bond")
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
    with spending(services, token, panel * job.price, f"the bond of a dispute of job {job_id}"):
        tx = court.open_dispute(job_id, job.price, panel)
    log.info("job disputed job_id=%d tx=%s panel=%d bond=%d", job_id, tx.tx_hash, panel,
             panel * job.price)  # fmt: skip
    opened = dispute_of(services, job_id)
    assert opened is not None
    return DisputeOpenedOut(job_id=job_id, tx_hash=tx.tx_hash, dispute=opened)


@router.post(
    "/jobs/{job_id}/dispute",
    status_code=201,
    summary="Dispute a submitted result (custodial mode): the API's key pays the bond "
    "(panel x price); verifiers drawn by stake re-run the job",
    response_model=DisputeOpenedOut,
    responses=ERROR_RESPONSES,
)
def dispute_job(
    job_id: JobIdParam,
    services: ServicesDep,
    credentials: Credentials,
    body: DisputeIn | None = None,
) -> DisputeOpenedOut:
    token = token_for(services, credentials, Scope.JOBS)
    return _dispute(services, job_id, (body or DisputeIn()).panel, token)


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
