"""The API's errors and the one mapping from hepx errors to HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.models import ErrorOut
from hepx.chain import json_safe
from hepx.errors import (
    BlockCorrupted,
    BlockNotFound,
    ChainError,
    ChainUnavailable,
    ConfigError,
    HepxError,
    InvalidCar,
    InvalidCid,
    NoContract,
    PathNotFound,
    SpecError,
    StoreError,
    TxReverted,
)

log = logging.getLogger("hepx.api")

# Reverts of postJob that mean the request itself is wrong, not the market's state.
_INPUT_ERRORS = (
    "JobMarketInvalidWindow",
    "JobMarketInvalidEscrow",
    "JobMarketEmptyCid",
    "JobMarketPriceAboveMax",
    "CourtInvalidPanel",
    "CourtInvalidBond",
)
# The error answers routes declare in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503)
}


class NoSuchHistogram(StoreError):
    """The stored ROOT file has no histogram of that name."""


class RangeNotSatisfiable(Exception):
    """A Range header that asks only for bytes past the end (answered 416)."""


def error_response(exc: HepxError, request: Request | None = None) -> JSONResponse:
    """The one mapping from hepx errors to HTTP status codes."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, SpecError):
        status = 422
    elif isinstance(exc, InvalidCid | InvalidCar):
        status = 400
    elif isinstance(exc, BlockNotFound | PathNotFound | NoSuchHistogram):
        status = 404
    elif isinstance(exc, BlockCorrupted):
        status, body["detail"] = 502, f"stored {exc}: the store is damaged or was tampered with"
    elif isinstance(exc, StoreError):
        status = 500
    elif isinstance(exc, ConfigError):
        status = 503
    elif isinstance(exc, ChainUnavailable):
        status, body["detail"] = 503, f"chain unavailable: {exc}"
    elif isinstance(exc, NoContract):
        status = 503
        if request is not None:
            settings = request.app.state.services.settings
            body["detail"] = (
                f"no JobMarket contract answers on {settings.rpc_url} at the address in "
                f"{settings.deployment_path} (was the chain restarted?): redeploy the contracts"
            )
    elif isinstance(exc, TxReverted):
        status = 422 if exc.error in _INPUT_ERRORS else 409
        body["error"] = exc.error
        body["args"] = [json_safe(a) for a in exc.error_args]
    elif isinstance(exc, ChainError):
        status = 502
    else:
        status = 500
    if status >= 500:
        log.warning("request failed status=%d error=%s", status, body["detail"])
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    async def on_hepx_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HepxError)
        return error_response(exc, request)

    app.add_exception_handler(HepxError, on_hepx_error)
