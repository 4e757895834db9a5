"""Pins and garbage collection of the local store; batched writes stay crash-safe."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hepx.commands.store import app as store_cli
from hepx.errors import StoreError
from hepx.store import CHUNK_SIZE, LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)


def block_count(store: LocalStore) -> int:
    return sum(1 for _ in store.blocks())


def test_gc_keeps_pinned_dags_and_removes_the_rest(store: LocalStore, tmp_path: Path) -> None:
    kept = store.add_bytes(random.Random(0).randbytes(CHUNK_SIZE * 2 + 1))  # root + 3 leaves
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_bytes(b"in a pinned directory")
    kept_dir = store.add_dir(tree)
    dropped = store.add_bytes(random.Random(1).randbytes(CHUNK_SIZE + 1))
    store.pin("a", kept)
    store.pin("b", kept_dir)
    report = store.gc()
    assert report.removed == 3  # dropped's root and its two leaves
    assert report.kept == 4 + 3
    assert store.read_bytes(kept) == random.Random(0).randbytes(CHUNK_SIZE * 2 + 1)
    assert store.read_bytes(store.resolve(kept_dir, "d/f")) == b"in a pinned directory"
    assert not store.has(dropped)
    assert block_count(store) == 7


def test_expired_pins_are_dropped_and_their_blocks_collected(store: LocalStore) -> None:
    short = store.add_bytes(b"short-lived")
    forever = store.add_bytes(b"kept for good")
    store.pin("job-1-spec", short, expires_at=1000.0)
    store.pin("keep", forever)
    early = store.gc(now=999.0)
    assert early.expired == [] and store.has(short)
    late = store.gc(now=1000.0)
    assert late.expired == ["job-1-spec"]
    assert not store.has(short) and store.has(forever)
    assert [p.name for p in store.pins.list()] == ["keep"]


def test_a_block_shared_with_a_pinned_dag_survives_unpinning_the_other(
    store: LocalStore,
) -> None:
    data = b"shared leaf"
    a = store.add_bytes(data)
    store.pin("one", a)
    store.pin("two", a)
    assert store.unpin("one")
    store.gc()
    assert store.read_bytes(a) == data
    assert store.unpin("two") and not store.unpin("two")
    store.gc()
    assert not store.has(a)


def test_gc_removes_stale_staging_left_by_a_crashed_import(store: LocalStore) -> None:
    stale = store.root / "staging" / "import-1-dead" / "blocks" / "xx"
    stale.mkdir(parents=True)
    (stale / "bafkreiabc").write_bytes(b"half an import")
    store.gc()
    assert not (store.root / "staging").exists()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "-leading-dash", "x" * 200])
def test_bad_pin_names_are_refused(store: LocalStore, name: str) -> None:
    cid = store.add_bytes(b"x")
    with pytest.raises(StoreError, match="bad pin name"):
        store.pin(name, cid)


def test_pinning_a_malformed_cid_is_refused_at_once(store: LocalStore) -> None:
    with pytest.raises(StoreError, match="not a CID"):
        store.pin("p", "not-a-cid")


def test_failed_batch_leaves_no_block_and_no_temp_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []
    real_write = os.write

    def fail_third(fd: int, data: bytes | memoryview) -> int:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr("hepx.store._blockstore.os.write", fail_third)
    src = tmp_path / "big.bin"
    src.write_bytes(random.Random(3).randbytes(CHUNK_SIZE * 4))
    with pytest.raises(StoreError, match="No space left"):
        store.add_file(src)
    monkeypatch.undo()
    assert list(store.blocks()) == []
    leftovers = [p for p in store.root.rglob("*") if p.is_file() and "pack" in p.name]
    assert [p.name for p in leftovers if not p.name.startswith("index.sqlite")] == []


def test_cli_pin_gc_and_pins(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = LocalStore(folder, fsync=False)
    kept, dropped = store.add_bytes(b"keep"), store.add_bytes(b"drop")
    runner = CliRunner()
    assert runner.invoke(store_cli, ["pin", "k", kept, "--store", str(folder)]).exit_code == 0
    listed = runner.invoke(store_cli, ["pins", "--store", str(folder)])
    assert listed.stdout.strip() == f"k\t{kept}\tforever"
    done = runner.invoke(store_cli, ["gc", "--store", str(folder)])
    assert done.exit_code == 0 and "removed 1 " in done.stdout
    assert store.has(kept) and not store.has(dropped)
    missing = runner.invoke(store_cli, ["unpin", "nope", "--store", str(folder)])
    assert missing.exit_code == 1 and "no pin named 'nope'" in missing.stderr


def test_pin_files_of_an_earlier_store_are_adopted_and_kept_through_gc(tmp_path: Path) -> None:
    """Stores before kept a JSON file per pin: opening one moves them into the pins table."""
    root = tmp_path / "old"
    old = LocalStore(root, fsync=False)
    kept, timed = old.add_bytes(b"kept for good"), old.add_bytes(b"kept a while")
    (root / "pins").mkdir()
    (root / "pins" / "job-3-spec.json").write_text(f'{{"cid": "{kept}", "expires_at": null}}')
    (root / "pins" / "job-3-result.json").write_text(f'{{"cid": "{timed}", "expires_at": 50.0}}')
    (root / "pins" / ".job-4-spec.json.1a2b.tmp").write_text("{")  # a write a kill cut short
    store = LocalStore(root, fsync=False)
    assert {p.name: (p.cid, p.expires_at) for p in store.pins.list()} == {
        "job-3-result": (timed, 50.0),
        "job-3-spec": (kept, None),
    }
    assert sorted(p.name for p in (root / "pins").iterdir()) == ["pins.sqlite"] + [
        n for n in ("pins.sqlite-shm", "pins.sqlite-wal") if (root / "pins" / n).exists()
    ]
    store.gc(now=100.0)
    assert store.has(kept) and not store.has(timed)


def test_processes_pinning_at_once_keep_every_pin(tmp_path: Path) -> None:
    """Agents and the API share a store: pins written at once from several processes (and
    the same name re-pinned by all) are all there after."""
    import multiprocessing

    root = tmp_path / "shared"
    cid = LocalStore(root, fsync=False).add_bytes(b"x")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_pin_many, args=(root, w, cid)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    names = [p.name for p in LocalStore(root, fsync=False).pins.list()]
    assert len(names) == 4 * 50 + 1 and "shared" in names


def _pin_many(root: Path, worker: int, cid: str) -> None:
    store = LocalStore(root, fsync=False)
    for i in range(50):
        store.pin(f"job-{worker}-{i}", cid)
        store.pin("shared", cid, expires_at=float(i))
