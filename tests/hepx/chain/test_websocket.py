"""The client WebSocket the head watcher reads (hepx.chain.transport.WebSocket), against a
scripted peer that writes frames byte by byte as a server may: lengths of every size, messages
in fragments, pings between them, a frame cut by a timeout, a close, and servers that refuse
the upgrade. tests/hepx/chain/test_heads.py follows a real anvil with it."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hepx.chain.transport import WebSocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, final: bool = True) -> bytes:
    """A server's frame (not masked)."""
    size = len(payload)
    if size < 126:
        length = bytes([size])
    elif size < 1 << 16:
        length = bytes([126]) + size.to_bytes(2, "big")
    else:
        length = bytes([127]) + size.to_bytes(8, "big")
    return bytes([(0x80 if final else 0) | opcode]) + length + payload


def read_client_frame(conn: socket.socket) -> tuple[int, bool, bytes]:
    """A client's frame: (opcode, masked, payload unmasked)."""
    head = conn.recv(2, socket.MSG_WAITALL)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(conn.recv(2, socket.MSG_WAITALL), "big")
    elif size == 127:
        size = int.from_bytes(conn.recv(8, socket.MSG_WAITALL), "big")
    masked = bool(head[1] & 0x80)
    mask = conn.recv(4, socket.MSG_WAITALL) if masked else b"\0\0\0\0"
    data = conn.recv(size, socket.MSG_WAITALL) if size else b""
    return head[0] & 0x0F, masked, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


Script = Callable[[socket.socket], None]


@pytest.fixture
def peer() -> Iterator[Callable[..., str]]:
    """Serve one connection: answer the upgrade (``accept`` may spoil the proof, ``status``
    refuse it), then run ``script`` on the socket. Gives the ws:// URL."""
    servers: list[socket.socket] = []

    def serve(script: Script, status: str = "101 Switching Protocols", accept: bool = True) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def run() -> None:
            conn, _ = server.accept()
            with conn:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += conn.recv(1)
                key = head.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
                proof = base64.b64encode(hashlib.sha1(key + (GUID if accept else b"")).digest())
                conn.sendall(f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             f"Sec-WebSocket-Accept: {proof.decode()}\r\n"
                             "Content-Length: 0\r\n\r\n".encode())  # fmt: skip
                script(conn)
                time.sleep(0.5)  # let the client read before the close

        threading.Thread(target=run, daemon=True).start()
        return f"ws://127.0.0.1:{server.getsockname()[1]}/path"

    yield serve
    for server in servers:
        server.close()


def dribble(conn: socket.socket, data: bytes) -> None:
    """Write ``data`` a byte at a time: a reader must wait for whole frames."""
    for byte in data:
        conn.sendall(bytes([byte]))


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_messages_of_every_length_come_whole(peer: Callable[..., str], size: int) -> None:
    message = bytes(ord("a") + i % 26 for i in range(size))
    url = peer(lambda conn: conn.sendall(frame(0x1, message)))
    ws = WebSocket(url, timeout=5)
    assert ws.recv(timeout=5) == message.decode()
    ws.close()


def test_a_fragmented_message_with_a_ping_between_is_one_message_and_the_ping_is_answered(
    peer: Callable[..., str],
) -> None:
    pongs: list[tuple[int, bool, bytes]] = []

    def script(conn: socket.socket) -> None:
        dribble(conn, frame(0x1, b'{"a":', final=False) + frame(0x9, b"are you there")
                + frame(0x0, b'"b"}'))  # fmt: skip
        pongs.append(read_client_frame(conn))

    ws = WebSocket(peer(script), timeout=5)
    assert ws.recv(timeout=5) == '{"a":"b"}'
    time.sleep(0.2)
    assert pongs == [(0xA, True, b"are you there")]  # masked, as a client's frames must be
    ws.close()


def test_what_the_client_sends_is_one_masked_text_frame(peer: Callable[..., str]) -> None:
    got: list[tuple[int, bool, bytes]] = []

    def script(conn: socket.socket) -> None:
        got.append(read_client_frame(conn))
        conn.sendall(frame(0x1, b"ok"))

    ws = WebSocket(peer(script), timeout=5)
    text = '{"method":"eth_subscribe","params":["newHeads"]}' * 5  # over 125 bytes
    ws.send(text)
    assert ws.recv(timeout=5) == "ok"
    assert got == [(0x1, True, text.encode())]
    ws.close()


def test_a_frame_cut_by_the_timeout_is_read_whole_by_the_next_call(
    peer: Callable[..., str],
) -> None:
    whole = frame(0x1, b"x" * 300)
    go_on = threading.Event()

    def script(conn: socket.socket) -> None:
        conn.sendall(whole[:150])
        go_on.wait(5)
        conn.sendall(whole[150:])

    ws = WebSocket(peer(script), timeout=5)
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    go_on.set()
    assert ws.recv(timeout=5) == "x" * 300
    ws.close()


def test_the_servers_close_is_a_connection_error(peer: Callable[..., str]) -> None:
    ws = WebSocket(peer(lambda conn: conn.sendall(frame(0x8, b"\x03\xe8bye"))), timeout=5)
    with pytest.raises(ConnectionError, match="closed the WebSocket"):
        ws.recv(timeout=5)
    ws.close()


def test_a_connection_dropped_midframe_is_a_connection_error(peer: Callable[..., str]) -> None:
    ws = WebSocket(peer(lambda conn: conn.sendall(frame(0x1, b"y" * 50)[:20])), timeout=5)
    with pytest.raises(ConnectionError, match="closed the connection"):
        ws.recv(timeout=5)
    ws.close()


@pytest.mark.parametrize(
    ("status", "accept"),
    [("200 OK", True), ("400 Bad Request", True), ("101 Switching Protocols", False)],
    ids=["plain-http", "refused", "wrong-proof"],
)
def test_a_server_that_does_not_upgrade_properly_is_refused(
    peer: Callable[..., str], status: str, accept: bool
) -> None:
    url = peer(lambda conn: None, status=status, accept=accept)
    with pytest.raises(ConnectionError, match="refused the WebSocket upgrade"):
        WebSocket(url, timeout=5)


def test_not_a_websocket_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        WebSocket("http://127.0.0.1:8545", timeout=5)
