"""Kind ``hep.generate``: Pythia8 events written as HepMC3 (ASCII), with a run summary.

Outputs:
- ``events.hepmc``: the full event record of every event. Vertices are built from Pythia's
  mother lists (GenEvent.from_hepevt writes files other readers cannot read back), each event
  carries Pythia's running cross-section estimate (GenCrossSection, in pb).
- ``summary.json``: settings, seed, events, cross section and its error in mb, versions.

Both are the same bytes for the same spec and seed (the summary apart from its timing fields),
so the canonical digest of this kind is a digest of bytes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.kinds.hep_common import MB_PER_PB, need, start_pythia, versions
from hepx.errors import ExecutionError, SpecError
from hepx.kinds.hep_generate import GenerateJob, GenerateParams
from hepx.kinds.hep_pythia import PROCESS_SETTINGS, parse_card
from hepx.spec import JobSpec

EVENTS_FILE = "events.hepmc"
MAX_BATCH = 500


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    if not isinstance(spec, GenerateJob):
        raise ExecutionError(f"the hep.generate runner cannot run a {spec.kind!r} job")
    params = spec.params
    started = time.monotonic()
    card: list[str] = []
    if params.card is not None:
        try:
            card = parse_card((inputs_dir / params.card).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ExecutionError(f"cannot read the card {params.card!r}: {exc}") from exc
        except SpecError as exc:
            raise ExecutionError(f"card {params.card!r}: {exc}") from exc
    settings = generate_settings(params, card)
    pythia = start_pythia(
        settings,
        spec.kind,
        f"{params.process or 'the card/settings process'} at {params.energy_gev:g} GeV with "
        f"pTHatMin {params.pt_hat_min:g} GeV and settings {card + params.settings}",
    )
    pyhepmc = need("pyhepmc", spec.kind)
    np = need("numpy", spec.kind)
    ak = need("awkward", spec.kind)
    progress(f"Pythia initialised in {time.monotonic() - started:.1f} s; generating events")

    run_info = pyhepmc.GenRunInfo()
    pythia_version = metadata.version("pythia8mc")
    run_info.tools = [("Pythia8", pythia_version, "pythia8mc via hepx hep.generate")]
    batch_size = min(MAX_BATCH, max(1, math.ceil(params.events / 10)))
    done = 0
    with pyhepmc.open(outputs_dir / EVENTS_FILE, "w") as out:
        while done < params.events:
            batch = pythia.nextBatch(min(batch_size, params.events - done), "skip")
            if len(batch) == 0:
                raise ExecutionError(f"Pythia produced no events after {done}; see its log")
            info = pythia.infoPython()
            sigma_pb = float(info.sigmaGen()) / MB_PER_PB
            sigma_err_pb = float(info.sigmaErr()) / MB_PER_PB
            prt = batch.prt
            counts = ak.num(prt.id).to_numpy()
            columns = _flat_columns(ak, np, prt)
            offsets = np.concatenate([[0], np.cumsum(counts)])
            for i in range(len(batch)):
                event = to_gen_event(
                    pyhepmc, {k: v[offsets[i] : offsets[i + 1]] for k, v in columns.items()}
                )
                event.event_number = done + i
                event.run_info = run_info
                xsec = pyhepmc.GenCrossSection()
                xsec.set_cross_section(sigma_pb, sigma_err_pb, done + i + 1, done + i + 1)
                event.cross_section = xsec
                out.write(event)
            before, done = done, done + len(batch)
            if done * 10 // params.events > before * 10 // params.events:
                rate = done / max(time.monotonic() - started, 1e-9)
                progress(f"{done}/{params.events} events, {rate:.0f}/s")

    info = pythia.infoPython()
    wall = time.monotonic() - started
    summary = {
        "kind": spec.kind,
        "process": params.process.value if params.process else None,
        "pythia_settings": settings,
        "energy_gev": params.energy_gev,
        "pt_hat_min": params.pt_hat_min,
        "seed": params.seed,
        "events": done,
        "sigma_mb": float(info.sigmaGen()),
        "sigma_err_mb": float(info.sigmaErr()),
        "events_file": EVENTS_FILE,
        "versions": versions("pythia8mc", "pyhepmc", "numpy"),
        "wall_time_s": round(wall, 3),
        "events_per_s": round(done / wall, 1),
    }
    (outputs_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress(f"done: {done} events, sigma {summary['sigma_mb']:.4g} mb, {wall:.1f} s")


def generate_settings(params: GenerateParams, card: list[str]) -> list[str]:
    """Every Pythia setting the run reads, in order: process, beams and seed, card, params."""
    process = PROCESS_SETTINGS[params.process] if params.process else ()
    return [
        *process,
        f"Beams:eCM = {params.energy_gev:g}",
        f"PhaseSpace:pTHatMin = {params.pt_hat_min:g}",
        "Random:setSeed = on",
        f"Random:seed = {params.seed}",
        "Next:numberCount = 0",
        "Print:quiet = on",
        *card,
        *params.settings,
    ]


def _flat_columns(ak: Any, np: Any, prt: Any) -> dict[str, Any]:
    p = prt.p
    fields = {
        "id": prt.id,
        "status": prt.status,
        "mother1": prt.mother1,
        "mother2": prt.mother2,
        "px": p.px,
        "py": p.py,
        "pz": p.pz,
        "e": p.e,
        "m": prt.m,
    }
    return {name: np.asarray(ak.flatten(values)).tolist() for name, values in fields.items()}


def _mothers(m1: int, m2: int) -> list[int]:
    """Pythia's mother list of one entry (see Pythia's Particle::motherList)."""
    if m1 <= 0:
        return []
    if m2 <= 0 or m2 == m1:
        return [m1]
    if m2 > m1:
        return list(range(m1, m2 + 1))
    return [m1, m2]


def _hepmc_status(status: int) -> int:
    # HepMC3: 1 final state, 2 decayed, 4 beam; Pythia's hard-process codes 21-29 kept as
    # generator-specific documentation entries.
    if status > 0:
        return 1
    if status == -12:
        return 4
    if -29 <= status <= -21:
        return -status
    return 2


def to_gen_event(pyhepmc: Any, col: dict[str, list[Any]]) -> Any:
    """One Pythia event (entry 0, the system, skipped) as a HepMC3 GenEvent with vertices.

    A particle's production vertex is its first mother's end vertex; mothers without one yet
    become its incoming particles. Hadrons from one string share a mother range and so one
    vertex; beams (no mothers) are the roots.
    """
    event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    n = len(col["id"])
    mothers = [
        [m for m in _mothers(col["mother1"][i], col["mother2"][i]) if 0 < m < n] for i in range(n)
    ]
    particles: list[Any] = [None] * n
    order = _parents_first(mothers)
    # The ASCII writer lists particles by id and a reader needs a particle's parents before it;
    # Pythia's record is not in that order (initial-state showers add mothers after their
    # daughters), so particles join the event in an order where every mother comes first.
    for i in order:
        particle = pyhepmc.GenParticle(
            (col["px"][i], col["py"][i], col["pz"][i], col["e"][i]),
            col["id"][i],
            _hepmc_status(col["status"][i]),
        )
        particle.generated_mass = col["m"][i]
        event.add_particle(particle)
        particles[i] = particle
    end_vertex: dict[int, Any] = {}
    for i in order:
        if not mothers[i]:
            continue
        vertex = end_vertex.get(mothers[i][0])
        if vertex is None:
            vertex = pyhepmc.GenVertex()
            for m in mothers[i]:
                if m not in end_vertex:
                    vertex.add_particle_in(particles[m])
                    end_vertex[m] = vertex
            event.add_vertex(vertex)
        vertex.add_particle_out(particles[i])
    beams = [particles[i] for i in (1, 2) if i < n]
    if len(beams) == 2:
        event.set_beam_particles(*beams)
    return event


def _parents_first(mothers: list[list[int]]) -> list[int]:
    """Indices 1..n-1 ordered so that each comes after all of its mothers (depth first)."""
    order: list[int] = []
    state = [0] * len(mothers)  # 0 new, 1 on the stack, 2 placed
    for root in range(1, len(mothers)):
        stack = [root]
        while stack:
            i = stack[-1]
            if state[i] == 2:
                stack.pop()
                continue
            state[i] = 1
            pending = [m for m in mothers[i] if state[m] == 0]
            if pending:
                stack.extend(pending)
                continue
            # A mother still on the stack means a cycle in the record: break it here.
            state[i] = 2
            order.append(i)
            stack.pop()
    return order
