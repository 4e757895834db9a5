"""One kept httpx client per thread, for the API calls hepx makes over and over.

``httpx.request()`` and its kin build a client per call, and building one loads the TLS trust
store: about 19 ms of CPU before the request goes out, on plain HTTP too. The benchmark's
posters spent more CPU on that than the API spent on their posts, and a worker on another host
paid it for every result it published. A kept client also keeps its connections alive.
Clients are per thread, as httpx does not promise that one is safe to share between threads.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

_local = threading.local()
# Requests that can be sent twice without doing twice what they ask.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# How a kept connection the server closed as a request went out ends: without an answer, or
# reset (a server that closes with the request's body unread resets the connection).
HUNG_UP = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def kept_client() -> httpx.Client:
    """This thread's client (timeouts and headers are given per request)."""
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client()
    return client


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """``method url`` on this thread's client. A kept connection the server closes just as a
    request goes out ends without an answer, or reset (``HUNG_UP``): an idempotent request is
    then sent once more, on a new connection; any other is the caller's to look up."""
    try:
        return kept_client().request(method, url, **kwargs)
    except HUNG_UP:
        if method.upper() not in _IDEMPOTENT:
            raise
        return kept_client().request(method, url, **kwargs)
