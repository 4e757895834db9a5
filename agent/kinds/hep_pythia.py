"""Kind ``hep.pythia``: Pythia8 events -> anti-kt jets (FastJet) -> ROOT file and summary.

Outputs in the outputs folder:
- ``jets.root``: histogram ``jet_pt`` (TH1D of all selected jets' pT, with under/overflow) and
  tree ``events`` (njets, leading_jet_pt, leading_jet_eta, jagged jet_pt and jet_eta; the
  leading-jet branches are 0 in events without jets).
- ``summary.json``: the run's parameters, cross section, jet counts, histogram contents and the
  software versions. Apart from the timing fields it is the same for the same spec and seed.

Events are generated in batches (``Pythia.nextBatch`` returns Awkward arrays) and clustered per
batch with FastJet's Awkward interface, so there is no per-particle Python loop.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.kinds.hep_common import cluster_jets, find_pythia_data, start_pythia
from hepx.errors import ExecutionError
from hepx.kinds.hep_pythia import PROCESS_SETTINGS, PythiaJob, PythiaParams
from hepx.spec import JobSpec

HIST_BINS = 50
# Events per nextBatch call: large enough to amortise the call, small enough that a batch's
# particle arrays (~600 particles per LHC event) stay well below a gigabyte.
MAX_BATCH = 1000


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    if not isinstance(spec, PythiaJob):
        raise ExecutionError(f"the hep.pythia runner cannot run a {spec.kind!r} job")
    params = spec.params
    started = time.monotonic()
    find_pythia_data()
    try:
        import awkward as ak
        import fastjet
        import numpy as np
        import uproot
    except ImportError as exc:
        raise ExecutionError(
            f"hep.pythia needs the physics packages ({exc.name} is missing): "
            "pip install 'hepx[hep]'"
        ) from exc

    settings = pythia_settings(params)
    pythia = start_pythia(
        settings,
        spec.kind,
        f"{params.process} at {params.energy_gev:g} GeV with pTHatMin {params.pt_hat_min:g} GeV "
        f"and settings {params.settings}",
    )
    progress(f"Pythia initialised in {time.monotonic() - started:.1f} s; generating events")

    batch_size = min(MAX_BATCH, max(1, math.ceil(params.events / 10)))
    pt_batches: list[Any] = []
    eta_batches: list[Any] = []
    done = 0
    generation_started = time.monotonic()
    while done < params.events:
        events = pythia.nextBatch(min(batch_size, params.events - done), "skip")
        if len(events) == 0:
            raise ExecutionError(f"Pythia produced no events after {done}; see its log")
        prt = events.prt
        pid = abs(prt.id)
        # Final-state particles a detector could see: neutrinos escape.
        visible = (prt.status > 0) & (pid != 12) & (pid != 14) & (pid != 16)
        p4 = prt.p[visible]
        particles = ak.zip({"px": p4.px, "py": p4.py, "pz": p4.pz, "E": p4.e}, with_name=None)
        pt, eta = cluster_jets(
            particles, "anti-kt", params.jet_radius, params.jet_pt_min, params.jet_eta_max
        )
        pt_batches.append(pt)
        eta_batches.append(eta)
        before, done = done, done + len(events)
        if done * 10 // params.events > before * 10 // params.events or done == params.events:
            rate = done / max(time.monotonic() - generation_started, 1e-9)
            progress(
                f"{done}/{params.events} events ({100 * done // params.events}%), {rate:.0f}/s"
            )

    jet_pt = ak.concatenate(pt_batches)
    jet_eta = ak.concatenate(eta_batches)
    njets = ak.num(jet_pt).to_numpy()
    leading_pt = ak.fill_none(ak.firsts(jet_pt), 0.0).to_numpy()
    leading_eta = ak.fill_none(ak.firsts(jet_eta), 0.0).to_numpy()
    all_pt = ak.flatten(jet_pt).to_numpy()

    edges = np.linspace(params.jet_pt_min, hist_max(params), HIST_BINS + 1)
    # Index 0 is the underflow, HIST_BINS + 1 the overflow: ROOT's layout. Bins are [low, high).
    flow_counts = np.bincount(np.searchsorted(edges, all_pt, side="right"), minlength=HIST_BINS + 2)
    info = pythia.infoPython()
    sigma_mb, sigma_err_mb = float(info.sigmaGen()), float(info.sigmaErr())

    with uproot.recreate(outputs_dir / "jets.root") as root_file:
        root_file["jet_pt"] = _th1d(uproot, np, all_pt, edges, flow_counts)
        root_file.mktree(
            "events",
            {
                "leading_jet_pt": leading_pt,
                "leading_jet_eta": leading_eta,
                "jet": ak.zip({"pt": jet_pt, "eta": jet_eta}),
            },
            title=f"{params.process} jets, anti-kt R={params.jet_radius:g}",
            counter_name=lambda _: "njets",
        )

    wall = time.monotonic() - started
    n_events = len(njets)
    summary = {
        "kind": spec.kind,
        "process": params.process.value,
        "pythia_settings": settings,
        "energy_gev": params.energy_gev,
        "seed": params.seed,
        "events": n_events,
        "sigma_mb": sigma_mb,
        "sigma_err_mb": sigma_err_mb,
        "jet_algorithm": "anti-kt",
        "jet_radius": params.jet_radius,
        "jet_pt_min": params.jet_pt_min,
        "jet_eta_max": params.jet_eta_max,
        "n_jets": int(njets.sum()),
        "mean_jets_per_event": float(njets.mean()),
        "jet_pt_hist": {
            "edges": edges.tolist(),
            "counts": flow_counts[1:-1].tolist(),
            "underflow": int(flow_counts[0]),
            "overflow": int(flow_counts[-1]),
        },
        "versions": {
            "pythia8mc": metadata.version("pythia8mc"),
            "fastjet": fastjet.__version__,
            "uproot": uproot.__version__,
            "awkward": ak.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "wall_time_s": round(wall, 3),
        "events_per_s": round(n_events / wall, 1),
    }
    (outputs_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress(
        f"done: {n_events} events, {summary['n_jets']} jets, sigma {sigma_mb:.4g} mb, {wall:.1f} s"
    )


def pythia_settings(params: PythiaParams) -> list[str]:
    """Every Pythia setting the run uses, in the order it reads them (user settings last)."""
    return [
        *PROCESS_SETTINGS[params.process],
        f"Beams:eCM = {params.energy_gev:g}",
        f"PhaseSpace:pTHatMin = {params.pt_hat_min:g}",
        "Random:setSeed = on",
        f"Random:seed = {params.seed}",
        "Next:numberCount = 0",
        "Print:quiet = on",
        *params.settings,
    ]


def hist_max(params: PythiaParams) -> float:
    """Upper edge of the jet pT histogram: fixed by the params so runs can be compared bin by bin.

    Jet spectra fall steeply above the hard-process cut, so 10x the larger of the cuts (at least
    100 GeV above the jet cut) holds nearly all jets; the rest land in the overflow bin.
    """
    return max(params.jet_pt_min + 100.0, 10.0 * max(params.jet_pt_min, params.pt_hat_min))


def _th1d(uproot: Any, np: Any, values: Any, edges: Any, flow_counts: Any) -> Any:
    """A TH1D with unit weights, including under- and overflow, that ROOT reads natively."""
    inside = values[(values >= edges[0]) & (values < edges[-1])]
    data = flow_counts.astype(np.float64)
    axis = uproot.writing.identify.to_TAxis(
        fName="xaxis",
        fTitle="jet p_{T} [GeV]",
        fNbins=len(edges) - 1,
        fXmin=float(edges[0]),
        fXmax=float(edges[-1]),
    )
    return uproot.writing.identify.to_TH1x(
        fName="jet_pt",
        fTitle="Jet p_{T};p_{T} [GeV];jets",
        data=data,
        fEntries=float(len(values)),
        fTsumw=float(len(inside)),
        fTsumw2=float(len(inside)),
        fTsumwx=float(inside.sum()),
        fTsumwx2=float((inside**2).sum()),
        fSumw2=data.copy(),
        fXaxis=axis,
    )
