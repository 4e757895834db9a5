"""`hepx store` commands, run through typer's CliRunner against a real store folder."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hepx.commands.store import app
from hepx.store import CHUNK_SIZE, LocalStore

runner = CliRunner()


def run(*args: str) -> tuple[int, bytes, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout_bytes, result.stderr


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_add_then_cat_streams_the_file(tmp_path: Path, store_dir: Path) -> None:
    data = random.Random(1).randbytes(CHUNK_SIZE * 2 + 5)
    (tmp_path / "f.bin").write_bytes(data)
    code, out, err = run("add", str(tmp_path / "f.bin"), "--store", str(store_dir))
    assert code == 0, err
    cid = out.decode().strip()
    assert cid == LocalStore(store_dir).add_bytes(data)
    code, out, _ = run("cat", cid, "--store", str(store_dir))
    assert code == 0
    assert out == data
    code, out, _ = run("cat", cid, "--offset", "10", "--length", "20", "--store", str(store_dir))
    assert out == data[10:30]


def test_store_defaults_to_settings_store_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEPX_STORE_DIR", str(tmp_path / "from_env"))
    (tmp_path / "f.txt").write_bytes(b"hello ipfs\n")
    code, out, _ = run("add", str(tmp_path / "f.txt"))
    assert code == 0
    assert LocalStore(tmp_path / "from_env").read_bytes(out.decode().strip()) == b"hello ipfs\n"


def test_add_dir_then_ls_and_get(tmp_path: Path, store_dir: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "b.txt").write_bytes(b"beta!")
    code, out, _ = run("add", str(src), "--store", str(store_dir))
    assert code == 0
    cid = out.decode().strip()
    code, out, _ = run("ls", cid, "--store", str(store_dir))
    assert code == 0
    lines = [line.split("\t") for line in out.decode().splitlines()]
    assert [(size, name) for _, size, name in lines][0] == ("5", "a.txt")
    assert lines[1][2] == "sub/"
    code, _, err = run("get", cid, "-o", str(tmp_path / "out"), "--store", str(store_dir))
    assert code == 0, err
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"beta!"


def test_cat_unknown_cid_exits_1_with_message(store_dir: Path) -> None:
    missing = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    code, out, err = run("cat", missing, "--store", str(store_dir))
    assert code == 1
    assert out == b""
    assert f"not in the store: {missing}" in err


def test_cat_malformed_cid_exits_1_with_message(store_dir: Path) -> None:
    code, _, err = run("cat", "not-a-cid", "--store", str(store_dir))
    assert code == 1
    assert "not a CID: 'not-a-cid'" in err


def test_cat_corrupted_block_exits_1_naming_the_cid(tmp_path: Path, store_dir: Path) -> None:
    store = LocalStore(store_dir)
    cid = store.add_bytes(b"precious result")
    path, offset, _ = store.block_location(cid)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"precious resulT")
    code, out, err = run("cat", cid, "--store", str(store_dir))
    assert code == 1
    assert out == b""
    assert f"block {cid} does not match its CID" in err


def test_add_missing_path_exits_1(tmp_path: Path, store_dir: Path) -> None:
    code, _, err = run("add", str(tmp_path / "nope"), "--store", str(store_dir))
    assert code == 1
    assert "no such file or directory" in err
