"""Kind ``hep.analyze``: HepMC3 events -> jets (FastJet) -> histograms in a ROOT file + PNG.

Each input is a HepMC3 file, or a folder holding them (a ``hep.generate`` result, whose
summary.json gives the cross section; a bare file gives it by the last event's
GenCrossSection). Outputs:
- ``jets.root`` (written by ROOT): TH1D ``jet_pt``, ``leading_jet_pt``, ``jet_eta``, ``njets``
  as unweighted counts, and a one-entry TTree ``run`` (events, sigma_mb, sigma_err_mb, n_jets);
- ``jet_pt.png``: the jet pT spectrum;
- ``summary.json``: inputs, cross section, jet definition, histogram contents, versions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.kinds.hep_common import (
    MB_PER_PB,
    NEUTRINOS,
    Run,
    cluster_jets,
    combine,
    count_hist,
    need,
    read_json,
    root_module,
    save_plot,
    versions,
    write_root,
)
from hepx.errors import ExecutionError
from hepx.kinds.hep_analyze import AnalyzeJob, AnalyzeParams
from hepx.spec import JobSpec

EVENT_SUFFIXES = (".hepmc", ".hepmc3", ".hepmc.gz", ".hepmc.xz", ".hepmc.bz2", ".hepmc.zst")
BATCH = 200
ETA_BINS = 25
MAX_NJETS = 15


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    if not isinstance(spec, AnalyzeJob):
        raise ExecutionError(f"the hep.analyze runner cannot run a {spec.kind!r} job")
    params = spec.params
    started = time.monotonic()
    ak = need("awkward", spec.kind)
    np = need("numpy", spec.kind)
    pyhepmc = need("pyhepmc", spec.kind)

    pt_parts: list[Any] = []
    eta_parts: list[Any] = []
    runs: list[Run] = []
    described: list[dict[str, Any]] = []
    for ref in spec.inputs:
        files, summary = _event_files(inputs_dir / ref.name, ref.name)
        events = 0
        last_xsec: tuple[float, float] | None = None
        for path in files:
            for batch, xsec in _batches(pyhepmc, np, path):
                pt, eta = cluster_jets(
                    ak.zip(batch, with_name=None),
                    params.jet_algorithm.value,
                    params.jet_radius,
                    params.jet_pt_min,
                    params.jet_eta_max,
                )
                pt_parts.append(pt)
                eta_parts.append(eta)
                events += len(pt)
                last_xsec = xsec or last_xsec
            progress(f"{ref.name}/{path.name}: {events} events clustered")
        runs.append(_run_of(ref.name, events, summary, last_xsec))
        described.append(
            {
                "name": ref.name,
                "cid": ref.cid,
                "files": [str(p.relative_to(inputs_dir)) for p in files],
                "events": events,
                "seed": summary.get("seed") if summary else None,
                "sigma_mb": runs[-1].sigma_mb,
                "sigma_err_mb": runs[-1].sigma_err_mb,
            }
        )

    jet_pt = ak.concatenate(pt_parts)
    jet_eta = ak.concatenate(eta_parts)
    njets = ak.num(jet_pt).to_numpy()
    leading = ak.firsts(jet_pt)
    leading = ak.to_numpy(leading[~ak.is_none(leading)])
    pt_edges = np.linspace(params.jet_pt_min, axis_max(params), params.hist_bins + 1)
    hists = {
        "jet_pt": count_hist("Jet p_{T};p_{T} [GeV];jets", pt_edges, ak.flatten(jet_pt).to_numpy()),
        "leading_jet_pt": count_hist("Leading jet p_{T};p_{T} [GeV];events", pt_edges, leading),
        "jet_eta": count_hist(
            "Jet #eta;#eta;jets",
            np.linspace(-params.jet_eta_max, params.jet_eta_max, ETA_BINS + 1),
            ak.flatten(jet_eta).to_numpy(),
        ),
        "njets": count_hist(
            "Jets per event;jets;events", np.arange(MAX_NJETS + 2) - 0.5, njets.astype(float)
        ),
    }
    total = combine(runs, "average")
    n_jets = int(njets.sum())
    run_numbers: dict[str, float | int] = {
        "events": total.events,
        "sigma_mb": total.sigma_mb,
        "sigma_err_mb": total.sigma_err_mb,
        "n_jets": n_jets,
    }
    write_root(outputs_dir / "jets.root", hists, run_numbers)
    title = (
        f"{params.jet_algorithm.value} R={params.jet_radius:g} jets, {total.events} events"
        ";p_{T} [GeV];jets"
    )
    save_plot(outputs_dir / "jet_pt.png", hists["jet_pt"], title)
    wall = time.monotonic() - started
    summary_out = {
        "kind": spec.kind,
        "inputs": described,
        **run_numbers,
        "seeds": [d["seed"] for d in described],
        "jet_algorithm": params.jet_algorithm.value,
        "jet_radius": params.jet_radius,
        "jet_pt_min": params.jet_pt_min,
        "jet_eta_max": params.jet_eta_max,
        "mean_jets_per_event": float(njets.mean()) if len(njets) else 0.0,
        "root_file": "jets.root",
        "plot": "jet_pt.png",
        "histograms": {name: hist.to_json() for name, hist in hists.items()},
        "versions": _versions(),
        "wall_time_s": round(wall, 3),
        "events_per_s": round(total.events / wall, 1),
    }
    (outputs_dir / "summary.json").write_text(json.dumps(summary_out, indent=2) + "\n")
    progress(f"done: {total.events} events, {n_jets} jets, {wall:.1f} s")


def axis_max(params: AnalyzeParams) -> float:
    """Upper edge of the pT axes: fixed by the params so that runs compare bin by bin."""
    if params.hist_max is not None:
        return params.hist_max
    return max(params.jet_pt_min + 100.0, 10.0 * params.jet_pt_min)


def _event_files(path: Path, name: str) -> tuple[list[Path], dict[str, Any] | None]:
    """HepMC3 files of one input and, for a hep.generate result, its summary."""
    if path.is_file():
        return [path], None
    if not path.is_dir():
        raise ExecutionError(f"input {name!r} is missing from the inputs folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(EVENT_SUFFIXES))
    if not files:
        raise ExecutionError(
            f"input {name!r} is a folder without HepMC3 files (names ending in "
            f"{', '.join(EVENT_SUFFIXES)}); pass a hep.generate result or event files"
        )
    summary = None
    for candidate in (path / "outputs" / "summary.json", path / "summary.json"):
        if candidate.is_file():
            summary = read_json(candidate, f"summary of input {name!r}")
            if summary.get("kind") != "hep.generate":
                summary = None
            break
    return files, summary


def _batches(
    pyhepmc: Any, np: Any, path: Path
) -> Iterator[tuple[dict[str, Any], tuple[float, float] | None]]:
    """Visible final-state particles of up to BATCH events at a time, as jagged columns, with
    the latest cross-section estimate (pb) seen in the file."""
    ak = need("awkward", "hep.analyze")
    columns: dict[str, list[Any]] = {"px": [], "py": [], "pz": [], "E": []}
    xsec: tuple[float, float] | None = None

    def flush() -> dict[str, Any]:
        counts = [len(c) for c in columns["px"]]
        batch = {
            k: ak.unflatten(np.concatenate(v) if v else np.zeros(0), counts)
            for k, v in columns.items()
        }
        for v in columns.values():
            v.clear()
        return batch

    try:
        with pyhepmc.open(path) as events:
            for event in events:
                prt = event.numpy.particles
                keep = (prt.status == 1) & ~np.isin(np.abs(prt.pid), NEUTRINOS)
                for key, values in (("px", prt.px), ("py", prt.py), ("pz", prt.pz), ("E", prt.e)):
                    columns[key].append(np.asarray(values)[keep])
                cross_section = event.cross_section
                if cross_section is not None:
                    xsec = (float(cross_section.xsec()), float(cross_section.xsec_err()))
                if len(columns["px"]) == BATCH:
                    yield flush(), xsec
    except (OSError, RuntimeError) as exc:
        raise ExecutionError(f"cannot read HepMC3 file {path.name}: {exc}") from exc
    if columns["px"]:
        yield flush(), xsec


def _run_of(
    name: str, events: int, summary: dict[str, Any] | None, xsec: tuple[float, float] | None
) -> Run:
    if events == 0:
        raise ExecutionError(f"input {name!r} holds no events")
    if summary is not None:
        return Run(events, float(summary["sigma_mb"]), float(summary["sigma_err_mb"]))
    if xsec is None:
        raise ExecutionError(
            f"input {name!r} gives no cross section: its events carry no GenCrossSection and "
            "it is not a hep.generate result with a summary.json"
        )
    return Run(events, xsec[0] * MB_PER_PB, xsec[1] * MB_PER_PB)


def _versions() -> dict[str, str]:
    found = versions("fastjet", "pyhepmc", "awkward", "numpy")
    found["root"] = str(root_module().gROOT.GetVersion())
    return found
