"""The explorer's JSON: live events (Server-Sent Events), the index's status, workers with
their stake, and decoded transactions."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.services import fresh_index, index_service
from hepx.errors import HepxError

_SSE_POLL = 0.3
_SSE_HEARTBEAT = 15.0

router = APIRouter()


@router.get("/events", summary="Decoded market events as Server-Sent Events (live)")
async def events(
    request: Request,
    job: Annotated[int | None, Query(description="Only this job's events")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Start after this event id (default: now)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="Close after this many events")] = None,
) -> StreamingResponse:
    service = index_service(request)
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
    service = index_service(request)
    index = service.refresh()
    return {
        **index.status(),
        "head": service.head,
        "ots": service.view().has_ots(),
        "states": index.state_counts(),
    }


@router.get("/explorer/workers", summary="Workers: jobs won, settled, failures, earnings")
def explorer_workers(request: Request) -> dict[str, Any]:
    return {"workers": workers_with_stake(request)}


def workers_with_stake(request: Request) -> list[dict[str, Any]]:
    """Index statistics per worker, with its stake from the registry where the market has one."""
    client = index_service(request).services.client()
    rows = []
    for stats in fresh_index(request).workers():
        row: dict[str, Any] = {**stats.__dict__, "stake": None, "locked": None}
        try:
            record = client.worker(stats.address)
            row["stake"], row["locked"] = record.stake, record.locked
        except (HepxError, ValueError, AttributeError):
            pass  # a market without a worker registry: the page says so
        rows.append(row)
    return rows


def tx_hash_of(value: str) -> str:
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
    view = index_service(request).view().tx(tx_hash_of(tx_hash))
    if view is None:
        raise HTTPException(404, f"no transaction {tx_hash} on this chain")
    return view.to_json()
