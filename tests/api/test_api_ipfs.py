"""The /ipfs gateway over a real LocalStore: uploads, files, ranges, directories, damage."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hepx.anvil import free_port
from hepx.errors import GatewayError
from hepx.store import CAR_MEDIA, CHUNK_SIZE, LocalStore, push_dag

# CIDv1 raw sha2-256 of b"hello ipfs\n", as Kubo and js-ipfs compute it.
HELLO_CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def _pattern(size: int) -> bytes:
    """Bytes whose every 256 KiB chunk differs, so a misplaced chunk cannot go unnoticed."""
    return bytes((i * 7 + i // CHUNK_SIZE) % 251 for i in range(size))


def _tamper(store_root: Path, cid: str) -> None:
    """Overwrite the block stored under ``cid`` with other bytes of the same length."""
    path, offset, _ = LocalStore(store_root).block_location(cid)
    with open(path, "r+b") as f:
        f.seek(offset)
        first = f.read(1)
        f.seek(offset)
        f.write(bytes([first[0] ^ 0xFF]))


def test_upload_answers_the_ipfs_cid_of_the_bytes(api: TestClient) -> None:
    reply = api.post("/ipfs", content=b"hello ipfs\n")

    assert reply.status_code == 201
    assert reply.json() == {"cid": HELLO_CID, "size": 11}


def test_large_upload_gets_the_same_cid_as_a_direct_add_and_reads_back(
    api: TestClient, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(9 * 1024 * 1024)  # past the in-memory spool limit

    reply = api.post("/ipfs", content=data)

    assert reply.status_code == 201
    assert reply.json()["cid"] == LocalStore(tmp_path / "scratch", fsync=False).add_bytes(data)
    assert api.get(f"/ipfs/{reply.json()['cid']}").content == data


def test_file_is_served_with_its_bytes_and_gateway_headers(
    api: TestClient, store: LocalStore
) -> None:
    cid = store.add_bytes(b"hello ipfs\n")

    reply = api.get(f"/ipfs/{cid}")

    assert reply.status_code == 200
    assert reply.content == b"hello ipfs\n"
    assert reply.headers["etag"] == f'"{cid}"'
    assert reply.headers["x-ipfs-path"] == f"/ipfs/{cid}"
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["content-length"] == "11"


def test_matching_if_none_match_is_304(api: TestClient, store: LocalStore) -> None:
    cid = store.add_bytes(b"cached")

    reply = api.get(f"/ipfs/{cid}", headers={"if-none-match": f'"{cid}"'})

    assert reply.status_code == 304
    assert reply.content == b""


def test_range_request_returns_206_with_the_slice(api: TestClient, store: LocalStore) -> None:
    data = _pattern(3 * CHUNK_SIZE + 1000)
    cid = store.add_bytes(data)
    first, last = CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 9  # spans three leaves

    reply = api.get(f"/ipfs/{cid}", headers={"range": f"bytes={first}-{last}"})

    assert reply.status_code == 206
    assert reply.content == data[first : last + 1]
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert reply.headers["content-length"] == str(last - first + 1)


def test_suffix_and_open_ended_ranges(api: TestClient, store: LocalStore) -> None:
    data = b"0123456789"
    cid = store.add_bytes(data)

    assert api.get(f"/ipfs/{cid}", headers={"range": "bytes=-3"}).content == b"789"
    assert api.get(f"/ipfs/{cid}", headers={"range": "bytes=4-"}).content == b"456789"
    assert api.get(f"/ipfs/{cid}", headers={"range": "bytes=8-100"}).content == b"89"


def test_range_past_the_end_is_416(api: TestClient, store: LocalStore) -> None:
    cid = store.add_bytes(b"short")

    reply = api.get(f"/ipfs/{cid}", headers={"range": "bytes=10-20"})

    assert reply.status_code == 416
    assert reply.headers["content-range"] == "bytes */5"


@pytest.fixture
def tree(store: LocalStore, tmp_path: Path) -> str:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("some notes\n")
    (root / "sub" / "data.json").write_text('{"x": 1}\n')
    return store.add_dir(root)


def test_directory_answers_a_json_listing(api: TestClient, store: LocalStore, tree: str) -> None:
    reply = api.get(f"/ipfs/{tree}")

    assert reply.status_code == 200
    body = reply.json()
    assert body["cid"] == tree
    entries = {e["name"]: e for e in body["entries"]}
    assert set(entries) == {"notes.txt", "sub"}
    assert entries["notes.txt"]["type"] == "file" and entries["notes.txt"]["size"] == 11
    assert entries["sub"]["type"] == "directory"
    assert entries["notes.txt"]["cid"] == store.resolve(tree, "notes.txt")


def test_directory_answers_html_to_a_browser(api: TestClient, tree: str) -> None:
    reply = api.get(f"/ipfs/{tree}/sub", headers={"accept": "text/html,*/*;q=0.8"})

    assert reply.headers["content-type"].startswith("text/html")
    assert f'href="/ipfs/{tree}/sub/data.json"' in reply.text


def test_file_by_path_gets_its_content_type_from_the_name(api: TestClient, tree: str) -> None:
    reply = api.get(f"/ipfs/{tree}/sub/data.json")

    assert reply.status_code == 200
    assert reply.content == b'{"x": 1}\n'
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-ipfs-path"] == f"/ipfs/{tree}/sub/data.json"


def test_missing_path_in_directory_is_404(api: TestClient, tree: str) -> None:
    reply = api.get(f"/ipfs/{tree}/nope.txt")

    assert reply.status_code == 404
    assert "nope.txt" in reply.json()["detail"]


def test_malformed_cid_is_400(api: TestClient) -> None:
    reply = api.get("/ipfs/not-a-cid")

    assert reply.status_code == 400
    assert "not-a-cid" in reply.json()["detail"]


def test_unknown_cid_is_404_naming_it(api: TestClient) -> None:
    reply = api.get(f"/ipfs/{HELLO_CID}")

    assert reply.status_code == 404
    assert HELLO_CID in reply.json()["detail"]


def test_tampered_block_is_an_error_naming_the_cid_not_wrong_bytes(
    api: TestClient, store: LocalStore
) -> None:
    cid = store.add_bytes(b"hello ipfs\n")
    _tamper(store.root, cid)

    reply = api.get(f"/ipfs/{cid}")

    assert reply.status_code == 502
    assert cid in reply.json()["detail"]
    assert "does not match its CID" in reply.json()["detail"]


def test_block_corrupted_mid_stream_cuts_the_body_short(
    live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    data = _pattern(3 * CHUNK_SIZE)
    cid = store.add_bytes(data)
    last_leaf = LocalStore(tmp_path / "scratch").put_block(data[2 * CHUNK_SIZE :], "raw")
    _tamper(store.root, last_leaf)

    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", f"{live_url}/ipfs/{cid}", timeout=10) as reply,
    ):
        assert reply.status_code == 200  # the first block was fine
        for chunk in reply.iter_bytes():
            received += chunk

    assert len(received) < len(data)
    assert bytes(received) == data[: len(received)]


def _worker_result(tmp_path: Path) -> tuple[LocalStore, str]:
    """A result folder in a worker's own store (another host's, as far as the API knows)."""
    worker = LocalStore(tmp_path / "worker-store", fsync=False)
    result = tmp_path / "result"
    (result / "outputs").mkdir(parents=True)
    (result / "outputs" / "big.bin").write_bytes(_pattern(2 * CHUNK_SIZE + 5))
    (result / "provenance.json").write_text('{"job_id": 1}\n')
    return worker, worker.add_dir(result)


def test_car_upload_stores_the_dag_under_its_root_cid(
    api: TestClient, store: LocalStore, tmp_path: Path
) -> None:
    worker, cid = _worker_result(tmp_path)
    car = b"".join(worker.export_car(cid))

    reply = api.post("/ipfs", content=car, headers={"Content-Type": CAR_MEDIA})

    assert reply.status_code == 201, reply.text
    assert reply.json() == {"cid": cid, "size": len(car)}
    assert store.read_bytes(store.resolve(cid, "outputs/big.bin")) == _pattern(2 * CHUNK_SIZE + 5)


def test_tampered_car_upload_is_400_and_stores_nothing(
    api: TestClient, store: LocalStore, tmp_path: Path
) -> None:
    worker, cid = _worker_result(tmp_path)
    car = bytearray(b"".join(worker.export_car(cid)))
    car[-100] ^= 0xFF  # inside the last block's bytes: it no longer hashes to its CID

    reply = api.post("/ipfs", content=bytes(car), headers={"Content-Type": CAR_MEDIA})

    assert reply.status_code == 400, reply.text
    assert "does not match" in reply.json()["detail"] or "CID" in reply.json()["detail"]
    assert not store.has(cid)


def test_truncated_car_upload_is_400_naming_what_is_missing(
    api: TestClient, store: LocalStore, tmp_path: Path
) -> None:
    worker, cid = _worker_result(tmp_path)
    car = b"".join(worker.export_car(cid))

    reply = api.post("/ipfs", content=car[: len(car) // 2], headers={"Content-Type": CAR_MEDIA})

    assert reply.status_code == 400, reply.text
    assert not store.has(cid)


def test_push_dag_publishes_a_result_through_a_live_api(
    live_url: str, store: LocalStore, tmp_path: Path
) -> None:
    worker, cid = _worker_result(tmp_path)

    push_dag(worker, live_url, cid)

    assert store.has(cid)
    fetched = httpx.get(f"{live_url}/ipfs/{cid}/provenance.json", timeout=10)
    assert fetched.text == '{"job_id": 1}\n'


def test_push_dag_to_an_api_that_is_gone_is_a_gateway_error_after_retries(
    tmp_path: Path,
) -> None:
    worker, cid = _worker_result(tmp_path)
    with pytest.raises(GatewayError, match="could not publish .* cannot reach"):
        push_dag(worker, f"http://127.0.0.1:{free_port()}", cid, attempts=2, pause=0.01)
