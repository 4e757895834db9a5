"""The kept-alive JSON-RPC transport: one connection per thread, reused; a kept connection the
server closed is replaced without losing the request; an overloaded node is retried like a
dropped one; HTTP errors keep the meaning they had."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from web3.types import RPCEndpoint

from hepx.anvil import Anvil
from hepx.chain import Rpc, transport
from hepx.chain.rpc import BlockHeader, Heads
from hepx.chain.transport import KeptAliveProvider, NodeBusy
from hepx.errors import ChainError, ChainUnavailable


class ScriptedNode:
    """An HTTP server answering eth_blockNumber with 0x2a (and blocks up to it), after the
    scripted statuses (``(status, body)``, consumed one per request); it counts connections
    and requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, bytes]] = []
        self.close_after_each = False  # answer as if kept alive, then hang up
        self.connections = 0
        self.requests = 0
        self.auth: list[str | None] = []
        self.hosts: list[str | None] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                node.connections += 1

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.requests += 1
                node.auth.append(self.headers.get("Authorization"))
                node.hosts.append(self.headers.get("Host"))
                status, body = node.script.pop(0) if node.script else (200, b"")
                if status == 200 and not body:
                    body = json.dumps(node.answer(request)).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if node.close_after_each:
                    self.close_connection = True

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request: Any) -> Any:
        if isinstance(request, list):  # as a node that takes no batches answers one
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}}
        if request["method"] == "eth_getBlockByNumber":
            number = request["params"][0]
            number = number if number.startswith("0x") else "0x2a"  # latest, pending
            block_hash = f"0x{int(number, 16):064x}"
            header = {"number": number, "hash": block_hash, "parentHash": "0x0", "timestamp": "0x1"}
            return {"jsonrpc": "2.0", "id": request["id"], "result": header}
        return {"jsonrpc": "2.0", "id": request["id"], "result": "0x2a"}


@pytest.fixture
def scripted() -> Iterator[ScriptedNode]:
    node = ScriptedNode()
    yield node
    node.server.shutdown()
    node.server.server_close()


def test_one_thread_asks_on_one_kept_connection(scripted: ScriptedNode) -> None:
    rpc = Rpc(scripted.url)
    assert [rpc.block_number() for _ in range(5)] == [42] * 5
    assert (scripted.requests, scripted.connections) == (5, 1)


@pytest.mark.parametrize("seen_before_sending", [True, False])
def test_a_kept_connection_the_server_closed_is_replaced_and_no_request_is_lost(
    scripted: ScriptedNode, monkeypatch: pytest.MonkeyPatch, seen_before_sending: bool
) -> None:
    """Found closed when idle, or (a TLS socket, or a close racing the request) only when the
    request fails on it."""
    if not seen_before_sending:
        monkeypatch.setattr(transport, "_closed_by_peer", lambda _sock: False)
    scripted.close_after_each = True  # as a node or proxy with a short keep-alive does
    rpc = Rpc(scripted.url, retries=1)  # no retry by Rpc.call: the transport must cope
    assert [rpc.block_number() for _ in range(4)] == [42] * 4
    assert (scripted.requests, scripted.connections) == (4, 4)


def test_an_overloaded_node_is_retried_and_then_answers(scripted: ScriptedNode) -> None:
    scripted.script = [(503, b"busy"), (429, b"slow down")]
    rpc = Rpc(scripted.url, retries=3, backoff=0.01)
    assert rpc.block_number() == 42
    assert scripted.requests == 3


def test_a_node_overloaded_for_good_is_unavailable_after_the_retries(
    scripted: ScriptedNode,
) -> None:
    scripted.script = [(502, b"bad gateway")] * 3
    rpc = Rpc(scripted.url, retries=3, backoff=0.01)
    with pytest.raises(ChainUnavailable, match="unreachable after 3 tries.*502"):
        rpc.block_number()
    provider = KeptAliveProvider(scripted.url, timeout=5)
    scripted.script = [(504, b"")]
    with pytest.raises(NodeBusy):
        provider.make_request(RPCEndpoint("eth_blockNumber"), [])


def test_a_json_rpc_error_under_an_http_error_status_is_the_nodes_refusal(
    scripted: ScriptedNode,
) -> None:
    error = {"jsonrpc": "2.0", "id": 0, "error": {"code": -32600, "message": "bad request"}}
    scripted.script = [(400, json.dumps(error).encode())]
    with pytest.raises(ChainError, match="bad request"):
        Rpc(scripted.url).request("eth_blockNumber", [])


def test_an_http_error_without_an_answer_is_retried_as_it_was_under_requests(
    scripted: ScriptedNode,
) -> None:
    scripted.script = [(500, b"<html>oops</html>")]
    assert Rpc(scripted.url, backoff=0.01).block_number() == 42
    assert scripted.requests == 2
    scripted.script = [(500, b"<html>oops</html>")]
    with pytest.raises(requests.HTTPError, match="500"):
        KeptAliveProvider(scripted.url, timeout=5).make_request(RPCEndpoint("eth_blockNumber"), [])


