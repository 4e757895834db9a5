"""What one client may send: writes per minute (429 with Retry-After) and body sizes (413).

A token bucket per client address refills at ``write_rate_limit`` per minute; reads are not
limited (they spend nothing), and neither are callers with an active API token: its budget and
quota are their limits (a site's workers publishing results through one address would
otherwise share one bucket). A request whose Content-Length is over its route's limit is
refused before its body is read; a body without one is counted as it streams (the routes
that read bodies call ``check_size``).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from hepx.api_tokens import TokenBook
from hepx.config import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TooLarge(Exception):
    """A request body over its route's limit (answered 413)."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of {size} bytes or more is over the limit of {limit} bytes")


# Specs in one POST /jobs/batch: 100 posts cost ~3.2M gas, well inside a block's 30M.
MAX_BATCH_SPECS = 200


def body_limit(settings: Settings, path: str) -> int | None:
    """The largest body a route takes (None: no limit of its own)."""
    if path in ("/jobs", "/jobs/requests"):
        return settings.max_spec_bytes
    if path == "/jobs/batch":
        return settings.max_spec_bytes * MAX_BATCH_SPECS
    if path == "/ipfs":
        return settings.max_upload_bytes
    return None


def check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise TooLarge(what, size, limit)


class WriteBuckets:
    """Tokens per client: ``per_minute`` writes, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, updated)

    def take(self, client: str) -> float:
        """0 if the client may write now (a token is taken), else seconds until it may."""
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, updated = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - updated) * rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / rate


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_holder(request: Request, tokens: TokenBook) -> bool:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(secret.strip()) and tokens.is_active(secret.strip())


def install_limits(app: FastAPI, settings: Settings, tokens: TokenBook) -> None:
    buckets = WriteBuckets(settings.write_rate_limit)

    async def on_too_large(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    app.add_exception_handler(TooLarge, on_too_large)

    @app.middleware("http")
    async def limits(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        limit = body_limit(settings, request.url.path)
        declared = request.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            detail = str(TooLarge(f"a body to {request.url.path}", int(declared), limit))
            return JSONResponse({"detail": detail}, status_code=413)
        if request.method in WRITE_METHODS and settings.write_rate_limit:
            host = request.client.host if request.client else "unknown"
            limited = settings.rate_limit_loopback or not is_loopback(host)
            if limited and not _token_holder(request, tokens):
                wait = buckets.take(host)
                if wait > 0:
                    retry = max(1, math.ceil(wait))
                    detail = (
                        f"rate limit: {settings.write_rate_limit} writes per minute per client; "
                        f"retry in {retry} s"
                    )
                    return JSONResponse(
                        {"detail": detail}, status_code=429, headers={"Retry-After": str(retry)}
                    )
        return await call_next(request)
