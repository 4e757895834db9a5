"""Pieces the physics kinds share: Pythia start-up, FastJet clustering, cross-section sums.

Heavy packages (pythia8mc, fastjet, awkward, ROOT) are imported inside the functions that need
them, so a worker without the ``hep`` extra can still import the job registry.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

from hepx.errors import ExecutionError

# FastJet algorithm names in our specs -> attribute of the fastjet module.
_FASTJET_ALGORITHMS = {
    "anti-kt": "antikt_algorithm",
    "kt": "kt_algorithm",
    "cambridge-aachen": "cambridge_algorithm",
}
# Neutrinos leave no trace in a detector, so they never enter a jet.
NEUTRINOS = (12, 14, 16)
MB_PER_PB = 1e-9


def need(module: str, kind: str) -> Any:
    """Import a physics package or fail the job saying how to get it."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise ExecutionError(
            f"{kind} needs the physics packages ({exc.name} is missing): pip install 'hepx[hep]'"
        ) from exc


def find_pythia_data() -> None:
    # The wheel's data sits under the interpreter prefix; Pythia only finds it there by itself
    # when run from that environment, so point PYTHIA8DATA at it explicitly.
    if "PYTHIA8DATA" not in os.environ:
        xmldoc = Path(sys.prefix) / "share" / "Pythia8" / "xmldoc"
        if xmldoc.is_dir():
            os.environ["PYTHIA8DATA"] = str(xmldoc)


