"""JSON-RPC over HTTP on kept-alive connections, one per thread.

web3's HTTPProvider sends each request through a ``requests`` session: about 0.5 ms of CPU per
request before the node sees it, several times what the node spends answering a block read.
An agent asks its node a handful of questions every block, and eight agents on one machine
spent more CPU asking than running jobs. This provider keeps web3's encoding, decoding and
caching and replaces only the HTTP exchange: a POST written and its answer read on a kept
socket (``http.client`` took 0.10 ms of CPU per exchange, most of it parsing headers with the
email package; this takes 0.03). It reads what JSON-RPC servers send: a length or chunks,
kept alive or closed after.

Errors keep the meaning :meth:`hepx.chain.rpc.Rpc.call` gives them: a connection that fails is
an ``OSError`` (retried with backoff), an overloaded node (429, 502-504) too, a JSON-RPC error
sent under another HTTP error status is the node's answer, and any other HTTP error is
``requests.HTTPError`` (an ``OSError`` as well, so retried, as it was under ``requests``).
"""

from __future__ import annotations

import base64
import json
import select
import socket
import ssl
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


class Stale(ConnectionError):
    """A kept connection the server closed before any of its answer came back."""


class HttpConnection:
    """One kept-alive HTTP/1.1 connection: a POST out, its answer in."""

    def __init__(self, host: str, port: int, tls: bool, timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.will_close = False
        self._buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def exchange(self, request: bytes) -> tuple[int, str, bytes]:
        """Send ``request`` (a whole HTTP request); the answer's status, reason and body."""
        self.sock.sendall(request)
        head = self._read_until(b"\r\n\r\n", first=True)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        self.will_close = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive"
        )
        if int(status) in (204, 304) or status.startswith("1"):
            body = b""  # answers that never have a body
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunks()
        elif "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        else:  # the body runs to the connection's end
            body, self.will_close = self._read_to_close(), True
        return int(status), reason, body

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self._buffer += data
        return bool(data)

    def _read_until(self, mark: bytes, first: bool = False) -> bytes:
        while (end := self._buffer.find(mark)) < 0:
            if not self._fill():
                if first and not self._buffer:
                    raise Stale("the server closed the connection without answering")
                raise ConnectionError("the server closed the connection mid-answer")
        found = bytes(self._buffer[:end])
        del self._buffer[: end + len(mark)]
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise ConnectionError("the server closed the connection mid-answer")
        found = bytes(self._buffer[:size])
        del self._buffer[:size]
        return found

    def _read_chunks(self) -> bytes:
        body = bytearray()
        while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
            body += self._read_exactly(size)
            self._read_until(b"\r\n")
        while self._read_until(b"\r\n"):  # trailers, up to the empty line
            pass
        return bytes(body)

    def _read_to_close(self) -> bytes:
        while self._fill():
            pass
        found = bytes(self._buffer)
        self._buffer.clear()
        return found


class KeptAliveProvider(HTTPProvider):
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) RPC URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
        host += "" if parts.port is None else f":{parts.port}"
        head = [f"POST {target} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
                "Accept: application/json"]  # fmt: skip
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head.append("Authorization: Basic " + base64.b64encode(login.encode()).decode())
        self._request_head = "\r\n".join(head).encode() + b"\r\nContent-Length: "
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
        request = self._request_head + str(len(body)).encode() + b"\r\n\r\n" + body
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                status, reason, data = conn.exchange(request)
            except BaseException as exc:
                self._drop(conn)  # a half-read answer must not be read as the next request's
                # The server closed a kept connection as the request went out, before it
                # answered (no status line came back): nothing was acted on, so a new
                # connection tries once more.
                stale = isinstance(exc, (Stale, BrokenPipeError, ConnectionResetError))
                if reused and stale and attempt == 1:
                    continue
                raise
            if conn.will_close:
                self._drop(conn)
            break
        if status == 200:
            return data
        if status in _BUSY:
            raise NodeBusy(f"{self.endpoint_uri} answered {status} {reason}")
        if _is_rpc_answer(data):
            return data  # a JSON-RPC error sent with an HTTP error status: web3 reads it
        raise requests.HTTPError(f"{status} {reason} from {self.endpoint_uri}")

    def _drop(self, conn: HttpConnection) -> None:
        conn.close()
        self._local.conn = None

    def _connection(self) -> tuple[HttpConnection, bool]:
        """This thread's connection, and whether it served a request before."""
        conn: HttpConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            # A TLS socket is readable with the server's session tickets, so only plain ones
            # are looked at; a TLS connection the server closed is found by the retry above.
            if self._https or not _closed_by_peer(conn.sock):
                return conn, True
            self._drop(conn)
        conn = HttpConnection(self._host, self._port, self._https, self._timeout)
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
