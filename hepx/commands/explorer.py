"""``hepx explorer open``: the API's web explorer in a browser (or just its URL)."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer
from web3 import Web3

from hepx.commands.job import api_url

app = typer.Typer(help="The web explorer served by the API.", no_args_is_help=True)


def explorer_url(
    base: str, job: int | None = None, tx: str | None = None, address: str | None = None
) -> str:
    """The explorer page for one job, transaction or address (the job list without any)."""
    if sum(v is not None for v in (job, tx, address)) > 1:
        raise typer.BadParameter("give at most one of --job, --tx, --address")
    if job is not None:
        return f"{base}/job/{job}"
    if tx is not None:
        if len(tx) != 66 or not tx.startswith("0x"):
            raise typer.BadParameter(f"{tx!r} is not a transaction hash (0x + 64 hex digits)")
        return f"{base}/tx/{tx}"
    if address is not None:
        if not Web3.is_address(address):
            raise typer.BadParameter(f"{address!r} is not an address (0x + 40 hex digits)")
        return f"{base}/address/{address}"
    return f"{base}/"


@app.command("open")
def open_explorer(
    job: Annotated[int | None, typer.Option(help="Open this job's page")] = None,
    tx: Annotated[str | None, typer.Option(help="Open this transaction's page")] = None,
    address: Annotated[str | None, typer.Option(help="Open this address's page")] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the URL instead of opening a browser")
    ] = False,
    api: Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")] = None,
) -> None:
    """Open the explorer (the job list, or one job, tx or address) in a web browser."""
    url = explorer_url(api_url(api), job, tx, address)
    typer.echo(url)
    if not print_only and not webbrowser.open(url):
        typer.echo("no browser found here: open the URL above yourself", err=True)
