"""Kind ``hep.merge``: combine hep.analyze results into cross-section weighted histograms.

Each input is a hep.analyze result (a folder with jets.root and summary.json, possibly under
``outputs/``). Run i with N_i events and cross section s_i contributes its counts with weight
``s_i / N_total`` in ``average`` mode (same settings, other seeds: one long run) and
``s_i / N_i`` in ``sum`` mode (disjoint slices). So the merged histograms hold the cross section
per bin in mb, and summing a histogram's bins gives the cross section of jets it counts.

Outputs: ``merged.root`` (TH1D per histogram, TTree ``run``), ``jet_pt.png`` and summary.json
with the combined cross section and each input's share.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.kinds.hep_common import (
    Hist,
    Run,
    combine,
    need,
    read_json,
    root_module,
    save_plot,
    versions,
    write_root,
)
from hepx.errors import ExecutionError
from hepx.kinds.hep_merge import MergeJob
from hepx.spec import JobSpec


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    if not isinstance(spec, MergeJob):
        raise ExecutionError(f"the hep.merge runner cannot run a {spec.kind!r} job")
    started = time.monotonic()
    mode = spec.params.mode.value
    summaries: list[dict[str, Any]] = []
    hists: list[dict[str, Hist]] = []
    for ref in spec.inputs:
        summary, folder = _analysis(inputs_dir / ref.name, ref.name)
        summaries.append(summary)
        hists.append(_read_hists(folder / str(summary.get("root_file", "jets.root")), ref.name))
        progress(f"read {ref.name}: {summary['events']} events, sigma {summary['sigma_mb']:.4g} mb")
    _same_analysis(summaries, [ref.name for ref in spec.inputs])

    runs = [
        Run(int(s["events"]), float(s["sigma_mb"]), float(s["sigma_err_mb"])) for s in summaries
    ]
    total = combine(runs, mode)
    weights = [r.sigma_mb / (total.events if mode == "average" else r.events) for r in runs]
    merged: dict[str, Hist] = {}
    for name in hists[0]:
        first = hists[0][name]
        values = [0.0] * len(first.values)
        variances = [0.0] * len(first.values)
        for w, run_hists in zip(weights, hists, strict=True):
            hist = run_hists[name]
            for i, (value, variance) in enumerate(zip(hist.values, hist.variances, strict=True)):
                values[i] += w * value
                variances[i] += w * w * variance
        title = first.title.rsplit(";", 1)[0] + ";#sigma per bin [mb]"
        merged[name] = Hist(
            title, first.edges, values, variances, sum(h[name].entries for h in hists)
        )

    run_numbers: dict[str, float | int] = {
        "events": total.events,
        "sigma_mb": total.sigma_mb,
        "sigma_err_mb": total.sigma_err_mb,
        "inputs": len(runs),
    }
    write_root(outputs_dir / "merged.root", merged, run_numbers)
    save_plot(
        outputs_dir / "jet_pt.png",
        merged["jet_pt"],
        f"merged jet p_{{T}}, {len(runs)} runs, {total.events} events"
        ";p_{T} [GeV];#sigma per bin [mb]",
    )
    analysis = summaries[0]
    wall = time.monotonic() - started
    summary_out = {
        "kind": spec.kind,
        "mode": mode,
        **run_numbers,
        "seeds": [seed for s in summaries for seed in s.get("seeds", [])],
        "runs": [
            {
                "name": ref.name,
                "cid": ref.cid,
                "events": r.events,
                "sigma_mb": r.sigma_mb,
                "sigma_err_mb": r.sigma_err_mb,
                "weight_mb": w,
            }
            for ref, r, w in zip(spec.inputs, runs, weights, strict=True)
        ],
        "jet_algorithm": analysis.get("jet_algorithm"),
        "jet_radius": analysis.get("jet_radius"),
        "jet_pt_min": analysis.get("jet_pt_min"),
        "jet_eta_max": analysis.get("jet_eta_max"),
        "root_file": "merged.root",
        "plot": "jet_pt.png",
        "histograms": {name: hist.to_json() for name, hist in merged.items()},
        "versions": {**versions("uproot", "numpy"), "root": str(root_module().gROOT.GetVersion())},
        "wall_time_s": round(wall, 3),
    }
    (outputs_dir / "summary.json").write_text(json.dumps(summary_out, indent=2) + "\n")
    progress(
        f"done: {len(runs)} runs, {total.events} events, "
        f"sigma {total.sigma_mb:.4g} +- {total.sigma_err_mb:.2g} mb"
    )


def _analysis(path: Path, name: str) -> tuple[dict[str, Any], Path]:
    """The summary of one hep.analyze result and the folder holding its files."""
    for folder in (path / "outputs", path):
        candidate = folder / "summary.json"
        if candidate.is_file():
            summary = read_json(candidate, f"summary of input {name!r}")
            if summary.get("kind") != "hep.analyze":
                raise ExecutionError(
                    f"input {name!r} is a {summary.get('kind')!r} result; hep.merge takes "
                    "hep.analyze results"
                )
            return summary, folder
    raise ExecutionError(f"input {name!r} is not a hep.analyze result (no summary.json)")


def _read_hists(path: Path, name: str) -> dict[str, Hist]:
    uproot = need("uproot", "hep.merge")
    try:
        with uproot.open(path) as root_file:
            found: dict[str, Hist] = {}
            for key, cls in sorted(root_file.classnames(cycle=False).items()):
                if not cls.startswith("TH1"):
                    continue
                h = root_file[key]
                found[key] = Hist(
                    str(h.member("fTitle")) + ";" + ";".join(_axis_titles(h)),
                    [float(e) for e in h.axis().edges(flow=False)],
                    [float(v) for v in h.values(flow=True)],
                    [float(v) for v in h.variances(flow=True)],
                    float(h.member("fEntries")),
                )
    except (OSError, ValueError, KeyError) as exc:
        raise ExecutionError(f"cannot read the ROOT file of input {name!r}: {exc}") from exc
    if "jet_pt" not in found:
        raise ExecutionError(f"the ROOT file of input {name!r} has no jet_pt histogram")
    return found


def _axis_titles(h: Any) -> list[str]:
    return [str(h.member("fXaxis").member("fTitle")), str(h.member("fYaxis").member("fTitle"))]


def _same_analysis(summaries: list[dict[str, Any]], names: list[str]) -> None:
    """Histograms add bin by bin only if every input used the same jets and binning."""
    keys = ("jet_algorithm", "jet_radius", "jet_pt_min", "jet_eta_max")
    first = summaries[0]
    for name, summary in zip(names[1:], summaries[1:], strict=True):
        for key in keys:
            if summary.get(key) != first.get(key):
                raise ExecutionError(
                    f"input {name!r} has {key} {summary.get(key)!r} but {names[0]!r} has "
                    f"{first.get(key)!r}: merge only analyses with the same jet definition"
                )
        edges = summary["histograms"]["jet_pt"]["edges"]
        if edges != first["histograms"]["jet_pt"]["edges"]:
            raise ExecutionError(
                f"input {name!r} bins jet pT differently from {names[0]!r}: use the same "
                "hist_bins and hist_max in every analysis"
            )
