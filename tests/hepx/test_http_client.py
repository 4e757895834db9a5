"""The REST API's clients keep one httpx client per thread (hepx/http_client.py): its calls
share a kept-alive connection instead of building a client (and loading the TLS trust store)
per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hepx.http_client import kept_client
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
