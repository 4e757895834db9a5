"""Content store throughput: add and cat MB/s beside plain sha256 over the same bytes.

    .venv/bin/python bench/store.py [--size-mb 1000] [--dir /tmp]

Prints one table row per operation (add, cat, CAR export and verified import) and the
process's peak RSS, which stays near the interpreter's baseline because everything streams
in 256 KiB blocks. sha256 over the same bytes, in the same run, is the reference: every add
and every verified read must hash each byte once.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hepx.store import CHUNK_SIZE, LocalStore

MB = 1_000_000


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _cat_sha256(store: LocalStore, cid: str) -> str:
    digest = hashlib.sha256()
    for chunk in store.cat(cid):
        digest.update(chunk)
    return digest.hexdigest()


def _export(store: LocalStore, cid: str, dest: Path) -> None:
    with open(dest, "wb") as out:
        for piece in store.export_car(cid):
            out.write(piece)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="file size in MB (10^6 bytes)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: /tmp)")
    args = parser.parse_args()
    size = args.size_mb * MB

    work = Path(tempfile.mkdtemp(prefix="hepx-bench-store-", dir=args.dir))
    try:
        source = work / "input.bin"
        rng = random.Random(0)
        with open(source, "wb") as out:  # written in pieces so the bench never holds the file
            for start in range(0, size, 8 << 20):
                out.write(rng.randbytes(min(8 << 20, size - start)))

        rows: list[tuple[str, float, int]] = []  # (operation, seconds, bytes)
        seconds, expected = _timed(lambda: _sha256_file(source))
        rows.append(("hashlib.sha256 (read file, 256 KiB reads)", seconds, size))
        seconds, cid = _timed(lambda: LocalStore(work / "fast", fsync=False).add_file(source))
        rows.append(("add, fsync=False (fresh store)", seconds, size))
        durable = LocalStore(work / "durable")
        seconds, cid_durable = _timed(lambda: durable.add_file(source))
        rows.append(("add, fsync=True (default, fresh store)", seconds, size))
        assert cid == cid_durable
        seconds, got = _timed(lambda: _cat_sha256(durable, str(cid)))
        rows.append(("cat (verified) + sha256 of output", seconds, size))
        assert got == expected, "cat returned different bytes"
        car = work / "dag.car"
        seconds, _ = _timed(lambda: _export(durable, str(cid), car))
        rows.append(("CAR export to a file", seconds, size))
        with open(car, "rb") as stream:
            fresh = LocalStore(work / "imported")
            seconds, roots = _timed(lambda: fresh.import_car(stream))
        rows.append(("CAR import (verified, staged, fsync)", seconds, size))
        assert roots == [cid]
        span = min(10 * MB, size // 2)
        seconds, _ = _timed(lambda: sum(1 for _ in durable.cat(str(cid), size // 2, span)))
        rows.append((f"cat {span / MB:g} MB range from the middle", seconds, span))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"file: {args.size_mb} MB, CID {cid}")
    print(f"{'operation':<44} {'seconds':>8} {'MB/s':>8}")
    for name, secs, nbytes in rows:
        print(f"{name:<44} {secs:>8.3f} {nbytes / MB / secs:>8.0f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
