"""``hepx worker list``: workers as the API's event index sees them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hepx.commands.job import api_request, api_url
from hepx.commands.jobview import link
from hepx.units import format_wei

out = Console(soft_wrap=True)


def list_workers(
    api: Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only")] = False,
) -> None:
    """Every worker that claimed a job: jobs won, settled, failures and earnings."""
    base = api_url(api)
    workers = api_request("GET", f"{base}/explorer/workers")["workers"]
    if as_json:
        typer.echo(json.dumps(workers))
        return
    table = Table(title=f"workers ({len(workers)})")
    for column in ("worker", "jobs won", "settled", "in progress", "failures", "earnings"):
        table.add_column(column)
    for w in workers:
        table.add_row(
            link(base, "address", w["address"]),
            str(w["jobs_won"]),
            str(w["settled"]),
            str(w["in_progress"]),
            str(w["failures"]),
            format_wei(w["earnings"]),
        )
    out.print(table)
