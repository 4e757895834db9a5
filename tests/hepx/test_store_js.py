"""CID parity with the JS reference importer (ipfs-unixfs-importer, kubo's layout).

Needs node and `npm install --no-save ipfs-unixfs-importer blockstore-core` in the repo;
skipped otherwise.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from hepx.errors import StoreError
from hepx.store import CHUNK_SIZE, MAX_LINKS, LocalStore

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "unixfs_cids.mjs"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None
    or not (REPO / "node_modules" / "ipfs-unixfs-importer").is_dir()
    or not (REPO / "node_modules" / "blockstore-core").is_dir(),
    reason="node with ipfs-unixfs-importer and blockstore-core in node_modules is not installed",
)

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1_000_000, MAX_LINKS * CHUNK_SIZE + 1]


def js_cids(paths: list[Path]) -> dict[str, str]:
    out = subprocess.run(
        ["node", str(SCRIPT), *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def test_file_and_directory_cids_match_js_importer(tmp_path: Path) -> None:
    rng = random.Random(42)
    files = []
    for size in SIZES:
        path = tmp_path / f"file_{size}.bin"
        path.write_bytes(rng.randbytes(size))
        files.append(path)
    tree = tmp_path / "tree"
    for rel, size in [
        ("a.txt", 5),
        ("B.txt", 7),
        ("empty", 0),
        ("sub/x.bin", CHUNK_SIZE * 3 + 11),
        ("sub/deep/y.txt", 1),
        ("\u00e9t\u00e9/z.txt", 2),
        ("aa/zz", 3),
    ]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(rng.randbytes(size))
    (tree / "empty_dir").mkdir()

    store = LocalStore(tmp_path / "store", fsync=False)
    ours = {str(p): store.add_path(p) for p in [*files, tree]}
    assert ours == js_cids([*files, tree])


def test_widest_unsharded_directory_matches_js_and_one_more_entry_is_refused(
    tmp_path: Path,
) -> None:
    # 1024 entries x (220-byte name + 36-byte CID) = 262144: the largest flat directory.
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(1024):
        (wide / f"{i:04d}".ljust(220, "n")).write_bytes(b"%d" % i)
    store = LocalStore(tmp_path / "store", fsync=False)
    assert store.add_dir(wide) == js_cids([wide])[str(wide)]
    (wide / "one-more").write_bytes(b"")
    with pytest.raises(StoreError, match="HAMT"):
        store.add_dir(wide)
