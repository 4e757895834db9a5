"""The committed gas snapshot matches what the contracts cost now (bench/gas.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gas_snapshot_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gas.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, f"gas changed; the diff:\n{done.stdout}{done.stderr}"


def test_fast_path_gas_stays_within_its_budget() -> None:
    """Post -> settled for one fast-path job (claim mode, 1 replica, ETH), all txs summed."""
    snapshot = (REPO / "bench" / "gas-snapshot.txt").read_text(encoding="utf-8")
    totals = {
        line.split("|")[0].strip(): int(line.split("|")[1].replace(",", ""))
        for line in snapshot.splitlines()
        if "post -> settled" in line
    }
    # Issue 3's goal: at most 180k for parties the market has met, also after they withdrew
    # (jobs 2 and 3). Job 1 also pays, once per address, for two new accounts.
    assert totals["fast job 2: post -> settled"] <= 180_000
    assert totals["fast job 3: post -> settled"] <= 180_000
    # Issue 13's digest beside the result CID: +~1.3k on every submission.
    assert totals["fast job 1: post -> settled"] <= 270_000
