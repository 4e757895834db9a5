"""JSON-RPC over HTTP on kept-alive connections, one per thread.

web3's HTTPProvider sends each request through a ``requests`` session: about 0.5 ms of CPU per
request before the node sees it, several times what the node spends answering a block read.
An agent asks its node a handful of questions every block, and eight agents on one machine
spent more CPU asking than running jobs. This provider keeps web3's encoding, decoding and
caching and replaces only the HTTP exchange with ``http.client``.

Errors keep the meaning :meth:`hepx.chain.rpc.Rpc.call` gives them: a connection that fails is
an ``OSError`` (retried with backoff), an overloaded node (429, 502-504) too, a JSON-RPC error
sent under another HTTP error status is the node's answer, and any other HTTP error is
``requests.HTTPError`` (an ``OSError`` as well, so retried, as it was under ``requests``).
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint

# Statuses that say "later", not "no": retried like a dropped connection.
_BUSY = {429, 502, 503, 504}


class NodeBusy(ConnectionError):
    """The node (or a proxy before it) answered with a status that asks to come back later."""


class KeptAliveProvider(HTTPProvider):
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) RPC URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        self._timeout = timeout
        self._local = threading.local()

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        return self._post(request_data)

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        reply = self.decode_rpc_response(self._post(self.encode_batch_rpc_request(batch_requests)))
        if isinstance(reply, list):
            reply.sort(key=lambda item: int(item.get("id", 0)))
        return reply

    def _post(self, body: bytes) -> bytes:
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                conn.request("POST", self._target, body, self._headers)
                response = conn.getresponse()
                data = response.read()
            except BaseException as exc:
                self._drop(conn)  # a half-read answer must not be read as the next request's
                # The server closed a kept connection as the request went out, before it
                # answered (no status line came back): nothing was acted on, so a new
                # connection tries once more.
                stale = isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError))
                if reused and stale and attempt == 1:
                    continue
                raise
            if response.will_close:
                self._drop(conn)
            break
        if response.status == 200:
            return data
        if response.status in _BUSY:
            raise NodeBusy(f"{self.endpoint_uri} answered {response.status} {response.reason}")
        if _is_rpc_answer(data):
            return data  # a JSON-RPC error sent with an HTTP error status: web3 reads it
        raise requests.HTTPError(f"{response.status} {response.reason} from {self.endpoint_uri}")

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it served a request before."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            # A TLS socket is readable with the server's session tickets, so only plain ones
            # are looked at; a TLS connection the server closed is found by the retry above.
            if self._https or not _closed_by_peer(conn.sock):
                return conn, True
            self._drop(conn)
            conn = None
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn, False


def _closed_by_peer(sock: Any) -> bool:
    """An idle kept-alive socket that is readable was closed (or broken) by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _is_rpc_answer(data: bytes) -> bool:
    try:
        reply = json.loads(data)
    except ValueError:
        return False
    return isinstance(reply, (dict, list))
