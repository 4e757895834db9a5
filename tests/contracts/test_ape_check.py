"""Ape compiles the same ABIs, runs tests/ape and deploys (scripts/ape_check.sh).

Needs the Ape venv (`make ape-venv`, which .ci/run builds); skipped without it, since Ape pins
web3 7 and cannot live in the runtime venv.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APE = REPO / ".venv-ape" / "bin" / "ape"


@pytest.mark.skipif(not APE.exists(), reason=".venv-ape not built (make ape-venv)")
def test_ape_compiles_same_abis_runs_its_tests_and_deploys() -> None:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "ape_check.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, f"ape check failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    assert "ape-check: ok" in done.stdout
