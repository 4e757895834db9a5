"""hep.generate, hep.analyze and hep.merge run as the agent runs them (real Pythia8, pyhepmc,
FastJet, ROOT and uproot), and the canonical digests of what they write."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.kinds import runner_command
from hepx.digest import canonical_digest
from hepx.spec import canonical_json, parse_spec

pyhepmc = pytest.importorskip("pyhepmc")
uproot = pytest.importorskip("uproot")
pytest.importorskip("pythia8mc")
pytest.importorskip("ROOT")

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
EVENTS = 40
PT_CUT = 50.0


def spec_doc(kind: str, params: dict[str, Any], inputs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": kind,
        "metadata": {"name": "wf-test"},
        "params": params,
        "inputs": [{"name": name, "cid": CID} for name in inputs],
        "resources": {"max_runtime": 300},
        "payment": {"max_price": "1 gwei", "claim_window": 60, "run_window": 600},
    }


@dataclass
class Job:
    folder: Path
    proc: subprocess.Popen[str]

    @property
    def outputs(self) -> Path:
        return self.folder / "outputs"

    def wait(self) -> Job:
        _, err = self.proc.communicate(timeout=300)
        assert self.proc.returncode == 0, err[-2000:]
        return self

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.outputs / "summary.json").read_text())
        return result


def start(folder: Path, doc: dict[str, Any], inputs: dict[str, Path] | None = None) -> Job:
    """Lay out a job folder like the worker does (inputs copied in by name) and start it."""
    spec = parse_spec(doc)
    folder.mkdir(parents=True)
    (folder / "spec.json").write_bytes(canonical_json(spec))
    (folder / "outputs").mkdir()
    (folder / "inputs").mkdir()
    for name, source in (inputs or {}).items():
        if source.is_dir():
            shutil.copytree(source, folder / "inputs" / name)
        else:
            shutil.copyfile(source, folder / "inputs" / name)
    cmd = runner_command(spec.kind, folder / "spec.json", folder / "inputs", folder / "outputs")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Job(folder, proc)


def generate(seed: int, events: int = EVENTS) -> dict[str, Any]:
    return spec_doc("hep.generate", {"seed": seed, "events": events, "pt_hat_min": PT_CUT})


ANALYSIS = {"jet_pt_min": PT_CUT, "hist_bins": 20, "hist_max": 450}


@dataclass
class Runs:
    gen_a: Job
    gen_a_again: Job
    gen_b: Job
    ana_a: Job
    ana_a_again: Job
    ana_b: Job
    merged: Job


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    base = tmp_path_factory.mktemp("hep-kinds")
    # Two "workers" run seed 1, a third runs seed 2.
    gens = [start(base / name, generate(seed)) for name, seed in (("a", 1), ("a2", 1), ("b", 2))]
    gen_a, gen_a_again, gen_b = (job.wait() for job in gens)
    anas = [
        start(
            base / f"ana-{name}", spec_doc("hep.analyze", ANALYSIS, ("gen",)), {"gen": job.folder}
        )
        for name, job in (("a", gen_a), ("a2", gen_a), ("b", gen_b))
    ]
    ana_a, ana_a_again, ana_b = (job.wait() for job in anas)
    merged = start(
        base / "merge",
        spec_doc("hep.merge", {}, ("a", "b")),
        {"a": ana_a.folder, "b": ana_b.folder},
    ).wait()
    yield Runs(gen_a, gen_a_again, gen_b, ana_a, ana_a_again, ana_b, merged)


def test_generate_writes_hepmc3_events_with_vertices_and_the_cross_section(runs: Runs) -> None:
    summary = runs.gen_a.summary()
    assert summary["events"] == EVENTS and summary["seed"] == 1
    assert "PhaseSpace:pTHatMin = 50" in summary["pythia_settings"]
    with pyhepmc.open(runs.gen_a.outputs / "events.hepmc") as f:
        events = list(f)
    assert len(events) == EVENTS
    for event in events:
        beams = [p for p in event.particles if p.status == 4]
        assert [b.pid for b in beams] == [2212, 2212]
        assert all(p.production_vertex is not None for p in event.particles if p.status != 4)
        assert sum(p.status == 1 for p in event.particles) > 50
    # Each event carries Pythia's running estimate; the last one is the run's (pb -> mb).
    last = events[-1].cross_section
    assert last.xsec() * 1e-9 == pytest.approx(summary["sigma_mb"], rel=1e-6)
    assert last.xsec_err() * 1e-9 == pytest.approx(summary["sigma_err_mb"], rel=1e-6)


def test_same_seed_on_two_workers_gives_equal_digests_other_seed_does_not(runs: Runs) -> None:
    a = canonical_digest("hep.generate", runs.gen_a.outputs)
    a_again = canonical_digest("hep.generate", runs.gen_a_again.outputs)
    b = canonical_digest("hep.generate", runs.gen_b.outputs)
    assert a.method == "bytes" and a == a_again and a != b
    # The summaries still differ in their timing fields, which the digest leaves out.
    assert runs.gen_a.summary()["wall_time_s"] != runs.gen_a_again.summary()["wall_time_s"]


def test_analysis_digest_ignores_root_file_timestamps_but_not_physics(runs: Runs) -> None:
    first = (runs.ana_a.outputs / "jets.root").read_bytes()
    second = (runs.ana_a_again.outputs / "jets.root").read_bytes()
    assert first != second  # ROOT stamps files with times and UUIDs
    a = canonical_digest("hep.analyze", runs.ana_a.outputs)
    assert a.method == "root" and a.tolerance == "6 significant digits"
    assert a == canonical_digest("hep.analyze", runs.ana_a_again.outputs)
    assert a != canonical_digest("hep.analyze", runs.ana_b.outputs)


_ROOT_READER = """
import json, sys, ROOT
f = ROOT.TFile.Open(sys.argv[1])
h = f.Get("jet_pt")
run = f.Get("run")
run.GetEntry(0)
print(json.dumps({
    "bins": h.GetNbinsX(), "low": h.GetXaxis().GetXmin(), "entries": h.GetEntries(),
    "sum": h.Integral(0, h.GetNbinsX() + 1), "events": run.events, "sigma_mb": run.sigma_mb,
    "run_entries": run.GetEntries(),
}))
"""


@pytest.mark.parametrize(("name", "file"), [("ana_a", "jets.root"), ("merged", "merged.root")])
def test_root_files_open_in_root_and_uproot_and_hold_what_the_summary_says(
    runs: Runs, name: str, file: str
) -> None:
    job: Job = getattr(runs, name)
    summary = job.summary()
    path = job.outputs / file
    hist = summary["histograms"]["jet_pt"]
    total = sum(hist["values"]) + hist["underflow"] + hist["overflow"]

    out = subprocess.run(
        [sys.executable, "-c", _ROOT_READER, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["bins"] == len(hist["values"]) and seen["low"] == PT_CUT
    assert seen["sum"] == pytest.approx(total, rel=1e-9)
    assert seen["run_entries"] == 1 and seen["events"] == summary["events"]
    assert seen["sigma_mb"] == pytest.approx(summary["sigma_mb"], rel=1e-12)

    with uproot.open(path) as f:
        values = f["jet_pt"].values(flow=False)
        assert values.tolist() == pytest.approx(hist["values"], rel=1e-12)
        run = f["run"].arrays(library="np")
        assert run["sigma_mb"][0] == pytest.approx(summary["sigma_mb"], rel=1e-12)
    if name == "ana_a":
        assert seen["entries"] == summary["n_jets"] == total
    assert (job.outputs / "jet_pt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merge_weights_each_run_by_its_cross_section(runs: Runs) -> None:
    a, b, merged = runs.ana_a.summary(), runs.ana_b.summary(), runs.merged.summary()
    n = a["events"] + b["events"]
    assert merged["events"] == n and merged["seeds"] == [1, 2]
    assert merged["sigma_mb"] == pytest.approx(
        (a["events"] * a["sigma_mb"] + b["events"] * b["sigma_mb"]) / n, rel=1e-12
    )
    # Each merged bin is the cross section of the jets in it: sum_i sigma_i * count_i / N.
    for i, value in enumerate(merged["histograms"]["jet_pt"]["values"]):
        counts = [s["histograms"]["jet_pt"]["values"][i] for s in (a, b)]
        expected = (a["sigma_mb"] * counts[0] + b["sigma_mb"] * counts[1]) / n
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_merge_refuses_analyses_with_other_jet_definitions(runs: Runs, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(runs.ana_b.folder, other)
    summary = runs.ana_b.summary() | {"jet_radius": 0.6}
    (other / "outputs" / "summary.json").write_text(json.dumps(summary))
    job = start(
        tmp_path / "merge",
        spec_doc("hep.merge", {}, ("a", "b")),
        {"a": runs.ana_a.folder, "b": other},
    )
    _, err = job.proc.communicate(timeout=120)
    assert job.proc.returncode == 1
    assert "input 'b' has jet_radius 0.6 but 'a' has 0.4" in err


def test_card_file_settings_reach_pythia_and_bad_lines_are_named(tmp_path: Path) -> None:
    card = tmp_path / "card.cmnd"
    card.write_text("# no multiparton interactions\nPartonLevel:MPI = off\n")
    doc = generate(seed=5, events=3) | {"inputs": [{"name": "card.cmnd", "cid": CID}]}
    doc["params"]["card"] = "card.cmnd"
    job = start(tmp_path / "ok", doc, {"card.cmnd": card}).wait()
    assert "PartonLevel:MPI = off" in job.summary()["pythia_settings"]

    card.write_text("PartonLevel:MPI = off\nRandom:seed = 7\n")
    bad = start(tmp_path / "bad", doc, {"card.cmnd": card})
    _, err = bad.proc.communicate(timeout=120)
    assert bad.proc.returncode == 1
    assert "card line 2" in err and "set params.seed instead" in err
