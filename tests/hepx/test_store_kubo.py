"""KuboStore: the exact RPC requests it sends (unit, httpx.MockTransport), and a real kubo node
when HEPX_KUBO_URL is set."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from hepx.config import Settings
from hepx.errors import BlockCorrupted, KuboError
from hepx.store import (
    CHUNK_SIZE,
    CarReader,
    GatewayFallback,
    KuboStore,
    LocalStore,
    open_store,
)
from hepx.store._cid import block_id

KUBO = "http://kubo.test:5001"


class FakeKubo:
    """Answers kubo RPC calls from a LocalStore and records each request (unit tests only)."""

    def __init__(self, backing: LocalStore) -> None:
        self.backing = backing
        self.requests: list[httpx.Request] = []
        self.tamper: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        command = request.url.path.removeprefix("/api/v0/")
        arg = request.url.params.get("arg", "")
        if command == "add":
            cid = self.backing.add_bytes(_multipart_payload(request))
            return httpx.Response(200, text=json.dumps({"Name": "file", "Hash": cid}) + "\n")
        if command in ("block/get", "block/stat"):
            if not self.backing._blocks.has(block_id(arg)):
                return httpx.Response(500, json={"Message": "block not found", "Code": 0})
            data = self.backing.get_block(arg)
            if arg in self.tamper:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return httpx.Response(200, content=data)
        if command == "dag/import":
            roots = self.backing.import_car(io.BytesIO(_multipart_payload(request)))
            return httpx.Response(200, text=json.dumps({"Root": {"Cid": {"/": roots[0]}}}))
        if command in ("pin/add", "pin/rm"):
            return httpx.Response(200, json={"Pins": [arg]})
        if command == "cat":
            offset = int(request.url.params.get("offset", "0"))
            length = request.url.params.get("length")
            data = self.backing.read_bytes(arg)[offset:]
            return httpx.Response(200, content=data[: int(length)] if length else data)
        return httpx.Response(404, text=f"unknown command {command}")

    def calls(self, command: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == f"/api/v0/{command}"]


def _multipart_payload(request: httpx.Request) -> bytes:
    body = request.content
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    part = body.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


@pytest.fixture
def kubo(tmp_path: Path) -> FakeKubo:
    return FakeKubo(LocalStore(tmp_path / "kubo-blocks", fsync=False))


@pytest.fixture
def store(kubo: FakeKubo, tmp_path: Path) -> KuboStore:
    return KuboStore(KUBO, tmp_path / "home", transport=httpx.MockTransport(kubo))


def test_add_sends_the_chunking_options_that_give_ipfs_cids(
    store: KuboStore, kubo: FakeKubo
) -> None:
    data = random.Random(0).randbytes(CHUNK_SIZE + 5)
    cid = store.add_bytes(data)
    (req,) = kubo.calls("add")
    assert req.method == "POST"
    assert str(req.url).startswith(f"{KUBO}/api/v0/add?")
    params = parse_qs(req.url.query.decode())
    assert params["cid-version"] == ["1"]
    assert params["raw-leaves"] == ["true"]
    assert params["chunker"] == ["size-262144"]
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert _multipart_payload(req) == data
    assert cid == LocalStore(kubo.backing.root.parent / "check", fsync=False).add_bytes(data)


def test_pin_sends_a_recursive_pin_add_and_records_the_expiry(
    store: KuboStore, kubo: FakeKubo
) -> None:
    cid = store.add_bytes(b"keep me")
    store.pin("job-1-outputs", cid, expires_at=100.0)
    (req,) = kubo.calls("pin/add")
    assert req.url.params["arg"] == cid
    assert req.url.params["recursive"] == "true"
    report = store.gc(now=101.0)
    assert report.expired == ["job-1-outputs"]
    (rm,) = kubo.calls("pin/rm")
    assert rm.url.params["arg"] == cid


def test_reads_verify_blocks_kubo_sends(store: KuboStore, kubo: FakeKubo) -> None:
    data = random.Random(1).randbytes(CHUNK_SIZE * 2)
    cid = store.add_bytes(data)
    assert store.stat(cid).size == len(data)
    kubo.tamper.add(cid)
    with pytest.raises(BlockCorrupted, match=cid):
        store.stat(cid)


def test_cat_streams_from_kubo_with_offset_and_length(store: KuboStore, kubo: FakeKubo) -> None:
    data = random.Random(2).randbytes(CHUNK_SIZE * 2 + 3)
    cid = store.add_bytes(data)
    assert b"".join(store.cat(cid, 10, 100)) == data[10:110]
    req = kubo.calls("cat")[-1]
    assert (req.url.params["arg"], req.url.params["offset"], req.url.params["length"]) == (
        cid,
        "10",
        "100",
    )


def test_add_dir_imports_the_locally_built_car(
    store: KuboStore, kubo: FakeKubo, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a")
    (tree / "sub" / "b.txt").write_bytes(b"b" * 10)
    cid = store.add_dir(tree)
    assert cid == LocalStore(tmp_path / "check", fsync=False).add_dir(tree)
    (req,) = kubo.calls("dag/import")
    car = CarReader(io.BytesIO(_multipart_payload(req)))
    assert [str(r) for r in car.roots] == [cid]
    assert store.ls(cid)[0].name == "a.txt"


def test_unreachable_kubo_says_which_url_and_setting(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    store = KuboStore(KUBO, tmp_path, transport=httpx.MockTransport(refuse))
    with pytest.raises(
        KuboError, match=r"cannot reach kubo at http://kubo.test:5001.*HEPX_KUBO_URL"
    ):
        store.add_bytes(b"x")


def test_open_store_picks_the_backend_and_gateway_from_settings(tmp_path: Path) -> None:
    local = open_store(Settings(home=tmp_path))
    assert type(local) is LocalStore
    kubo = open_store(Settings(home=tmp_path, store_backend="kubo", kubo_url=KUBO))
    assert isinstance(kubo, KuboStore) and kubo.rpc.url == KUBO
    wrapped = open_store(Settings(home=tmp_path, gateway_url="http://api:8000"))
    assert isinstance(wrapped, GatewayFallback) and wrapped.gateway == "http://api:8000"


REAL_KUBO = os.environ.get("HEPX_KUBO_URL")


@pytest.mark.skipif(
    not REAL_KUBO, reason="HEPX_KUBO_URL is not set (point it at a kubo RPC API, e.g. :5001)"
)
def test_real_kubo_gives_the_same_cids_and_bytes(tmp_path: Path) -> None:
    assert REAL_KUBO is not None
    store = KuboStore(REAL_KUBO, tmp_path / "home")
    local = LocalStore(tmp_path / "local", fsync=False)
    for size in (0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1_000_000):
        data = random.Random(size).randbytes(size)
        cid = store.add_bytes(data)
        assert cid == local.add_bytes(data)
        assert b"".join(store.cat(cid)) == data
        assert store.read_bytes(cid) == data  # through block/get, verified here
    store.pin("hepx-test", cid)
    assert store.unpin("hepx-test")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "x.txt").write_bytes(b"x")
    assert store.add_dir(tree) == local.add_dir(tree)
