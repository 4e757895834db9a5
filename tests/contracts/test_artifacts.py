"""The committed artifacts match the sources, and load_artifact reads them or fails clearly."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hepx.artifacts
from hepx.artifacts import load_artifact, source_hash
from hepx.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
COMPILE_SCRIPT = REPO / "scripts" / "compile.py"

needs_compiler = pytest.mark.skipif(
    shutil.which("node") is None or not (REPO / "node_modules" / "solc").is_dir(),
    reason="a fresh compile needs node and node_modules/solc (run `npm install`)",
)


@pytest.fixture(scope="module")
def compile_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hepx_compile_script", COMPILE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(compile_script: ModuleType) -> dict[str, str]:
    """Artifact file name -> JSON text from compiling contracts/ now."""
    rendered: dict[str, str] = compile_script.compile_artifacts(compile_script.read_sources())
    return rendered


def test_source_hash_of_committed_artifact_matches_sources(compile_script: ModuleType) -> None:
    # Cheap and compiler-free: catches a source edit that was not followed by `make compile`.
    expected = source_hash(compile_script.read_sources(), compile_script.SETTINGS)
    assert load_artifact("JobMarket").source_hash == expected, (
        "contracts/ changed since hepx/artifacts was written: run `make compile`"
    )


@needs_compiler
def test_committed_artifacts_equal_a_fresh_compile(
    fresh: dict[str, str], compile_script: ModuleType
) -> None:
    assert "JobMarket.json" in fresh
    assert compile_script.stale_artifacts(fresh) == [], "run `make compile` and commit"


@needs_compiler
def test_stale_artifacts_names_changed_missing_and_extra_files(
    fresh: dict[str, str], compile_script: ModuleType, tmp_path: Path
) -> None:
    for name, text in fresh.items():
        (tmp_path / name).write_text(text)
    assert compile_script.stale_artifacts(fresh, tmp_path) == []

    (tmp_path / "JobMarket.json").write_text(fresh["JobMarket.json"].replace('"0x60', '"0x61', 1))
    (tmp_path / "Old.json").write_text("{}")
    assert compile_script.stale_artifacts(fresh, tmp_path) == ["JobMarket.json", "Old.json"]
    (tmp_path / "JobMarket.json").unlink()
    assert compile_script.stale_artifacts(fresh, tmp_path) == ["JobMarket.json", "Old.json"]


@needs_compiler
def test_compile_check_cli_exits_zero_on_committed_artifacts() -> None:
    done = subprocess.run(
        [sys.executable, str(COMPILE_SCRIPT), "--check"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_artifact_settings_pin_compiler_and_evm() -> None:
    data = json.loads((REPO / "hepx" / "artifacts" / "JobMarket.json").read_text())
    assert data["compiler"]["version"].startswith("0.8.30+commit.")
    assert data["compiler"]["settings"] == {
        "evmVersion": "prague",
        "optimizer": {"enabled": True, "runs": 200},
        "viaIR": False,
    }


def test_load_artifact_exposes_abi_and_bytecode() -> None:
    artifact = load_artifact("JobMarket")
    names = {entry.get("name") for entry in artifact.abi}
    assert {"postJob", "claim", "withdraw", "JobPosted", "JobMarketWrongState"} <= names
    assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 1000
    # The runtime code is the tail end of what the constructor returns.
    assert artifact.deployed_bytecode[2:200] in artifact.bytecode


def test_load_artifact_missing_says_to_compile() -> None:
    with pytest.raises(
        ConfigError, match=r"no compiled artifact for contract 'NoSuch'.*make compile"
    ):
        load_artifact("NoSuch")


@pytest.mark.parametrize("name", ["../pyproject", "Job Market", "", "JobMarket.json"])
def test_load_artifact_rejects_names_that_are_not_identifiers(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid contract name"):
        load_artifact(name)


def test_load_artifact_reports_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "Broken.json").write_text('{"contractName": "Broken", "abi": []}')
    monkeypatch.setattr(hepx.artifacts.resources, "files", lambda _package: tmp_path)
    with pytest.raises(ConfigError, match=r"Broken.json is damaged.*make compile"):
        load_artifact("Broken")


def test_source_hash_depends_on_paths_contents_and_settings_not_order() -> None:
    base = source_hash({"a.sol": "x", "b.sol": "y"}, {"runs": 1})
    assert source_hash({"b.sol": "y", "a.sol": "x"}, {"runs": 1}) == base
    assert source_hash({"a.sol": "x", "b.sol": "z"}, {"runs": 1}) != base
    assert source_hash({"a.sol": "x", "c.sol": "y"}, {"runs": 1}) != base
    assert source_hash({"a.sol": "x", "b.sol": "y"}, {"runs": 2}) != base
    # Boundaries between path and content cannot shift unnoticed.
    assert source_hash({"ab": "c"}, {}) != source_hash({"a": "bc"}, {})
