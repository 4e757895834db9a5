"""The REST API's clients keep one httpx client per thread (hepx/http_client.py): its calls
share a kept-alive connection instead of building a client (and loading the TLS trust store)
per request."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hepx.http_client import HUNG_UP, kept_client, request
from hepx.workflow_api import HttpJobsApi


@pytest.fixture
def api() -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server answering GET /jobs/N; the list counts its connections."""
    connections = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections[0] += 1

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"job_id": int(self.path.rsplit("/", 1)[1])}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", connections
    server.shutdown()


def test_one_threads_calls_share_one_client_and_one_connection(
    api: tuple[str, list[int]],
) -> None:
    url, connections = api
    jobs = HttpJobsApi(url)
    assert [jobs.get_job(n)["job_id"] for n in (1, 2, 3)] == [1, 2, 3]
    assert HttpJobsApi(url).get_job(4)["job_id"] == 4  # another caller, the same thread
    assert connections[0] == 1


def test_each_thread_has_a_client_of_its_own(api: tuple[str, list[int]]) -> None:
    url, connections = api
    clients: list[object] = []

    def call() -> None:
        clients.append(kept_client())
        HttpJobsApi(url).get_job(7)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clients[0] is not clients[1] and kept_client() not in clients
    assert connections[0] == 2


class HangUpOnSecond:
    """A raw HTTP server: its first connection answers one request, reads the next's head and
    hangs up without a word (a kept connection closed as a request went out), closing or
    resetting the connection (``reset``); later connections answer every request."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(
                target=self._answer, args=(conn, self.connections), daemon=True
            ).start()

    def _answer(self, conn: socket.socket, number: int) -> None:
        with conn, conn.makefile("rb") as reader:
            for answered in range(100):
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    if not (byte := reader.read(1)):
                        return
                    head += byte
                if number == 1 and answered == 1:
                    if self.reset:  # closed with SO_LINGER 0: a reset, not an end of stream
                        linger = struct.pack("ii", 1, 0)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    return  # the request read, no answer
                path = head.split(b" ")[1].decode()
                body = json.dumps({"job_id": int(path.rsplit("/", 1)[1])}).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                conn.sendall(head + body)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_read_the_server_hung_up_on_is_sent_again_on_a_new_connection(reset: bool) -> None:
    server = HangUpOnSecond(reset)

    def in_a_thread_of_its_own() -> None:  # a fresh client: the first connection is new
        jobs = HttpJobsApi(server.url)
        results.extend(jobs.get_job(n)["job_id"] for n in (1, 2, 3))

    results: list[int] = []
    thread = threading.Thread(target=in_a_thread_of_its_own)
    thread.start()
    thread.join(30)
    assert results == [1, 2, 3]
    assert server.connections == 2  # the second request went again, on a new connection
    server.server.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_post_the_server_hung_up_on_is_not_sent_again(reset: bool) -> None:
    server = HangUpOnSecond(reset)
    errors: list[Exception] = []

    def post_twice() -> None:
        client = kept_client()
        client.get(f"{server.url}/jobs/1", timeout=10)
        try:
            request("POST", f"{server.url}/jobs/2", json={}, timeout=10)
        except HUNG_UP as exc:  # the caller looks it up (the runner by CID)
            errors.append(exc)

    thread = threading.Thread(target=post_twice)
    thread.start()
    thread.join(30)
    assert len(errors) == 1 and server.connections == 1
    server.server.close()
