"""``POST /jobs/batch``: a sweep of job specs posted in one ``postJobs`` transaction, or as
one sweep record (``postSweep``) with ``"sweep": true`` (custodial: the API's key pays the
escrows, counted against the caller's token)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.access import Credentials, require_custodial, spending, token_for
from api.errors import ERROR_RESPONSES
from api.limits import MAX_BATCH_SPECS, check_size
from api.models import JobBatchIn, JobBatchOut, JobPostedOut
from api.routes.jobs import api_key_for, pin_job, stored_spec
from api.services import Services, ServicesDep
from hepx.api_tokens import Scope, TokenRecord
from hepx.errors import SpecError
from hepx.spec import JobSpec

log = logging.getLogger("hepx.api")

router = APIRouter()


@router.post(
    "/jobs/batch",
    status_code=201,
    summary="Post a sweep of job specs in one transaction (custodial mode)",
    description="Every spec must be a fast-path job (no replicas, stake, token or allowlist) "
    "with the same claim and run windows: the market's postJobs posts them together, with "
    "consecutive ids. With sweep: true (specs of one max_price) they are one sweep instead: "
    "one record, taken by workers in lots and paid per lot. The escrows are the API's, "
    "counted against the caller's API token as one spend; a refusal posts none of them.",
    response_model=JobBatchOut,
    responses=ERROR_RESPONSES,
)
async def post_jobs(
    request: Request, services: ServicesDep, credentials: Credentials
) -> JobBatchOut:
    body = await request.body()
    limit = services.settings.max_spec_bytes * MAX_BATCH_SPECS
    check_size(len(body), limit, "a batch of job specs")
    try:
        batch = JobBatchIn.model_validate_json(body)
    except ValueError as exc:
        raise HTTPException(422, f"malformed batch: {exc}") from exc
    token = token_for(services, credentials, Scope.JOBS)
    return await run_in_threadpool(_post_batch, services, batch.specs, token, batch.sweep)


def _post_batch(
    services: Services, documents: list[dict[str, Any]], token: TokenRecord | None, sweep: bool
) -> JobBatchOut:
    require_custodial(services.settings, "posting jobs from plain specs")
    if not 1 <= len(documents) <= MAX_BATCH_SPECS:
        raise HTTPException(
            422, f"a batch holds 1 to {MAX_BATCH_SPECS} specs, not {len(documents)}"
        )
    stored: list[tuple[JobSpec, str]] = []
    with services.store().batch():  # one pack and one fsync for the batch, not one per spec
        for i, document in enumerate(documents):
            body = json.dumps(document).encode()
            try:
                stored.append(stored_spec(services, body, "application/json"))
            except HTTPException as exc:
                raise HTTPException(exc.status_code, f"spec {i}: {exc.detail}") from exc
            except SpecError as exc:
                raise HTTPException(422, f"spec {i}: {exc}") from exc
        windows = _common_windows([spec for spec, _ in stored])  # refused: none stored
    api_key_for(services, "to post jobs from")
    client = services.checked_client()
    jobs = [(cid, int(spec.payment.max_price_wei)) for spec, cid in stored]
    total = sum(price for _, price in jobs)
    prices = {price for _, price in jobs}
    if sweep and len(prices) != 1:
        raise HTTPException(
            422, f"the specs' max_price differ ({len(prices)} prices): a sweep has one price "
            "(post one sweep per price)",
        )  # fmt: skip
    sweep_id = None
    with spending(services, token, total, f"a batch of {len(jobs)} jobs"):
        if sweep:
            sweep_id, tx = client.post_sweep([cid for cid, _ in jobs], prices.pop(), *windows)
            ids = list(range(sweep_id, sweep_id + len(jobs)))
        else:
            ids, tx = client.post_jobs(jobs, *windows)
    for job_id, (spec, cid) in zip(ids, stored, strict=True):
        pin_job(services, job_id, cid, spec)
    log.info("jobs posted job_ids=%d..%d tx=%s requester=%s escrow=%d token=%s", ids[0],
             ids[-1], tx.tx_hash, client.sender, total, token.name if token else "-")  # fmt: skip
    return JobBatchOut(
        tx_hash=tx.tx_hash,
        sweep_id=sweep_id,
        jobs=[
            JobPostedOut(job_id=job_id, tx_hash=tx.tx_hash, spec_cid=cid)
            for job_id, (_, cid) in zip(ids, stored, strict=True)
        ],
    )


def _common_windows(specs: list[JobSpec]) -> tuple[int, int]:
    """The batch's (claim window, run window): postJobs posts fast-path jobs sharing them."""
    for i, spec in enumerate(specs):
        if spec.payment.uses_terms:
            raise HTTPException(
                422, f"spec {i} has protocol terms (replicas, stake, token, allowlist or an "
                "auction): a batch posts fast-path jobs only; POST /jobs it alone",
            )  # fmt: skip
    windows = {(int(s.payment.claim_window), int(s.payment.run_window)) for s in specs}
    if len(windows) != 1:
        raise HTTPException(
            422, f"the specs' (claim_window, run_window) differ: {sorted(windows)}; a batch "
            "shares one pair (post one batch per pair)",
        )  # fmt: skip
    return windows.pop()
