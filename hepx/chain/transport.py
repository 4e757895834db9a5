"""JSON-RPC over HTTP on kept-alive connections, one per thread.

web3's HTTPProvider sends each request through a ``requests`` session: about 0.5 ms of CPU per
request before the node sees it, several times what the node spends answering a block read.
An agent asks its node a handful of questions every block, and eight agents on one machine
spent more CPU asking than running jobs. This provider keeps web3's encoding, decoding and
caching and replaces only the HTTP exchange: a POST written and its answer read on a kept
socket (``http.client`` took 0.10 ms of CPU per exchange, most of it parsing headers with the
email package; this takes 0.03). It reads what JSON-RPC servers send: a length or chunks,
kept alive or closed after. The same connection, upgraded, is the WebSocket the head watcher
(hepx/chain/heads.py) reads new blocks from.

Errors keep the meaning :meth:`hepx.chain.rpc.Rpc.call` gives them: a connection that fails is
an ``OSError`` (retried with backoff), an overloaded node (429, 502-504) too, a JSON-RPC error
sent under another HTTP error status is the node's answer, and any other HTTP error is
``requests.HTTPError`` (an ``OSError`` as well, so retried, as it was under ``requests``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import threading
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Endpoint:
    """Where a URL's requests go, and the request lines that name it."""

    host: str
    port: int
    tls: bool
    target: str  # the path and query a request line names
    headers: tuple[str, ...]  # Host, and Authorization if the URL carries a login

    @classmethod
    def of(cls, url: str, schemes: tuple[str, str]) -> Endpoint:
        """``url`` with one of ``schemes``: (plain, TLS), e.g. ("http", "https")."""
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"{url!r} is not a {schemes[0]}:// or {schemes[1]}:// URL")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
        host += "" if parts.port is None else f":{parts.port}"
        headers = [f"Host: {host}"]
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers.append("Authorization: Basic " + base64.b64encode(login.encode()).decode())
        tls = parts.scheme == schemes[1]
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls,
                   (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                   tuple(headers))  # fmt: skip


class HttpConnection:
    """One kept-alive HTTP/1.1 connection: a POST out, its answer in."""

    def __init__(self, host: str, port: int, tls: bool, timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.will_close = False
        self.headers: dict[str, str] = {}  # the last answer's, names in lower case
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
        self.headers = headers
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


# RFC 6455: the server proves it read the key by hashing it with this.
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA  # opcodes; 0x0 continues a message


class WebSocket(HttpConnection):
    """A client WebSocket (RFC 6455): an HTTP connection upgraded, messages read in the
    caller's thread. The websockets package's sync client reads in a thread of its own and
    hands each message over: 0.16-0.29 ms of CPU per block per watcher, against 0.03 here,
    paid by every agent for every block of the market."""

    def __init__(self, url: str, timeout: float) -> None:
        end = Endpoint.of(url, ("ws", "wss"))
        super().__init__(end.host, end.port, end.tls, timeout)
        key = base64.b64encode(os.urandom(16))
        head = [f"GET {end.target} HTTP/1.1", *end.headers, "Upgrade: websocket",
                "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
                "Sec-WebSocket-Version: 13"]  # fmt: skip
        try:
            status, reason, _ = self.exchange("\r\n".join(head).encode() + b"\r\n\r\n")
            accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
            if status != 101 or self.headers.get("sec-websocket-accept") != accept:
                raise ConnectionError(f"{url} refused the WebSocket upgrade: {status} {reason}")
        except BaseException:
            self.close()
            raise
        self._parts: list[bytes] = []  # a fragmented message's frames so far

    def send(self, text: str) -> None:
        self._send(_TEXT, text.encode())

    def recv(self, timeout: float) -> str:
        """The next message (text or binary, decoded); TimeoutError if none came within
        ``timeout`` (a frame begun stays buffered for the next call); ConnectionError once
        the server closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            opcode, final, payload = self._frame()
            if opcode == _PING:
                self._send(_PONG, payload)
            elif opcode == _CLOSE:
                raise ConnectionError("the server closed the WebSocket")
            elif opcode != _PONG:
                self._parts.append(payload)
                if final:
                    message, self._parts = b"".join(self._parts), []
                    return message.decode()

    def _frame(self) -> tuple[int, bool, bytes]:
        """The next whole frame: (opcode, final, payload), taken from the buffer only once
        all of it is there."""
        while (frame := self._parse()) is None:
            if not self._fill():
                raise ConnectionError("the server closed the connection")
        return frame

    def _parse(self) -> tuple[int, bool, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        size, at = buf[1] & 0x7F, 2
        if size >= 126:  # the length follows in 2 or 8 bytes
            at += 2 if size == 126 else 8
            if len(buf) < at:
                return None
            size = int.from_bytes(buf[2:at], "big")
        mask = b""
        if buf[1] & 0x80:  # servers do not mask, but a frame says so if one did
            mask, at = bytes(buf[at : at + 4]), at + 4
        if len(buf) < at + size:
            return None
        payload = _masked(bytes(buf[at : at + size]), mask) if mask else bytes(buf[at : at + size])
        final, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        del buf[: at + size]
        return opcode, final, payload

    def _send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            length = bytes([0x80 | size])
        elif size < 1 << 16:
            length = bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            length = bytes([0x80 | 127]) + size.to_bytes(8, "big")
        mask = os.urandom(4)  # a client masks every frame it sends
        self.sock.sendall(bytes([0x80 | opcode]) + length + mask + _masked(payload, mask))


def _masked(data: bytes, mask: bytes) -> bytes:
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


class KeptAliveProvider(HTTPProvider):
    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        end = Endpoint.of(url, ("http", "https"))
        self._https, self._host, self._port = end.tls, end.host, end.port
        head = [f"POST {end.target} HTTP/1.1", *end.headers, "Content-Type: application/json",
                "Accept: application/json"]  # fmt: skip
        self._request_head = "\r\n".join(head).encode() + b"\r\nContent-Length: "
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._next_id = 1

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        return self._post(request_data)

    def plain(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The node's answers to ``calls`` (method, params), sent as one JSON-RPC batch (a
        single call alone), in their order; a node that refuses batches answers with one
        object, returned as it is. Plain JSON both ways: web3's request path (its ids,
        encoding each request through eth_utils, formatting the answer) cost an agent more
        CPU than the node took to answer the two requests of every round."""
        with self._lock:
            first = self._next_id
            self._next_id += len(calls)
        requests = [{"jsonrpc": "2.0", "id": first + i, "method": method, "params": params}
                    for i, (method, params) in enumerate(calls)]  # fmt: skip
        body = json.dumps(requests if len(calls) > 1 else requests[0], default=_hex_bytes)
        reply = json.loads(self._post(body.encode()))
        if not isinstance(reply, list):
            return [reply]
        return sorted(reply, key=lambda item: int(item.get("id") or 0))

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


def _hex_bytes(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


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
