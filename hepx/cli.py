"""The ``hepx`` command: wires the core's, the agent's and the API's subcommands.

This entry module is the only place that imports all three (DESIGN.md, dependencies).
"""

from __future__ import annotations

import typer

from agent.cli import app as agent_app
from agent.verification import recheck_as_requester
from api.cli import app as api_app
from hepx import __version__
from hepx.commands import (
    account,
    devnet,
    explorer,
    job,
    jobview,
    store,
    worker,
    workerview,
    workflow,
)
from hepx.commands.deploy import deploy

app = typer.Typer(
    help="hepx: a compute marketplace for HEP and AI on Ethereum.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("deploy")(deploy)
app.add_typer(account.app, name="account")
app.add_typer(store.app, name="store")
app.add_typer(job.app, name="job")
app.add_typer(worker.app, name="worker")
app.add_typer(devnet.app, name="devnet")
app.add_typer(workflow.app, name="workflow")
app.add_typer(agent_app, name="agent")
app.add_typer(api_app, name="api")
app.add_typer(explorer.app, name="explorer")
# Read-side commands over the API's event index, kept out of job.py/worker.py's write side.
job.app.command("list")(jobview.list_jobs)
job.app.command("watch")(jobview.watch)
job.app.command("logs")(jobview.logs)
job.app.command("result")(jobview.result)
worker.app.command("list")(workerview.list_workers)
# `hepx job dispute --recheck` re-runs the spec with the agent's executors.
job.RECHECK = recheck_as_requester


@app.command("version")
def version() -> None:
    """Print the hepx version."""
    typer.echo(__version__)


def main() -> None:
    app()
