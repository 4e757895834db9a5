"""``hepx devnet up``: the whole stack on this machine until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from hepx.config import load_settings
from hepx.devnet import run_devnet, start_devnet
from hepx.devnet_containers import DEFAULT_WORKER_IMAGE
from hepx.errors import HepxError
from hepx.llm_server import llm_plan

app = typer.Typer(
    help="A local devnet: anvil, the market, the API and worker agents.", no_args_is_help=True
)


@app.command("up")
def up(
    workers: Annotated[int, typer.Option(help="Number of worker agents")] = 2,
    anvil_port: Annotated[int, typer.Option(help="Anvil JSON-RPC port")] = 8545,
    api_port: Annotated[int, typer.Option(help="REST API port")] = 8000,
    challenge_window: Annotated[
        int, typer.Option(help="Seconds before anyone may finalize a result")
    ] = 10,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file for every worker", exists=True)
    ] = None,
    workers_in_containers: Annotated[
        bool,
        typer.Option(help="Run the agents in containers (Docker socket mounted; make images)"),
    ] = False,
    worker_image: Annotated[
        str, typer.Option(help="Image of the containerised agents")
    ] = DEFAULT_WORKER_IMAGE,
    separate_hosts: Annotated[
        bool,
        typer.Option(
            help="Chain and API on one host, each worker on its own (network namespaces, own "
            "store; data only through the gateway). Needs root; no LLM server"
        ),
    ] = False,
    llm: Annotated[
        bool | None,
        typer.Option(
            "--llm/--no-llm",
            help="Start the local LLM server for llm.* jobs (default: if the llm extra is "
            "installed, or when its background build ends)",
        ),
    ] = None,
) -> None:
    """Start anvil, deploy, start the API and the workers; stop them all on Ctrl-C."""
    settings = load_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo("starting anvil, deploying JobMarket, starting the API and workers ...", err=True)
    try:
        devnet = start_devnet(
            settings.home,
            workers,
            anvil_port,
            api_port,
            challenge_window,
            policy,
            worker_image=worker_image if workers_in_containers else None,
            llm="off" if separate_hosts and llm is None else llm_plan(llm),
            separate_hosts=separate_hosts,
        )
    except HepxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(devnet.summary(), err=True)
    reason = run_devnet(devnet, stop)
    if reason:
        typer.echo(f"devnet stopped: {reason}", err=True)
        raise typer.Exit(1)
    typer.echo("devnet stopped", err=True)
