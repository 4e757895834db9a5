"""``hepx deploy``: deploy the market to any RPC URL and write the deployment file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hepx.chain import deploy_market
from hepx.commands._chain import AccountOpt, unlock
from hepx.config import load_settings
from hepx.errors import HepxError
from hepx.units import format_wei, parse_wei


def deploy(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL (default HEPX_RPC_URL)")] = None,
    key: Annotated[
        str | None,
        typer.Option(help="Deployer private key (devnets and CI; default HEPX_PRIVATE_KEY)"),
    ] = None,
    account: AccountOpt = None,
    challenge_window: Annotated[
        int, typer.Option(help="Seconds a requester has to check a result")
    ] = 60,
    out: Annotated[
        Path | None, typer.Option(help="Deployment file (default <home>/deployment.json)")
    ] = None,
    stake_free_limit: Annotated[
        str | None,
        typer.Option(
            help="Highest job price taken without a stake, e.g. '0.01 ether' (default: 0, "
            "every paid job staked; on a devnet 0.01 ether)"
        ),
    ] = None,
) -> None:
    """Deploy JobMarket from the shipped artifacts; print and save where it lives."""
    if account is not None:
        key = unlock(account)
    settings = load_settings(rpc_url=rpc, private_key=key, deployment=out)
    if settings.private_key is None:
        typer.echo(
            "error: no deployer key: pass --account NAME (`hepx account`), --key or set "
            "HEPX_PRIVATE_KEY "
            "(on a local anvil, use one of the keys it prints)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        limit = None if stake_free_limit is None else parse_wei(stake_free_limit)
        deployment = deploy_market(
            settings.rpc_url,
            settings.private_key.get_secret_value(),
            challenge_window,
            stake_free_limit=limit,
        )
    except HepxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    deployment.save(settings.deployment_path)
    typer.echo(
        f"JobMarket {deployment.job_market} on chain {deployment.chain_id} "
        f"(block {deployment.deploy_block}, tx {deployment.deploy_tx})\n"
        f"deployment file: {settings.deployment_path}\n"
        f"jobs above {format_wei(deployment.stake_free_limit)} need a worker stake of their price"
    )
