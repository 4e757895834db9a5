"""What the commands that sign transactions themselves share: options, client, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hepx.chain import MarketClient
from hepx.commands.account import keystores, secret_from
from hepx.config import load_settings
from hepx.deployment import Deployment
from hepx.errors import AccountError, HepxError

AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Account (keystore) that signs, see `hepx account`; default HEPX_ACCOUNT, else "
        "the key in HEPX_PRIVATE_KEY (devnets and CI)",
        envvar="HEPX_ACCOUNT",
    ),
]
RpcOpt = Annotated[str | None, typer.Option(help="JSON-RPC URL (default: the deployment's)")]
DeploymentOpt = Annotated[Path | None, typer.Option(help="Deployment file")]


def chain_client(
    account: str | None, rpc: str | None, deployment: Path | None, need_key: bool = True
) -> MarketClient:
    """A market client from the deployment file and settings, signing with ``account``'s
    keystore (its password from a prompt or the variable HEPX_PASSWORD_ENV names) or else the
    key in HEPX_PRIVATE_KEY; exits 2 with a clear message."""
    key = unlock(account) if account else None
    settings = load_settings(deployment=deployment, private_key=key)
    try:
        deployed = Deployment.load(settings.deployment_path)
    except HepxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    secret = settings.private_key.get_secret_value() if settings.private_key else None
    if need_key and secret is None:
        typer.echo(
            "error: no key: pass --account NAME (see `hepx account new`) or set "
            "HEPX_PRIVATE_KEY (devnets and CI)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        return MarketClient.from_deployment(deployed, rpc or None, secret)
    except (HepxError, ValueError) as exc:  # ValueError: a malformed key; never echo it
        typer.echo(f"error: cannot use this key or deployment: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from exc


def unlock(account: str) -> str:
    """The private key of ``account``, its password asked or read from the environment."""
    password = secret_from(os.environ.get("HEPX_PASSWORD_ENV"), f"password of account {account}")
    try:
        return keystores().unlock(account, password)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def fail(exc: HepxError) -> typer.Exit:
    """Print a refused or failed call as one line; the caller raises the returned Exit(1)."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)
