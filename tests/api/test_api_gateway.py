"""Trustless gateway responses (?format=raw|car, Accept) and fetching from them over HTTP."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest
from api_helpers import echo_spec
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hepx.commands.store import app as store_cli
from hepx.config import Settings
from hepx.store import CHUNK_SIZE, CarReader, LocalStore, fetch_dag

RAW = "application/vnd.ipld.raw"
CAR = "application/vnd.ipld.car"


def make_tree(root: Path) -> Path:
    rng = random.Random(5)
    for rel, size in [("a.txt", 3), ("sub/big.bin", CHUNK_SIZE * 2 + 1), ("sub/b.txt", 4)]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
    return root


@pytest.mark.parametrize("how", ["query", "accept"])
def test_raw_format_answers_the_single_block(api: TestClient, store: LocalStore, how: str) -> None:
    cid = store.add_bytes(random.Random(1).randbytes(CHUNK_SIZE + 1))  # a dag-pb root
    if how == "query":
        reply = api.get(f"/ipfs/{cid}?format=raw")
    else:
        reply = api.get(f"/ipfs/{cid}", headers={"Accept": RAW})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == RAW
    assert reply.content == store.get_block(cid)
    assert reply.headers["etag"] == f'"{cid}.raw"'


@pytest.mark.parametrize("how", ["query", "accept"])
def test_car_format_answers_the_whole_dag(
    api: TestClient, store: LocalStore, tmp_path: Path, how: str
) -> None:
    cid = store.add_dir(make_tree(tmp_path / "tree"))
    if how == "query":
        reply = api.get(f"/ipfs/{cid}?format=car")
    else:
        reply = api.get(f"/ipfs/{cid}", headers={"Accept": f"{CAR}; version=1"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(CAR)
    assert reply.content == b"".join(store.export_car(cid))
    fresh = LocalStore(tmp_path / "fresh", fsync=False)
    assert fresh.import_car(io.BytesIO(reply.content)) == [cid]
    assert (
        fresh.read_bytes(fresh.resolve(cid, "sub/b.txt"))
        == (tmp_path / "tree" / "sub" / "b.txt").read_bytes()
    )


def test_car_of_a_path_keeps_the_root_and_proves_the_path(
    api: TestClient, store: LocalStore, tmp_path: Path
) -> None:
    cid = store.add_dir(make_tree(tmp_path / "tree"))
    reply = api.get(f"/ipfs/{cid}/sub/b.txt?format=car")
    assert reply.status_code == 200
    reader = CarReader(io.BytesIO(reply.content))
    assert [str(r) for r in reader.roots] == [cid]
    assert [str(b) for b, _ in reader] == [
        cid,
        store.resolve(cid, "sub"),
        store.resolve(cid, "sub/b.txt"),
    ]


def test_unknown_format_is_a_400_naming_the_choices(api: TestClient, store: LocalStore) -> None:
    cid = store.add_bytes(b"x")
    reply = api.get(f"/ipfs/{cid}?format=tar")
    assert reply.status_code == 400
    assert "format=raw" in reply.json()["detail"] and "format=car" in reply.json()["detail"]


def test_car_of_an_unknown_cid_is_a_404(api: TestClient) -> None:
    cid = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    assert api.get(f"/ipfs/{cid}?format=car").status_code == 404
    assert api.get(f"/ipfs/{cid}?format=raw").status_code == 404


def test_plain_requests_still_get_file_bytes(api: TestClient, store: LocalStore) -> None:
    cid = store.add_bytes(b"plain bytes")
    reply = api.get(f"/ipfs/{cid}")
    assert reply.content == b"plain bytes"
    assert not reply.headers["content-type"].startswith("application/vnd.ipld")


def test_fetch_over_real_http_verifies_and_stores(
    live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    cid = store.add_dir(make_tree(tmp_path / "tree"))
    other = LocalStore(tmp_path / "other", fsync=False)
    assert fetch_dag(other, live_url, cid) == cid
    sub = fetch_dag(LocalStore(tmp_path / "third", fsync=False), live_url, cid, "sub")
    assert sub == store.resolve(cid, "sub")
    assert other.has(cid)


def test_cli_get_from_gateway_writes_the_tree(
    live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "tree")
    cid = store.add_dir(src)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        store_cli,
        ["get", cid, "--from", live_url, "-o", str(out), "--store", str(tmp_path / "mine")],
    )
    assert result.exit_code == 0, result.stderr
    assert (out / "sub" / "big.bin").read_bytes() == (src / "sub" / "big.bin").read_bytes()


def test_cli_get_from_a_gateway_without_the_cid_fails_clearly(
    live_url: str, tmp_path: Path
) -> None:
    cid = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    result = CliRunner().invoke(
        store_cli, ["get", cid, "--from", live_url, "--store", str(tmp_path / "mine")]
    )
    assert result.exit_code == 1
    assert f"answered 404 for {cid}" in result.stderr


def test_posted_jobs_spec_and_inputs_survive_gc_until_their_windows_and_retention_pass(
    api: TestClient, store: LocalStore, settings: Settings
) -> None:
    unused = api.post("/ipfs", content=b"uploaded, never used").json()["cid"]
    input_cid = api.post("/ipfs", content=b"1 2 3\n").json()["cid"]
    spec = echo_spec(claim_window=300, run_window=600)
    spec["inputs"] = [{"name": "numbers.txt", "cid": input_cid}]
    started = time.time()
    posted = api.post("/jobs", json=spec).json()
    pins = {p.name: p for p in store.pins.list()}
    job = posted["job_id"]
    assert pins[f"job-{job}-spec"].cid == posted["spec_cid"]
    assert pins[f"job-{job}-input-0"].cid == input_cid
    expires = pins[f"job-{job}-spec"].expires_at
    assert expires is not None
    assert (
        started + 900 + settings.pin_retention
        <= expires
        <= time.time() + 900 + (settings.pin_retention)
    )
    store.gc(now=expires - 1)
    assert store.has(posted["spec_cid"]) and store.has(input_cid)
    assert not store.has(unused)
    store.gc(now=expires)
    assert not store.has(posted["spec_cid"])
