"""The hep.pythia kind end to end: real Pythia8, FastJet and uproot, through the dispatcher."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.kinds import runner_command
from agent.kinds.hep_pythia import hist_max, pythia_settings
from hepx.kinds.hep_pythia import PythiaJob
from hepx.spec import canonical_json, parse_spec

uproot = pytest.importorskip("uproot")
pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

EVENTS = 200


def pythia_spec(**params: Any) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "hep.pythia",
        "metadata": {"name": "pythia-test"},
        "params": {"events": EVENTS, "seed": 42} | params,
        "resources": {"max_runtime": 120},
        "payment": {"max_price": "1 gwei", "claim_window": 60, "run_window": 600},
    }


@dataclass
class Run:
    spec: PythiaJob
    outputs: Path
    returncode: int
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.outputs / "summary.json").read_text())
        return result


def start(folder: Path, spec_data: dict[str, Any]) -> tuple[PythiaJob, Path, subprocess.Popen[str]]:
    spec = parse_spec(spec_data)
    assert isinstance(spec, PythiaJob)
    folder.mkdir()
    (folder / "spec.json").write_bytes(canonical_json(spec))
    for sub in ("inputs", "outputs"):
        (folder / sub).mkdir()
    cmd = runner_command(spec.kind, folder / "spec.json", folder / "inputs", folder / "outputs")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return spec, folder / "outputs", proc


def run_all(base: Path, specs: dict[str, dict[str, Any]]) -> dict[str, Run]:
    """Run the jobs concurrently (one per core is plenty) and wait for all of them."""
    started = {name: start(base / name, data) for name, data in specs.items()}
    runs = {}
    for name, (spec, outputs, proc) in started.items():
        _, stderr = proc.communicate(timeout=300)
        runs[name] = Run(spec, outputs, proc.returncode, stderr)
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_all(
        tmp_path_factory.mktemp("pythia"),
        {
            "seed42": pythia_spec(seed=42),
            "seed42_again": pythia_spec(seed=42),
            "seed43": pythia_spec(seed=43),
        },
    )


@pytest.fixture(scope="module")
def run42(runs: dict[str, Run]) -> Run:
    run = runs["seed42"]
    assert run.returncode == 0, run.stderr
    return run


def test_summary_has_a_positive_cross_section_with_error(run42: Run) -> None:
    summary = run42.summary
    assert summary["events"] == EVENTS
    assert 0 < summary["sigma_err_mb"] < summary["sigma_mb"]
    # QCD 2->2 above pTHat 20 GeV at 13 TeV is of order a millibarn (PDG/Pythia: ~0.7 mb).
    assert 0.3 < summary["sigma_mb"] < 1.5
    assert summary["versions"]["pythia8mc"].startswith("8.3")
    assert summary["process"] == "dijet" and summary["seed"] == 42


def test_histogram_entries_equal_the_jets_in_summary_and_tree(run42: Run) -> None:
    summary = run42.summary
    with uproot.open(run42.outputs / "jets.root") as f:
        hist = f["jet_pt"]
        tree = f["events"].arrays(library="np")
        assert hist.values(flow=True).sum() == summary["n_jets"] > 0
        assert hist.member("fEntries") == summary["n_jets"]
        assert tree["njets"].sum() == summary["n_jets"]
        assert len(tree["njets"]) == EVENTS
        assert summary["mean_jets_per_event"] == pytest.approx(summary["n_jets"] / EVENTS)
        assert list(hist.values()) == summary["jet_pt_hist"]["counts"]


def test_histogram_has_no_bins_below_jet_pt_min(run42: Run) -> None:
    with uproot.open(run42.outputs / "jets.root") as f:
        hist = f["jet_pt"]
        edges = hist.axis().edges()
        assert edges[0] == run42.spec.params.jet_pt_min
        assert edges[-1] == hist_max(run42.spec.params)
        assert hist.values(flow=True)[0] == 0  # underflow


def test_tree_jets_pass_the_cuts_and_are_sorted_by_pt(run42: Run) -> None:
    params = run42.spec.params
    with uproot.open(run42.outputs / "jets.root") as f:
        events = f["events"].arrays()
    for pts, etas, lead_pt, lead_eta in zip(
        events["jet_pt"],
        events["jet_eta"],
        events["leading_jet_pt"],
        events["leading_jet_eta"],
        strict=True,
    ):
        pts, etas = np.asarray(pts), np.asarray(etas)
        assert np.all(pts > params.jet_pt_min)
        assert np.all(np.abs(etas) < params.jet_eta_max)
        assert np.all(np.diff(pts) <= 0)
        assert lead_pt == (pts[0] if len(pts) else 0.0)
        assert lead_eta == (etas[0] if len(etas) else 0.0)


def test_progress_is_reported_up_to_all_events(run42: Run) -> None:
    lines = [ln for ln in run42.stderr.splitlines() if ln.startswith("progress:")]
    assert len(lines) >= 10
    assert any(f"{EVENTS}/{EVENTS} events (100%)" in ln for ln in lines)
    assert not [ln for ln in run42.stderr.splitlines() if ln.startswith("error:")]


def test_same_seed_gives_identical_histogram(runs: dict[str, Run]) -> None:
    a, b = runs["seed42"], runs["seed42_again"]
    assert b.returncode == 0, b.stderr
    with uproot.open(a.outputs / "jets.root") as fa, uproot.open(b.outputs / "jets.root") as fb:
        assert np.array_equal(fa["jet_pt"].values(flow=True), fb["jet_pt"].values(flow=True))
    assert a.summary["sigma_mb"] == b.summary["sigma_mb"]


def test_different_seed_gives_different_histogram(runs: dict[str, Run]) -> None:
    a, c = runs["seed42"], runs["seed43"]
    assert c.returncode == 0, c.stderr
    with uproot.open(a.outputs / "jets.root") as fa, uproot.open(c.outputs / "jets.root") as fc:
        assert not np.array_equal(fa["jet_pt"].values(flow=True), fc["jet_pt"].values(flow=True))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"settings": ["Foo:bar = 1"]}, "error: Pythia rejected the setting 'Foo:bar = 1'"),
        ({"energy_gev": 10}, "error: Pythia could not initialise dijet at 10 GeV"),
    ],
)
def test_bad_runtime_params_fail_with_a_clear_message(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    runs = run_all(tmp_path, {"bad": pythia_spec(events=5, **params)})
    bad = runs["bad"]
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith(message)
    assert not (bad.outputs / "summary.json").exists()


def test_pythia_settings_put_process_first_and_user_settings_last() -> None:
    spec = parse_spec(pythia_spec(process="top-pair", seed=9, settings=["PartonLevel:MPI = off"]))
    assert isinstance(spec, PythiaJob)
    settings = pythia_settings(spec.params)
    assert settings[:2] == ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]
    assert "Random:seed = 9" in settings and "Beams:eCM = 13000" in settings
    assert settings[-1] == "PartonLevel:MPI = off"