class RawNode:
    """A TCP server that answers each HTTP request with the next of ``answers`` (raw bytes
    after the status line's), closing the connection where the answer says so."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.connections = 0
        node = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                node.connections += 1
                while node.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        if not (byte := self.rfile.read(1)):
                            return
                        head += byte
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    self.rfile.read(length)
                    answer = node.answers.pop(0)
                    self.wfile.write(answer)
                    if b"connection: close" in answer.lower() or answer.startswith(b"HTTP/1.0"):
                        return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


_ANSWER = b'{"jsonrpc":"2.0","id":0,"result":"0x2a"}'


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        # chunked, with a chunk extension and a trailer
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         + b"a;x=1\r\n" + _ANSWER[:10] + b"\r\n"
         + f"{len(_ANSWER) - 10:x}".encode() + b"\r\n" + _ANSWER[10:] + b"\r\n"
         + b"0\r\nX-Trailer: 1\r\n\r\n", 1),
        # HTTP/1.0: closed after each answer, so each request has a connection of its own
        (b"HTTP/1.0 200 OK\r\nContent-Length: " + str(len(_ANSWER)).encode() + b"\r\n\r\n"
         + _ANSWER, 3),
        # a length and an explicit close
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
         + str(len(_ANSWER)).encode() + b"\r\n\r\n" + _ANSWER, 3),
    ],
    ids=["chunked", "http-1.0", "connection-close"],
)  # fmt: skip
def test_answers_in_chunks_or_closed_after_are_read_whole(answer: bytes, connections: int) -> None:
    node = RawNode([answer] * 3)
    rpc = Rpc(node.url, retries=1)
    assert [rpc.block_number() for _ in range(3)] == [42] * 3
    assert node.connections == connections
    node.server.shutdown()


def test_an_answer_cut_off_midway_is_a_connection_error_not_a_short_answer() -> None:
    cut = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 500\r\n\r\n" + _ANSWER
    node = RawNode([cut])
    provider = KeptAliveProvider(node.url, timeout=5)
    with pytest.raises(ConnectionError, match="mid-answer"):
        provider.make_request(RPCEndpoint("eth_blockNumber"), [])
    node.server.shutdown()


def test_credentials_in_the_url_are_sent_as_basic_auth(scripted: ScriptedNode) -> None:
    url = scripted.url.replace("http://", "http://user:p%40ss@") + "/v1/key?x=1"
    assert Rpc(url).block_number() == 42
    assert scripted.auth == ["Basic " + base64.b64encode(b"user:p@ss").decode()]
    assert scripted.hosts == [scripted.url.removeprefix("http://")]


def test_threads_asking_at_once_each_get_their_own_answers(node: Anvil) -> None:
    """Against the real node: answers never cross between threads sharing one Rpc."""
    rpc = Rpc(node.url)
    head = rpc.block_number()
    wrong: list[tuple[int, int]] = []

    def ask(offset: int) -> None:
        for i in range(40):
            number = (offset + i) % (head + 1)
            got = int(rpc.request("eth_getBlockByNumber", [hex(number), False])["number"], 16)
            if got != number:
                wrong.append((number, got))

    threads = [threading.Thread(target=ask, args=(k * 7,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_not_an_http_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a http:// or https:// URL"):
        KeptAliveProvider("ws://127.0.0.1:8545", timeout=5)


def test_heads_come_in_one_batch_and_match_one_by_one(node: Anvil) -> None:
    rpc = Rpc(node.url)
    for _ in range(3):
        rpc.request("evm_mine", [])
    head = rpc.block_number()
    wanted = [head - 2, head, head - 1, head + 5]  # one not mined yet: left out
    expected = {n: rpc.header(n) for n in (head - 2, head - 1, head)}
    heads = rpc.heads(wanted)
    assert (heads.latest, heads.known) == (rpc.header(head), expected)
    assert heads.pending_time == rpc.timestamp("pending") and heads.now == heads.pending_time
    assert rpc.heads().known == {}
    assert rpc.header(head).parent_hash == rpc.header(head - 1).hash


def test_a_node_that_refuses_batches_is_asked_one_by_one(scripted: ScriptedNode) -> None:
    heads = Rpc(scripted.url).heads([3, 4])
    assert {n: h.hash for n, h in heads.known.items()} == {3: f"0x{3:064x}", 4: f"0x{4:064x}"}
    # the refused batch, each block, the latest and the pending one
    assert scripted.requests == 5


def test_without_a_pending_block_the_time_is_the_latest_blocks_or_the_clocks() -> None:
    latest = BlockHeader(7, "0x07", "0x06", timestamp=int(time.time()) + 600, base_fee=None)
    assert Heads(latest, None, {}).now == latest.timestamp  # a chain ahead of the clock
    old = BlockHeader(7, "0x07", "0x06", timestamp=1, base_fee=None)
    assert Heads(old, None, {}).now >= time.time() - 1  # an idle chain's old block
    assert Heads(old, 5, {}).now == 5  # the pending block's word, where there is one


def test_plain_calls_come_back_in_their_order_whatever_order_the_node_answers_in(
    scripted: ScriptedNode, node: Anvil
) -> None:
    provider = KeptAliveProvider(scripted.url, timeout=5)
    first = provider._next_id
    answers = [{"jsonrpc": "2.0", "id": first + i, "result": hex(i)} for i in range(3)]
    scripted.script.append((200, json.dumps(answers[::-1]).encode()))  # a node may reorder
    calls = [("eth_blockNumber", []), ("eth_chainId", []), ("net_version", [])]
    assert [a["result"] for a in provider.plain(calls)] == ["0x0", "0x1", "0x2"]
    # one call goes alone, not as a batch of one (this node refuses batches); bytes go as hex
    assert provider.plain([("eth_blockNumber", [])])[0]["result"] == "0x2a"
    on_anvil = KeptAliveProvider(node.url, timeout=5)
    (balance,) = on_anvil.plain([("eth_getBalance", [bytes(20), "latest"])])
    assert balance["result"] == "0x0"
