"""CAR v1 export/import: byte parity with @ipld/car, verification, all-or-nothing import."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import CID

from hepx.errors import BlockCorrupted, BlockNotFound, InvalidCar, StoreError
from hepx.store import CHUNK_SIZE, CarReader, LocalStore
from hepx.store._car import encode_header
from hepx.store._cid import block_id
from hepx.store._unixfs import varint

REPO = Path(__file__).resolve().parents[2]
CAR_SCRIPT = Path(__file__).with_name("js") / "car_export.mjs"
needs_js = pytest.mark.skipif(
    shutil.which("node") is None
    or not all(
        (REPO / "node_modules" / pkg).is_dir()
        for pkg in ("ipfs-unixfs-importer", "blockstore-core", "@ipld/car", "@ipld/dag-pb")
    ),
    reason="node with ipfs-unixfs-importer, blockstore-core and @ipld/car is not installed "
    "(npm ci)",
)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)


def car_of(store: LocalStore, cid: str, path: str = "") -> bytes:
    return b"".join(store.export_car(cid, path))


def stored_blocks(store: LocalStore) -> list[tuple[str, int]]:
    return list(store.blocks())


def make_tree(root: Path, seed: int = 3) -> Path:
    rng = random.Random(seed)
    for rel, size in [
        ("a.txt", 5),
        ("sub/x.bin", CHUNK_SIZE * 2 + 9),
        ("sub/deep/y.txt", 1),
        ("sub/dup.txt", 5),
        ("zz/empty", 0),
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
    (root / "sub" / "dup.txt").write_bytes((root / "a.txt").read_bytes())  # a shared block
    return root


# -- parity with the JS reference ----------------------------------------------------------


@needs_js
@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1_000_000, 50_000_000, "tree"])
def test_export_is_byte_identical_to_ipld_car(
    tmp_path: Path, store: LocalStore, size: int | str
) -> None:
    if size == "tree":
        src = make_tree(tmp_path / "tree")
    else:
        assert isinstance(size, int)
        src = tmp_path / f"file_{size}.bin"
        with open(src, "wb") as out:  # written in pieces: the 50 MB case stays small in RAM
            rng = random.Random(size)
            for start in range(0, size, 1 << 22):
                out.write(rng.randbytes(min(1 << 22, size - start)))
    js_car = tmp_path / "js.car"
    done = subprocess.run(
        ["node", str(CAR_SCRIPT), str(src), str(js_car)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    cid = store.add_path(src)
    assert cid == done.stdout.strip()
    ours = car_of(store, cid)
    theirs = js_car.read_bytes()
    assert len(ours) == len(theirs)
    assert ours == theirs


# -- format ----------------------------------------------------------------------------------


def test_header_is_canonical_dag_cbor_with_one_root(store: LocalStore) -> None:
    cid = store.add_bytes(b"hello ipfs\n")
    car = car_of(store, cid)
    header_len = car[0]
    header = car[1 : 1 + header_len]
    binary = bytes(CID.decode(cid))
    expected = b"\xa2eroots\x81\xd8\x2a\x58\x25\x00" + binary + b"gversion\x01"
    assert header == expected
    section = car[1 + header_len :]
    assert section == varint(len(binary) + 11) + binary + b"hello ipfs\n"


def test_export_writes_each_block_once_root_first_depth_first(
    store: LocalStore, tmp_path: Path
) -> None:
    cid = store.add_dir(make_tree(tmp_path / "tree"))
    reader = CarReader(io.BytesIO(car_of(store, cid)))
    order = [str(bid) for bid, _ in reader]
    assert order[0] == cid
    assert len(order) == len(set(order))  # a.txt and sub/dup.txt share one block
    # pre-order: a directory comes before every block first reached through it
    sub = store.resolve(cid, "sub")
    shared = store.resolve(cid, "a.txt")
    assert store.resolve(cid, "sub/dup.txt") == shared
    assert order.index(shared) < order.index(sub)
    below_sub = {e.cid for e in store.ls(sub)} - {shared}
    assert below_sub and all(order.index(sub) < order.index(c) for c in below_sub)


def test_round_trip_into_an_empty_store_gives_the_same_tree(
    store: LocalStore, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "tree")
    cid = store.add_dir(src)
    other = LocalStore(tmp_path / "other", fsync=False)
    assert other.import_car(io.BytesIO(car_of(store, cid))) == [cid]
    other.get(cid, tmp_path / "out")
    for path in src.rglob("*"):
        if path.is_file():
            assert (tmp_path / "out" / path.relative_to(src)).read_bytes() == path.read_bytes()


def test_export_of_a_path_holds_the_path_blocks_then_the_target(
    store: LocalStore, tmp_path: Path
) -> None:
    cid = store.add_dir(make_tree(tmp_path / "tree"))
    car = car_of(store, cid, "sub/deep/y.txt")
    reader = CarReader(io.BytesIO(car))
    assert [str(r) for r in reader.roots] == [cid]
    got = [str(bid) for bid, _ in reader]
    assert got == [
        cid,
        store.resolve(cid, "sub"),
        store.resolve(cid, "sub/deep"),
        store.resolve(cid, "sub/deep/y.txt"),
    ]
    other = LocalStore(tmp_path / "other", fsync=False)
    other.import_car(io.BytesIO(car), root=cid, path="sub/deep/y.txt")
    assert other.read_bytes(other.resolve(cid, "sub/deep/y.txt")) == store.read_bytes(got[-1])


def test_export_with_a_missing_block_fails_before_any_byte(store: LocalStore) -> None:
    cid = store.add_bytes(random.Random(0).randbytes(CHUNK_SIZE + 1))
    leaves = [c for c, _ in store.blocks() if c.startswith("bafkrei")]
    assert len(leaves) == 2
    store.drop_block(leaves[1])
    with pytest.raises(BlockNotFound):
        store.export_car(cid)


# -- import: verification and all-or-nothing ------------------------------------------------


def test_tampered_block_fails_import_naming_its_cid_and_stores_nothing(
    store: LocalStore, tmp_path: Path
) -> None:
    data = random.Random(1).randbytes(CHUNK_SIZE * 3)
    cid = store.add_bytes(data)
    car = bytearray(car_of(store, cid))
    victim = car.index(data[CHUNK_SIZE : CHUNK_SIZE + 64])  # inside the second leaf
    car[victim] ^= 0xFF
    second_leaf = [str(b) for b, _ in CarReader(io.BytesIO(car_of(store, cid)))][2]
    other = LocalStore(tmp_path / "other", fsync=False)
    with pytest.raises(BlockCorrupted, match=second_leaf):
        other.import_car(io.BytesIO(bytes(car)))
    assert stored_blocks(other) == []
    assert not other.has(cid)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=1_000_000))
def test_truncated_car_fails_import_and_stores_nothing(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    base = tmp_path_factory.mktemp("car")
    src = LocalStore(base / "src", fsync=False)
    cid = src.add_bytes(random.Random(2).randbytes(CHUNK_SIZE * 2 + 100))
    car = car_of(src, cid)
    cut = cut % len(car)  # every strict prefix, including ones ending between sections
    dest = LocalStore(base / "dest", fsync=False)
    with pytest.raises(InvalidCar):
        dest.import_car(io.BytesIO(car[:cut]))
    assert stored_blocks(dest) == []


def test_import_counts_blocks_already_in_the_store(store: LocalStore, tmp_path: Path) -> None:
    data = random.Random(4).randbytes(CHUNK_SIZE * 2)
    cid = store.add_bytes(data)
    car = car_of(store, cid)
    # A CAR of the root block alone imports into a store that has the leaves already.
    reader = CarReader(io.BytesIO(car))
    root_only = b"".join(
        [car[: 1 + car[0]]]
        + [varint(36 + len(b)) + bid.binary + b for bid, b in reader if str(bid) == cid]
    )
    assert store.import_car(io.BytesIO(root_only)) == [cid]
    empty = LocalStore(tmp_path / "empty", fsync=False)
    with pytest.raises(InvalidCar, match="incomplete"):
        empty.import_car(io.BytesIO(root_only))


def test_import_with_expected_root_refuses_another_root(store: LocalStore, tmp_path: Path) -> None:
    one = store.add_bytes(b"one")
    two = store.add_bytes(b"two")
    other = LocalStore(tmp_path / "other", fsync=False)
    with pytest.raises(InvalidCar, match=f"asked for the DAG of {two}"):
        other.import_car(io.BytesIO(car_of(store, one)), root=two)
    assert not other.has(one)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "empty input"),
        (b"\x05abcde", "not a single dag-cbor map|not a dag-cbor map|holds a CBOR item"),
        (varint(10) + b"\xa1gversion\x02", "version 2"),
        (b"\xff\xff\xff\xff\x7f", "not plausible"),
    ],
)
def test_malformed_car_headers_are_refused_clearly(
    store: LocalStore, blob: bytes, message: str
) -> None:
    with pytest.raises(InvalidCar, match=message):
        store.import_car(io.BytesIO(blob))


def test_unsupported_codec_in_car_is_refused(store: LocalStore) -> None:
    root = block_id(store.add_bytes(b"x"))
    header = encode_header([root])
    cbor_cid = b"\x01\x71\x12\x20" + bytes(32)  # dag-cbor: not a UnixFS codec
    car = varint(len(header)) + header + varint(len(cbor_cid) + 1) + cbor_cid + b"\xa0"
    with pytest.raises(InvalidCar, match="codec 0x71"):
        LocalStore(store.root.parent / "o", fsync=False).import_car(io.BytesIO(car))


def test_store_error_is_the_base_of_car_errors() -> None:
    assert issubclass(InvalidCar, StoreError)
