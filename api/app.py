"""The hepx REST API: post jobs, follow them, an IPFS-style gateway to the content store, and
the explorer. ``create_app`` wires the routes (api/routes/, one module per resource) to the
shared services (api/services.py); the lifespan runs the event index's background thread.

Routes that touch web3 or the store are plain ``def`` (FastAPI runs them in its threadpool);
the ones that read a raw request body are ``async`` and hand the work to the threadpool.
hepx errors become HTTP answers in one place (api/errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.access import check_exposure, install_access
from api.errors import install_error_handlers
from api.limits import install_limits
from api.metrics import install_metrics
from api.routes import explorer, health, ipfs, job_batches, jobs, pages
from api.services import Services
from hepx.config import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings`` (default: environment and config file)."""
    services = Services(settings or load_settings())
    check_exposure(services.settings, services.tokens)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.index.start()
        try:
            yield
        finally:
            services.index.stop()

    app = FastAPI(
        title="hepx",
        summary="Compute marketplace for HEP and AI: jobs on chain, data by CID",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    install_access(app)
    install_limits(app, services.settings, services.tokens)
    # jobs before explorer: /jobs/schema must match before /jobs/{job_id} of no other router.
    for module in (job_batches, jobs, ipfs, health, explorer, pages):
        app.include_router(module.router)
    install_metrics(app, services.index)
    return app
