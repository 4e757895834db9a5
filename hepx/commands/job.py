"""``hepx job ...``: submit jobs through the REST API and follow them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from hepx.chain import DEFAULT_PANEL, FINAL_STATE_LABELS, CourtClient, JobState, MarketClient
from hepx.commands._chain import AccountOpt, DeploymentOpt, RpcOpt, chain_client, fail
from hepx.config import load_settings
from hepx.deployment import Deployment
from hepx.errors import HepxError, SpecError, StoreError, TxReverted
from hepx.kinds import why_not_disputable
from hepx.spec import JobSpec, canonical_json, json_schema, load_spec_file, parse_spec
from hepx.store import LocalStore, open_store
from hepx.terms import post_spec
from hepx.units import format_wei

app = typer.Typer(help="Submit jobs and follow them.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

# expire releases up to 8 replicas' stakes: a fixed limit when sent unsimulated.
EXPIRE_GAS = 400_000

# Re-runs a spec here and returns (our digest, the published result's digest or None): the
# agent's executors do it, so the entry module (hepx/cli.py) plugs it in; the core has none.
Recheck = Callable[[JobSpec, LocalStore, str, Path], tuple[bytes, bytes | None]]
RECHECK: Recheck | None = None


def api_url(api: str | None) -> str:
    return (api or load_settings().api_url).rstrip("/")


def api_request(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    headers = {**load_settings().api_headers(), **kwargs.pop("headers", {})}
    try:
        reply = httpx.request(method, url, timeout=60, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        console.print(
            f"[red]error:[/] the API at {url} is unreachable: {exc} (is `hepx devnet up` running?)"
        )
        raise typer.Exit(3) from exc
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        console.print(f"[red]error {reply.status_code}:[/] {detail}")
        raise typer.Exit(1)
    result: dict[str, Any] = reply.json()
    return result


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a job spec (apiVersion hepx/v1)."""
    typer.echo(json.dumps(json_schema(), indent=2))


@app.command("submit")
def submit(
    spec_file: Annotated[
        Path, typer.Argument(help="Job spec (YAML or JSON)", exists=True, dir_okay=False)
    ],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends")] = False,
    api: Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only")] = False,
    account: Annotated[
        str | None,
        typer.Option(
            help="Post on chain from this account (see `hepx account`): it pays the escrow "
            "and the API only stores the spec. Default: the API posts with its own key.",
            envvar="HEPX_ACCOUNT",
        ),
    ] = None,
    deployment: DeploymentOpt = None,
) -> None:
    """Validate a spec locally, submit it, and optionally wait for the result."""
    try:
        spec = load_spec_file(spec_file)
    except SpecError as exc:
        console.print(f"[red]invalid spec {spec_file}:[/] {exc}")
        raise typer.Exit(1) from exc
    base = api_url(api)
    if account is None:
        body = spec.model_dump(mode="json", by_alias=True)
        posted = api_request("POST", f"{base}/jobs", json=body)
    else:
        posted = _post_signed(base, spec, chain_client(account, None, deployment))
    if not as_json:
        console.print(
            f"job [bold]{posted['job_id']}[/] posted: spec {posted['spec_cid']} "
            f"max price {format_wei(spec.payment.max_price_wei)} tx {posted['tx_hash']}"
        )
        console.print(f"  explorer {base}/job/{posted['job_id']}  (live: hepx job watch)")
    if not wait:
        typer.echo(json.dumps(posted) if as_json else posted["job_id"])
        return
    timeout = spec.payment.claim_window + spec.payment.run_window + 3600
    job = follow(base, int(posted["job_id"]), timeout, quiet=as_json)
    if as_json:
        typer.echo(json.dumps(job))
    elif job["state"] == "settled":
        typer.echo(
            f"settled: result {job['result_cid']} worker {job['worker']} "
            f"price {format_wei(job['price'])} settle tx {job['settle_tx']}"
        )
    else:
        typer.echo(f"job {job['job_id']} ended {job['state']} (tx {job.get('settle_tx')})")
    if job["state"] != "settled":
        raise typer.Exit(1)