def start_pythia(settings: list[str], kind: str, what: str = "") -> Any:
    """An initialised Pythia with these settings, or ExecutionError saying which one failed;
    ``what`` names the run for the message when initialisation fails."""
    find_pythia_data()
    pythia8mc = need("pythia8mc", kind)
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise ExecutionError(f"Pythia rejected the setting {line!r} (its reason is in the log)")
    if not pythia.init():
        raise ExecutionError(
            f"Pythia could not initialise {what or f'with settings {settings}'}; check that the "
            "energy and cuts allow the process (Pythia's reason is in the log)"
        )
    return pythia


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` plus Python's: recorded in every summary."""
    found = {name: metadata.version(name) for name in packages}
    found["python"] = sys.version.split()[0]
    return found


def cluster_jets(
    particles: Any, algorithm: str, radius: float, pt_min: float, eta_max: float
) -> tuple[Any, Any]:
    """Jets of a batch of events (awkward records px, py, pz, E): jagged pT and eta arrays,
    each event's jets sorted by falling pT, cut to pT > pt_min and |eta| < eta_max."""
    ak = need("awkward", "jet clustering")
    fastjet = need("fastjet", "jet clustering")
    np = need("numpy", "jet clustering")
    jet_def = fastjet.JetDefinition(getattr(fastjet, _FASTJET_ALGORITHMS[algorithm]), radius)
    jets = fastjet.ClusterSequence(particles, jet_def).inclusive_jets(pt_min)
    pt = np.hypot(jets.px, jets.py)
    eta = np.arcsinh(jets.pz / pt)
    keep = (pt > pt_min) & (abs(eta) < eta_max)
    pt, eta = pt[keep], eta[keep]
    order = ak.argsort(pt, axis=1, ascending=False)
    return ak.values_astype(pt[order], np.float64), ak.values_astype(eta[order], np.float64)


@dataclass(frozen=True)
class Run:
    """What a merge needs of one run: its events and Pythia's cross-section estimate."""

    events: int
    sigma_mb: float
    sigma_err_mb: float


def combine(runs: list[Run], mode: str) -> Run:
    """Cross section of several runs.

    ``average``: runs of the same settings with other seeds. Pythia's estimate is a mean over
    events, so the combined one weights each run by its events (as one long run would), and
    the errors add in quadrature with the same weights.
    ``sum``: runs over disjoint phase-space slices, whose cross sections add.
    """
    if not runs:
        raise ExecutionError("nothing to combine: no runs")
    if mode == "sum":
        return Run(
            sum(r.events for r in runs),
            sum(r.sigma_mb for r in runs),
            math.sqrt(sum(r.sigma_err_mb**2 for r in runs)),
        )
    total = sum(r.events for r in runs)
    if total == 0:
        raise ExecutionError("nothing to combine: the runs hold no events")
    return Run(
        total,
        sum(r.events * r.sigma_mb for r in runs) / total,
        math.sqrt(sum((r.events * r.sigma_err_mb) ** 2 for r in runs)) / total,
    )


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExecutionError(f"cannot read {what} {path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ExecutionError(f"{what} {path.name} is not a JSON object")
    return data


def root_module() -> Any:
    """PyROOT in batch mode (no windows), with its alpha-release banner silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = need("ROOT", "writing ROOT files")
    root.gROOT.SetBatch(True)
    root.gErrorIgnoreLevel = root.kWarning  # no "Info in <TCanvas::Print>" lines in the log
    return root


@dataclass(frozen=True)
class Hist:
    """A 1-D histogram in ROOT's layout: values and variances include under- and overflow
    (index 0 and -1), ``edges`` has one more entry than there are inner bins."""

    title: str
    edges: list[float]
    values: list[float]
    variances: list[float]
    entries: float

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "edges": self.edges,
            "values": self.values[1:-1],
            "variances": self.variances[1:-1],
            "underflow": self.values[0],
            "overflow": self.values[-1],
            "entries": self.entries,
        }


def count_hist(title: str, edges: Any, data: Any) -> Hist:
    """Unit-weight counts of ``data`` in bins [low, high), with under- and overflow."""
    np = need("numpy", "histograms")
    counts = np.bincount(np.searchsorted(edges, data, side="right"), minlength=len(edges) + 1)
    values = [float(c) for c in counts]
    return Hist(title, [float(e) for e in edges], values, list(values), float(len(data)))


def write_root(path: Path, hists: dict[str, Hist], run: dict[str, float | int]) -> None:
    """A ROOT file (written by ROOT itself) with one TH1D per histogram and a one-entry TTree
    ``run`` holding the summary numbers, so a ROOT user sees what summary.json says."""
    root = root_module()
    np = need("numpy", "writing ROOT files")
    out = root.TFile.Open(str(path), "RECREATE")
    if not out or out.IsZombie():
        raise ExecutionError(f"ROOT could not create {path.name}")
    try:
        for name, hist in hists.items():
            edges = np.asarray(hist.edges, dtype=np.float64)
            h = root.TH1D(name, hist.title, len(edges) - 1, edges)
            h.Sumw2()
            for i, (value, variance) in enumerate(zip(hist.values, hist.variances, strict=True)):
                h.SetBinContent(i, value)
                h.SetBinError(i, math.sqrt(variance))
            h.ResetStats()  # statistics from the bin contents just set
            h.SetEntries(hist.entries)
            h.Write()
        tree = root.TTree("run", "run summary (one entry)")
        buffers = {}
        for name, value in run.items():
            is_int = isinstance(value, int)
            buffers[name] = np.array([value], dtype=np.int64 if is_int else np.float64)
            tree.Branch(name, buffers[name], f"{name}/{'L' if is_int else 'D'}")
        tree.Fill()
        tree.Write()
    finally:
        out.Close()


def save_plot(path: Path, hist: Hist, title: str, log_y: bool = True) -> None:
    """A PNG of one histogram, drawn by ROOT in batch mode."""
    root = root_module()
    np = need("numpy", "plots")
    edges = np.asarray(hist.edges, dtype=np.float64)
    h = root.TH1D("plot", title, len(edges) - 1, edges)
    h.SetDirectory(0)
    for i, (value, variance) in enumerate(zip(hist.values, hist.variances, strict=True)):
        h.SetBinContent(i, value)
        h.SetBinError(i, math.sqrt(variance))
    root.gStyle.SetOptStat(0)
    canvas = root.TCanvas("canvas", title, 800, 600)
    if log_y and max(hist.values[1:-1], default=0) > 0:
        canvas.SetLogy()
    h.SetLineWidth(2)
    h.Draw("HIST E")
    canvas.SaveAs(str(path))
    canvas.Close()
