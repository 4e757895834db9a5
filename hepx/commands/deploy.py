"""``hepx deploy``: deploy the market to any RPC URL and write the deployment file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hepx.chain import deploy_market
from hepx.config import load_settings
from hepx.errors import HepxError


def deploy(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (default HEPX_RPC_URL)")] = None,
    key: Annotated[
        str | None, typer.Option(help="Deployer private key (default HEPX_PRIVATE_KEY)")
    ] = None,
    challenge_window: Annotated[
        int, typer.Option(help="Seconds a requester has to check a result")
    ] = 60,
    out: Annotated[
        Path | None, typer.Option(help="Deployment file (default <home>/deployment.json)")
    ] = None,
) -> None:
    """Deploy JobMarket from the shipped artifacts; print and save where it lives."""
    settings = load_settings(rpc_url=rpc, private_key=key, deployment=out)
    if settings.private_key is None:
        typer.echo(
            "error: no deployer key: pass --key or set HEPX_PRIVATE_KEY "
            "(on a local anvil, use one of the keys it prints)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        deployment = deploy_market(
            settings.rpc_url, settings.private_key.get_secret_value(), challenge_window
        )
    except HepxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    deployment.save(settings.deployment_path)
    typer.echo(
        f"JobMarket {deployment.job_market} on chain {deployment.chain_id} "
        f"(block {deployment.deploy_block}, tx {deployment.deploy_tx})\n"
        f"deployment file: {settings.deployment_path}"
    )