def _post_signed(base: str, spec: JobSpec, client: MarketClient) -> dict[str, Any]:
    """Store the spec through the API (workers fetch it there), then post the job on chain
    with the caller's own key: the escrow is the caller's, the API holds no key for it."""
    for ref in spec.inputs:
        try:
            present = httpx.head(f"{base}/ipfs/{ref.cid}", timeout=30).status_code == 200
        except httpx.HTTPError:
            present = False
        if not present:
            console.print(f"[red]error:[/] input {ref.name!r} ({ref.cid}) is not at {base}: "
                          "add it with POST /ipfs or `hepx store add` there first")  # fmt: skip
            raise typer.Exit(1)
    stored = api_request("POST", f"{base}/ipfs", content=canonical_json(spec))
    try:
        job_id, tx = post_spec(client, str(stored["cid"]), spec)
    except HepxError as exc:
        raise fail(exc) from exc
    return {"job_id": job_id, "tx_hash": tx.tx_hash, "spec_cid": stored["cid"],
            "requester": client.sender}  # fmt: skip


def follow(base: str, job_id: int, timeout: float, quiet: bool = False) -> dict[str, Any]:
    """Poll the job, printing each transition as it lands, until it ends or ``timeout``."""
    seen = 0
    started = time.monotonic()
    job: dict[str, Any] = {}
    with console.status("waiting", spinner="dots") as status:
        while time.monotonic() - started < timeout:
            job = api_request("GET", f"{base}/jobs/{job_id}")
            for step in job["transitions"][seen:]:
                if not quiet and step["event"] != "Payment":
                    args = {k: v for k, v in step["args"].items() if k != "jobId"}
                    shown = " ".join(f"{k}={v}" for k, v in args.items())
                    console.print(
                        f"  block {step['block']:>5}  {step['event']:<16} {shown}"
                        f"  tx {step['tx_hash']}"
                    )
            seen = len(job["transitions"])
            if job["state"] in FINAL_STATE_LABELS:
                return job
            if why := job.get("lapsed"):
                console.print(
                    f"[red]job {job_id} is {job['state']} and will not end by itself: {why}.[/] "
                    f"`hepx job expire {job_id}` returns its escrow of {format_wei(job['escrow'])} "
                    "to the requester"
                )
                raise typer.Exit(3)
            status.update(f"job {job_id}: {job['state']} ({time.monotonic() - started:.0f} s)")
            time.sleep(0.5)
    console.print(
        f"[red]gave up waiting for job {job_id} after {timeout:.0f} s[/] (state {job.get('state')})"
    )
    raise typer.Exit(4)


@app.command("get")
def get(
    job_id: int,
    api: Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")] = None,
) -> None:
    """Print a job's state, worker, result and transitions as JSON."""
    typer.echo(json.dumps(api_request("GET", f"{api_url(api)}/jobs/{job_id}"), indent=2))


# ---------------------------------------------------------------- requester and anyone, on chain
# These sign with the caller's key and talk to the chain directly (no API needed).


@app.command("cancel")
def cancel(
    job_id: int, account: AccountOpt = None, rpc: RpcOpt = None, deployment: DeploymentOpt = None
) -> None:
    """Cancel your job before anyone claimed or bid on it; the escrow becomes your credit."""
    client = chain_client(account, rpc, deployment)
    try:
        tx = client.cancel(job_id)
    except HepxError as exc:
        raise fail(exc) from exc
    refund = tx.event("JobCancelled").args["refund"]
    typer.echo(f"job {job_id} cancelled: {refund} refunded to your credit (tx {tx.tx_hash})")


@app.command("accept")
def accept(
    job_id: int, account: AccountOpt = None, rpc: RpcOpt = None, deployment: DeploymentOpt = None
) -> None:
    """Accept your job's submitted result now: the worker is paid (the rest of the escrow was
    refunded to you when it claimed)."""
    client = chain_client(account, rpc, deployment)
    try:
        tx = client.accept(job_id)
    except HepxError as exc:
        raise fail(exc) from exc
    settled = tx.event("JobSettled").args
    typer.echo(
        f"job {job_id} settled: {settled['payment']} paid to {settled['worker']} (tx {tx.tx_hash})"
    )


