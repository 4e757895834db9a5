"""``hepx api run``: serve the REST API with uvicorn; ``hepx api token``: its tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from hepx.api_tokens import Scope, TokenBook, TokenRecord
from hepx.config import load_settings
from hepx.errors import ConfigError
from hepx.logs import configure_logging
from hepx.units import format_wei, parse_bytes, parse_wei

app = typer.Typer(help="The hepx REST API and content gateway.", no_args_is_help=True)

_LEVELS = ("critical", "error", "warning", "info", "debug")


@app.callback()
def _group() -> None:
    """The hepx REST API and content gateway."""  # keeps `run` a subcommand


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (HEPX_RPC_URL)")] = None,
    deployment: Annotated[
        Path | None, typer.Option(help="Deployment file (HEPX_DEPLOYMENT)")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="Store folder (HEPX_STORE_DIR)")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="Requester private key; prefer HEPX_PRIVATE_KEY (a flag shows in `ps`)",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help=f"One of {', '.join(_LEVELS)}", case_sensitive=False)
    ] = "info",
    custodial: Annotated[
        bool | None,
        typer.Option(
            "--custodial/--no-custodial",
            help="Post and dispute jobs paid from the API's key for callers without a wallet "
            "(HEPX_CUSTODIAL; default off)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the API: jobs on chain, /ipfs gateway, /health, OpenAPI docs at /docs."""
    level = log_level.lower()
    if level not in _LEVELS:
        raise typer.BadParameter(f"{log_level!r}: choose one of {', '.join(_LEVELS)}")
    settings = load_settings(
        rpc_url=rpc,
        deployment=deployment,
        store_dir=store,
        private_key=key,
        api_host=host,
        custodial=custodial,
    )
    try:
        api = create_app(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(level, name="api")  # once it will serve: a refusal configures nothing
    tokens = "tokens required" if api.state.services.tokens.has_active() else "no tokens"
    typer.echo(
        f"hepx API on http://{host}:{port} (docs /docs); chain {settings.rpc_url}, "
        f"deployment {settings.deployment_path}, store {settings.store_path}; "
        f"custodial {'on' if settings.custodial else 'off'}, {tokens}"
    )
    uvicorn.run(api, host=host, port=port, log_level=level)


token_app = typer.Typer(
    help="API tokens: who may spend the API's key (custodial mode) or store, and how much.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


def _book() -> TokenBook:
    return TokenBook(load_settings().tokens_file)


def _row(record: TokenRecord) -> dict[str, object]:
    return {
        "name": record.name,
        "scopes": list(record.scopes),
        "budget_wei": record.budget_wei,
        "spent_wei": record.spent_wei,
        "remaining_wei": record.remaining_wei,
        "upload_quota": record.upload_quota,
        "uploaded": record.uploaded,
        "revoked": record.revoked is not None,
    }


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Argument(help="Who the token is for (letters, digits, -_.)")],
    budget: Annotated[
        str, typer.Option(help="Most the token may spend of the API's key, e.g. '0.5 ether'")
    ] = "0",
    upload_quota: Annotated[
        str, typer.Option(help="Most bytes the token may upload, e.g. 1GiB")
    ] = "1GiB",
    scope: Annotated[
        list[Scope] | None,
        typer.Option(help="What it may do (repeat): jobs, store; default both"),
    ] = None,
) -> None:
    """Make a token; its secret is printed once (only its hash is kept)."""
    try:
        secret, record = _book().create(
            name, tuple(scope or Scope), parse_wei(budget), parse_bytes(upload_quota)
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(secret)
    typer.echo(
        f"token {record.name!r}: scopes {', '.join(record.scopes)}, budget "
        f"{format_wei(record.budget_wei)}, upload quota {record.upload_quota} bytes "
        "(the secret above is shown once; send it as 'Authorization: Bearer <secret>' or "
        "set HEPX_API_TOKEN)",
        err=True,
    )


@token_app.command("list")
def token_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Every token with its budget and quota, spent and used (secrets are never shown)."""
    records = _book().records()
    if as_json:
        typer.echo(json.dumps([_row(r) for r in records], indent=2))
        return
    if not records:
        typer.echo("no API tokens (make one with `hepx api token new NAME`)")
        return
    for r in records:
        state = "revoked" if r.revoked is not None else "active"
        typer.echo(
            f"{r.name:20} {state:8} scopes {','.join(r.scopes):11} spent "
            f"{format_wei(r.spent_wei)} of {format_wei(r.budget_wei)}, uploaded {r.uploaded} "
            f"of {r.upload_quota} bytes"
        )


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Revoke a token at once (the API reads the book on every call)."""
    try:
        record = _book().revoke(name)
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"token {record.name!r} revoked")
