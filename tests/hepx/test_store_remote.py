"""Fetching from a gateway that may lie: every block checked, nothing stored on a lie."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from multiformats import CID

from hepx.errors import GatewayError
from hepx.store import (
    CAR_MEDIA,
    CHUNK_SIZE,
    CarReader,
    GatewayFallback,
    LocalStore,
    fetch_dag,
)
from hepx.store._car import encode_header
from hepx.store._cid import block_id
from hepx.store._unixfs import varint

GATEWAY = "http://gateway.test"


@pytest.fixture
def source(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "source", fsync=False)


@pytest.fixture
def dest(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "dest", fsync=False)


def gateway(answer: Callable[[str], bytes | httpx.Response]) -> tuple[httpx.Client, list[str]]:
    """An HTTP client whose gateway answers ``answer(cid)``; records the URLs asked."""
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        assert request.headers["accept"] == CAR_MEDIA
        cid = request.url.path.split("/")[2]
        got = answer(cid)
        if isinstance(got, httpx.Response):
            return got
        return httpx.Response(200, content=got, headers={"content-type": CAR_MEDIA})

    return httpx.Client(transport=httpx.MockTransport(handle)), asked


def sections(store: LocalStore, cid: str) -> list[tuple[bytes, bytes]]:
    return [
        (bid.binary, block) for bid, block in CarReader(io.BytesIO(b"".join(store.export_car(cid))))
    ]


def car(root: str, parts: list[tuple[bytes, bytes]]) -> bytes:
    header = encode_header([block_id(root)])
    body = b"".join(varint(len(c) + len(b)) + c + b for c, b in parts)
    return varint(len(header)) + header + body


def blocks_in(store: LocalStore) -> list[tuple[str, int]]:
    return list(store.blocks())


def test_honest_gateway_fills_the_store(source: LocalStore, dest: LocalStore) -> None:
    data = random.Random(0).randbytes(CHUNK_SIZE * 3 + 7)
    cid = source.add_bytes(data)
    client, asked = gateway(lambda c: b"".join(source.export_car(c)))
    assert fetch_dag(dest, GATEWAY, cid, client=client) == cid
    assert asked == [f"{GATEWAY}/ipfs/{cid}?format=car"]
    assert dest.read_bytes(cid) == data


def test_gateway_sending_wrong_bytes_is_caught_naming_the_block(
    source: LocalStore, dest: LocalStore
) -> None:
    cid = source.add_bytes(random.Random(1).randbytes(CHUNK_SIZE * 2))
    parts = sections(source, cid)
    bad_cid, bad_block = parts[2]
    parts[2] = (bad_cid, bad_block[:-1] + bytes([bad_block[-1] ^ 1]))
    named = str(CID.decode(bad_cid).set(base="base32"))
    client, _ = gateway(lambda c: car(c, parts))
    with pytest.raises(GatewayError, match=f"sent bad data for {cid}.*{named}"):
        fetch_dag(dest, GATEWAY, cid, client=client)
    assert blocks_in(dest) == []


def test_gateway_leaving_out_a_block_is_caught(source: LocalStore, dest: LocalStore) -> None:
    cid = source.add_bytes(random.Random(2).randbytes(CHUNK_SIZE * 2))
    parts = sections(source, cid)[:-1]
    client, _ = gateway(lambda c: car(c, parts))
    with pytest.raises(GatewayError, match="incomplete"):
        fetch_dag(dest, GATEWAY, cid, client=client)
    assert blocks_in(dest) == []


def test_gateway_answering_for_another_root_is_caught(source: LocalStore, dest: LocalStore) -> None:
    wanted = source.add_bytes(b"what I asked for")
    other = source.add_bytes(b"something else")
    client, _ = gateway(lambda c: b"".join(source.export_car(other)))
    with pytest.raises(GatewayError, match=f"asked for the DAG of {wanted}"):
        fetch_dag(dest, GATEWAY, wanted, client=client)
    assert not dest.has(other)


def test_gateway_error_status_is_reported_with_its_body(dest: LocalStore) -> None:
    cid = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    client, _ = gateway(lambda c: httpx.Response(404, text="no such block"))
    with pytest.raises(GatewayError, match=f"answered 404 for {cid}: no such block"):
        fetch_dag(dest, GATEWAY, cid, client=client)


def test_unreachable_gateway_is_a_gateway_error(dest: LocalStore) -> None:
    cid = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(GatewayError, match=f"cannot fetch {cid} from gateway"):
        fetch_dag(dest, GATEWAY, cid, client=client)


def test_fallback_fetches_only_what_is_missing(
    source: LocalStore, dest: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = dest.add_bytes(b"already here")
    there = source.add_bytes(b"only on the gateway")
    client, asked = gateway(lambda c: b"".join(source.export_car(c)))
    monkeypatch.setattr(
        "hepx.store._remote.httpx.Client", lambda *a, **k: client
    )  # the fallback opens its own client per fetch
    store = GatewayFallback(dest, GATEWAY)
    assert store.read_bytes(here) == b"already here"
    assert asked == []
    assert store.read_bytes(there) == b"only on the gateway"
    assert len(asked) == 1
    assert dest.has(there)  # kept locally: the next read is local
    store.read_bytes(there)
    assert len(asked) == 1


def test_fallback_has_is_false_when_the_gateway_lacks_it(
    dest: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = gateway(lambda c: httpx.Response(404, text="not found"))
    monkeypatch.setattr("hepx.store._remote.httpx.Client", lambda *a, **k: client)
    store = GatewayFallback(dest, GATEWAY)
    assert not store.has("bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4")