@app.command("expire")
def expire(
    job_id: int, account: AccountOpt = None, rpc: RpcOpt = None, deployment: DeploymentOpt = None
) -> None:
    """Expire a job whose claim, bid or run deadline passed (anyone may): refund, slash."""
    client = chain_client(account, rpc, deployment)
    try:
        try:
            tx = client.expire(job_id)
        except TxReverted as exc:
            # The node simulates at its last block's time, which on an idle chain may still be
            # before a deadline the wall clock has passed: then send it unsimulated.
            due = int(str(exc.error_args[1])) if len(exc.error_args) > 1 else 0
            if exc.error != "JobMarketDeadlineNotReached" or time.time() <= due:
                raise
            tx = client.expire(job_id, gas=EXPIRE_GAS)
    except HepxError as exc:
        raise fail(exc) from exc
    expired = tx.event("JobExpired").args
    typer.echo(f"job {job_id} expired: {expired['refund']} refunded (tx {tx.tx_hash})")


@app.command("dispute")
def dispute(
    job_id: int,
    panel: Annotated[
        int, typer.Option(help="Verifiers to draw (odd, 3-9); the bond is panel x the price")
    ] = DEFAULT_PANEL,
    recheck: Annotated[
        bool,
        typer.Option(
            help="Re-run the spec here first and dispute only if the result differs from "
            "what we get"
        ),
    ] = False,
    account: AccountOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
) -> None:
    """Dispute a submitted result within its challenge window (you or anyone, with a bond):
    verifiers drawn by stake re-run the job; a refuted worker is slashed and you refunded, an
    upheld one is paid and your bond pays the verifiers."""
    client = chain_client(account, rpc, deployment)
    settings = load_settings(deployment=deployment)
    try:
        job = client.job(job_id)
        if job.state != JobState.SUBMITTED:
            typer.echo(f"error: job {job_id} is {job.state.label}: only a submitted result can "
                       "be disputed", err=True)  # fmt: skip
            raise typer.Exit(1)
        since = Deployment.load(settings.deployment_path).deploy_block
        found = client.latest_events(job_id, since, ("JobPosted", "ResultSubmitted"))
        store = open_store(settings)
        spec = _readable_spec(store, str(found.get("JobPosted", {}).get("specCid", "")))
        if spec is not None and (why := why_not_disputable(spec.kind)) is not None:
            typer.echo(f"error: job {job_id} ({spec.kind}) is not disputable: {why}", err=True)
            raise typer.Exit(1)
        if recheck:
            if spec is None or "ResultSubmitted" not in found:
                typer.echo(f"error: job {job_id}'s spec or result cannot be read here", err=True)
                raise typer.Exit(1)
            submitted = found["ResultSubmitted"]
            workdir = settings.home / "recheck" / str(job_id)
            if _recheck_agrees(spec, store, str(submitted["resultCid"]),
                               bytes(submitted["digest"]), workdir):  # fmt: skip
                typer.echo(f"job {job_id}: the result checks out here; not disputed")
                return
        court = CourtClient.of_market(client)
        tx = court.open_dispute(job_id, job.price, panel)
        opened = court.dispute(job_id)
    except HepxError as exc:
        raise fail(exc) from exc
    assert opened is not None
    typer.echo(
        f"job {job_id} disputed (tx {tx.tx_hash}): bond {format_wei(opened.bond)}, "
        f"{panel} verifiers drawn until {opened.draw_deadline}, verdict after "
        f"{opened.reveal_deadline} at the latest; follow it with `hepx job get {job_id}`"
    )


def _readable_spec(store: LocalStore, spec_cid: str) -> JobSpec | None:
    try:
        return parse_spec(store.read_bytes(spec_cid)) if spec_cid else None
    except (StoreError, SpecError):
        return None


def _recheck_agrees(
    spec: JobSpec, store: LocalStore, result_cid: str, submitted: bytes, workdir: Path
) -> bool:
    """Re-run the spec here: True if our digest, the submitted one and the published
    result's all agree. Says what it found either way."""
    if RECHECK is None:
        typer.echo("error: --recheck needs the hepx agent package (its executors)", err=True)
        raise typer.Exit(2)
    console.print(f"re-running the job ({spec.kind}) here to check result {result_cid} ...")
    own, published = RECHECK(spec, store, result_cid, workdir)
    console.print(
        f"our digest 0x{own.hex()}; submitted 0x{submitted.hex()}; the published result's "
        f"{'0x' + published.hex() if published else 'unreadable'}"
    )
    return own == submitted == published
