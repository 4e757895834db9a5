"""``hepx agent ...``: run a worker agent."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from agent.metrics import AgentMetrics
from agent.policy import Policy
from agent.worker import WorkerAgent
from hepx.chain import MarketClient
from hepx.config import load_settings
from hepx.deployment import Deployment
from hepx.errors import HepxError
from hepx.logs import configure_logging
from hepx.store import open_store

app = typer.Typer(
    help="Run a worker agent that claims, runs and submits jobs.", no_args_is_help=True
)


@app.command("run")
def run(
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (YAML); default: every kind at 1 wei")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="Worker private key (default HEPX_PRIVATE_KEY)", envvar="HEPX_WORKER_KEY"
        ),
    ] = None,
    rpc: Annotated[
        str | None, typer.Option(help="JSON-RPC URL (default: the deployment's)")
    ] = None,
    deployment: Annotated[Path | None, typer.Option(help="Deployment file")] = None,
    store: Annotated[Path | None, typer.Option(help="Local blockstore folder")] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Cursor and job book (default <home>/agent-<address>)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus /metrics on this port (127.0.0.1)",
            envvar="HEPX_AGENT_METRICS_PORT",
        ),
    ] = None,
) -> None:
    """Follow the market and work until Ctrl-C."""
    settings = load_settings(deployment=deployment, store_dir=store, private_key=key)
    configure_logging(log_level)
    try:
        deployed = Deployment.load(settings.deployment_path)
        secret = settings.private_key.get_secret_value() if settings.private_key else None
        client = MarketClient.from_deployment(deployed, rpc or None, secret)
        worker_address = client.sender
        agent = WorkerAgent(
            client,
            open_store(settings),  # HEPX_STORE_BACKEND; HEPX_GATEWAY_URL fetches what is missing
            Policy.load(policy),
            state_dir or settings.home / f"agent-{worker_address.lower()}",
            start_block=deployed.deploy_block,
            confirmations=settings.confirmations,
            poll_interval=settings.poll_interval,
            ws_url=None if settings.ws_url == "none" else (settings.ws_url or ""),
        )
    except HepxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if metrics_port is not None:
        metrics = AgentMetrics(client, settings.store_path)
        metrics.agent = agent
        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            typer.echo(f"error: cannot serve metrics on port {metrics_port}: {exc}", err=True)
            raise typer.Exit(2) from exc
    agent.pin_retention = settings.pin_retention
    agent.publish_url = settings.publish_url
    agent.publish_headers = settings.api_headers()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)
