"""hepx.llm_build: what the devnet and ``make up`` read of a background build."""

from __future__ import annotations

import fcntl
import tomllib
from pathlib import Path

import pytest

from hepx import llm_build

REPO = Path(__file__).resolve().parents[2]


def test_requirements_are_the_llm_extra_of_pyproject() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert llm_build.llm_requirements() == extras["optional-dependencies"]["llm"]


def test_progress_is_the_compilers_last_percentage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "build.log"
    monkeypatch.setattr(llm_build, "BUILD_LOG", log)
    assert llm_build.build_progress() == "not started"
    log.write_bytes(b"Collecting llama-cpp-python\n  [  7%] Building C object a.o\n")
    log.open("ab").write(b"  [ 63%] Building CXX object b.o\n  noise\n")
    assert llm_build.build_progress() == "compiling llama.cpp, 63 %"
    log.write_bytes(b"  [87/193] /usr/bin/g++ -DGGML_SHARED -c a.cpp\n")
    assert llm_build.build_progress() == "compiling llama.cpp, 45 % (87/193 steps)"
    log.write_bytes(b"installing the llm extra ...\n")
    assert llm_build.build_progress() == "installing the llm extra ..."


def test_running_means_someone_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_path = tmp_path / "build.lock"
    monkeypatch.setattr(llm_build, "BUILD_LOCK", lock_path)
    assert not llm_build.build_running()  # no lock file at all
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert llm_build.build_running()
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert not llm_build.build_running()
