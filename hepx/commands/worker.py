"""``hepx worker ...``: a worker's stake in the registry (register, unbond, withdraw, status).

These talk to the chain directly (the market is also the registry), signing with the worker's
key: an account's keystore (``--account``) or HEPX_PRIVATE_KEY.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from hepx.commands._chain import AccountOpt, DeploymentOpt, RpcOpt, chain_client, fail
from hepx.errors import HepxError
from hepx.units import format_wei, parse_wei

app = typer.Typer(
    help="Stake as a worker: register, unbond, withdraw, status.", no_args_is_help=True
)


def _amount(value: str, what: str) -> int:
    try:
        return parse_wei(value)
    except ValueError as exc:
        typer.echo(f"error: {what}: {exc} (e.g. '0.5 ether', '20 gwei' or 1000 wei)", err=True)
        raise typer.Exit(2) from exc


@app.command("register")
def register(
    stake: Annotated[str, typer.Option(help="Stake to bond, e.g. '1 ether' (may be 0)")] = "0",
    kinds: Annotated[
        str, typer.Option(help="Comma-separated job kinds this worker runs, e.g. echo,hep.pythia")
    ] = "",
    account: AccountOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
) -> None:
    """Register with a stake and kinds; if already registered, add the stake and kinds."""
    amount = _amount(stake, "--stake")
    names = [k.strip() for k in kinds.split(",") if k.strip()]
    client = chain_client(account, rpc, deployment)
    try:
        record = client.worker(client.sender)
        if not record.registered:
            tx = client.register(names, amount)
            typer.echo(
                f"registered {client.sender} with stake {format_wei(amount)}"
                f" kinds {','.join(names) or '-'} (tx {tx.tx_hash})"
            )
            return
        if amount:
            tx = client.add_stake(amount)
            typer.echo(f"added {format_wei(amount)} to the stake (tx {tx.tx_hash})")
        if names:
            tx = client.set_kinds(names, True)
            typer.echo(f"declared kinds {','.join(names)} (tx {tx.tx_hash})")
        if not amount and not names:
            typer.echo(f"{client.sender} is already registered; nothing to add")
    except HepxError as exc:
        raise fail(exc) from exc


@app.command("unbond")
def unbond(
    amount: Annotated[str, typer.Argument(help="Stake to unbond, e.g. '0.5 ether', or 'all'")],
    account: AccountOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
) -> None:
    """Start unbonding unlocked stake; `hepx worker withdraw` sends it after the delay."""
    client = chain_client(account, rpc, deployment)
    try:
        wei = client.worker(client.sender).available if amount == "all" else None
        wei = wei if wei is not None else _amount(amount, "amount")
        tx = client.unbond(wei)
        end = int(tx.event("UnbondStarted").args["unbondEnd"])
        typer.echo(
            f"unbonding {format_wei(wei)}, withdrawable from "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(end))} (tx {tx.tx_hash})"
        )
    except HepxError as exc:
        raise fail(exc) from exc


@app.command("withdraw")
def withdraw(
    account: AccountOpt = None, rpc: RpcOpt = None, deployment: DeploymentOpt = None
) -> None:
    """Withdraw unbonded stake whose delay has passed, and any ETH credit (earnings)."""
    client = chain_client(account, rpc, deployment)
    me = client.sender
    done = False
    try:
        record = client.worker(me)
        if record.unbonding:
            if time.time() < record.unbond_end:
                wait = record.unbond_end - int(time.time())
                typer.echo(f"{format_wei(record.unbonding)} still unbonding for {wait} s")
            else:
                # Sent unsimulated: the node may simulate at an older block time.
                tx = client.withdraw_stake(gas=120_000)
                typer.echo(f"withdrew stake {format_wei(record.unbonding)} (tx {tx.tx_hash})")
                done = True
        credit = client.withdrawable(me)
        if credit:
            tx = client.withdraw()
            typer.echo(f"withdrew credit {format_wei(credit)} (tx {tx.tx_hash})")
            done = True
    except HepxError as exc:
        raise fail(exc) from exc
    if not done:
        typer.echo("nothing to withdraw")


@app.command("status")
def status(
    address: Annotated[
        str | None, typer.Argument(help="Worker address (default: the signing account's)")
    ] = None,
    kinds: Annotated[str, typer.Option(help="Comma-separated kinds to check")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    account: AccountOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
) -> None:
    """Show a worker's stake, locked and unbonding amounts, credit and declared kinds."""
    client = chain_client(account, rpc, deployment, need_key=address is None)
    who = address or client.sender
    try:
        record = client.worker(who)
        names = [k.strip() for k in kinds.split(",") if k.strip()]
        declared = {k: client.has_kind(who, k) for k in names}
        credit = client.withdrawable(who)
        info = {
            "address": record.address,
            "registered": record.registered,
            "stake": record.stake,
            "locked": record.locked,
            "available": record.available,
            "unbonding": record.unbonding,
            "unbond_end": record.unbond_end,
            "withdrawable": credit,
            "kinds": declared,
        }
    except HepxError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    if not record.registered:
        typer.echo(f"{record.address} is not registered (hepx worker register)")
        return
    lines = [
        f"worker     {record.address}",
        f"stake      {format_wei(record.stake)} ({format_wei(record.locked)} locked by jobs)",
        f"unbonding  {format_wei(record.unbonding)}"
        + (
            f" until {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(record.unbond_end))}"
            if record.unbonding
            else ""
        ),
        f"credit     {format_wei(credit)}",
    ]
    lines += [
        f"kind       {k}: {'declared' if ok else 'not declared'}" for k, ok in declared.items()
    ]
    typer.echo("\n".join(lines))
