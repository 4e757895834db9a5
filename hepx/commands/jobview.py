"""``hepx job list|watch|logs|result``: read the market through the API's index and gateway.

Tables link job ids, tx hashes and addresses to the explorer (terminal hyperlinks); ``--json``
prints machine-readable output only (``watch --json`` prints one JSON event per line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table

from hepx.chain import FINAL_EVENTS
from hepx.commands.job import api_request, api_url
from hepx.units import format_wei

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ApiOption = Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only")]


def link(base: str, kind: str, value: Any, text: str | None = None) -> str:
    """Rich markup for ``text`` linking to the explorer page of a job, tx, address or block."""
    if value is None:
        return "-"
    shown = text if text is not None else str(value)
    return f"[link={base}/{kind}/{value}]{shown}[/link]"


def _short(value: str | None) -> str:
    return "-" if not value else f"{value[:8]}…{value[-6:]}"


def list_jobs(
    state: Annotated[
        str | None, typer.Option(help="open, claimed, submitted, settled, ...")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Job kind, e.g. hep.pythia")] = None,
    requester: Annotated[str | None, typer.Option(help="Requester address")] = None,
    worker: Annotated[str | None, typer.Option(help="Worker address")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500)] = 25,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs from the API's event index, newest first."""
    base = api_url(api)
    params = {
        k: v
        for k, v in {
            "state": state,
            "kind": kind,
            "requester": requester,
            "worker": worker,
            "page": page,
            "per_page": per_page,
        }.items()
        if v is not None
    }
    found = api_request("GET", f"{base}/jobs", params=params)
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table(title=f"jobs (page {found['page']}/{found['pages']}, {found['total']} total)")
    for column in ("job", "state", "kind", "requester", "worker", "price", "result"):
        table.add_column(column)
    for job in found["items"]:
        table.add_row(
            link(base, "job", job["job_id"]),
            job["state"],
            job["kind"] or "?",
            link(base, "address", job["requester"], _short(job["requester"])),
            link(base, "address", job["worker"], _short(job["worker"])),
            format_wei(job["price"]) if job["price"] is not None else "-",
            link(base, "result", job["result_cid"], _short(job["result_cid"])),
        )
    out.print(table)


def _sse(url: str, params: dict[str, Any]) -> Any:
    """Yield the JSON data of each Server-Sent Event from ``url``."""
    try:
        with httpx.stream("GET", url, params=params, timeout=httpx.Timeout(10, read=None)) as r:
            if r.status_code >= 400:
                r.read()
                err.print(f"[red]error {r.status_code}:[/] {r.text}")
                raise typer.Exit(1)
            for line in r.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line.removeprefix("data: "))
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] lost the event stream at {url}: {exc}")
        raise typer.Exit(3) from exc


def _describe(base: str, event: dict[str, Any]) -> str:
    args = {k: v for k, v in event["args"].items() if k != "jobId"}
    shown = []
    for key, value in args.items():
        if key in ("maxPrice", "price", "payment", "refund", "amount"):
            value = format_wei(int(value))
        elif isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            value = link(base, "address", value, _short(value))
        shown.append(f"{key}={value}")
    return (
        f"block {link(base, 'block', event['block'])} {event['event']:<16} {' '.join(shown)} "
        f"tx {link(base, 'tx', event['tx_hash'], _short(event['tx_hash']))}"
    )


def watch(
    job_id: int,
    api: ApiOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line")] = False,
) -> None:
    """Follow a job's events live (Server-Sent Events) until it is settled, cancelled or expired."""
    base = api_url(api)
    job = api_request("GET", f"{base}/jobs/{job_id}")
    if not as_json:
        err.print(f"job {job_id} in the explorer: {base}/job/{job_id}")
    status = None if as_json else err.status(f"job {job_id}: {job['state']}", spinner="dots")
    if status:
        status.start()
    try:
        # From the job's first event, so a finished job prints its whole history and returns.
        for event in _sse(f"{base}/events", {"job": job_id, "after": 0}):
            if as_json:
                typer.echo(json.dumps(event))
            else:
                out.print(_describe(base, event))
            if status and event["event"] != "Payment":
                status.update(f"job {job_id}: {event['event']} (waiting for the next event)")
            # The contract emits a settlement's Payments before its final event.
            if event["event"] in FINAL_EVENTS:
                break
    finally:
        if status:
            status.stop()


def _result(base: str, job_id: int) -> dict[str, Any]:
    return api_request("GET", f"{base}/jobs/{job_id}/result")


def logs(job_id: int, api: ApiOption = None) -> None:
    """Print the job.log the worker published with the job's result."""
    base = api_url(api)
    cid = _result(base, job_id)["result_cid"]
    try:
        reply = httpx.get(f"{base}/ipfs/{cid}/job.log", timeout=60)
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] the API at {base} is unreachable: {exc}")
        raise typer.Exit(3) from exc
    if reply.status_code == 404:
        err.print(f"[red]error:[/] result {cid} of job {job_id} has no job.log")
        raise typer.Exit(1)
    reply.raise_for_status()
    typer.echo(reply.text, nl=False)


def _files(base: str, cid: str, prefix: str = "") -> list[tuple[str, str, int]]:
    listing = api_request("GET", f"{base}/ipfs/{cid}", headers={"Accept": "application/json"})
    files: list[tuple[str, str, int]] = []
    for entry in listing["entries"]:
        path = f"{prefix}{entry['name']}"
        if entry["type"] == "directory":
            files.extend(_files(base, entry["cid"], path + "/"))
        else:
            files.append((path, entry["cid"], int(entry["size"])))
    return files


def result(
    job_id: int,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Download the result into this folder")
    ] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show where a job's result is; with --output, download it (verified by the gateway)."""
    base = api_url(api)
    found = _result(base, job_id)
    cid = found["result_cid"]
    if output is not None:
        files = _files(base, cid)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            console=err,
            disable=as_json,
        ) as progress:
            task = progress.add_task(f"result of job {job_id}", total=sum(s for *_, s in files))
            for path, file_cid, _ in files:
                dest = output / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                with httpx.stream("GET", f"{base}/ipfs/{file_cid}", timeout=60) as reply:
                    reply.raise_for_status()
                    with dest.open("wb") as sink:
                        for chunk in reply.iter_bytes():
                            sink.write(chunk)
                            progress.advance(task, len(chunk))
        found["output"] = str(output)
    if as_json:
        typer.echo(json.dumps(found))
        return
    out.print(f"result {cid} of job {job_id} ({found['state']})")
    out.print(f"  files   {base}/ipfs/{cid}")
    out.print(f"  preview {base}/result/{cid}")
    out.print(f"  tx      {base}/tx/{found['tx_hash']}")
    if output is not None:
        out.print(f"  saved   {output}")
