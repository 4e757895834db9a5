"""``hepx api run``: serve the REST API with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from hepx.config import load_settings
from hepx.logs import configure_logging

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
) -> None:
    """Serve the API: jobs on chain, /ipfs gateway, /health, OpenAPI docs at /docs."""
    level = log_level.lower()
    if level not in _LEVELS:
        raise typer.BadParameter(f"{log_level!r}: choose one of {', '.join(_LEVELS)}")
    configure_logging(level, name="api")
    settings = load_settings(rpc_url=rpc, deployment=deployment, store_dir=store, private_key=key)
    typer.echo(
        f"hepx API on http://{host}:{port} (docs /docs); chain {settings.rpc_url}, "
        f"deployment {settings.deployment_path}, store {settings.store_path}"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=level)
