"""hep.generate inside the market vs Pythia8 run bare: events/s, same settings, same machine.

Three runs of --events events (HardQCD:all, 13 TeV, pTHatMin --pt-hat-min, seed 1), one after
the other so they do not share the cores:
  1. bare Pythia8: ``pythia.next()`` in a loop (no output at all);
  2. the job's own work without the market: the hep.generate runner called in this process
     (Pythia8 + HepMC3 file + summary), which is what any user would run by hand;
  3. in the market: a devnet (anvil, API, one worker), the job posted through the API and
     timed from the post to its ResultSubmitted event (fetching the spec, a subprocess,
     storing the 100s of MB of HepMC3 output by CID, the submit tx).
The overhead of the market is 1 - rate(3) / rate(2); rate(1) shows what HepMC3 output costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agent.kinds import hep_generate
from agent.kinds.hep_common import start_pythia
from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import start_devnet
from hepx.kinds.hep_generate import GenerateJob
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

REPO = Path(__file__).resolve().parents[1]


def job_spec(events: int, pt_hat_min: float) -> GenerateJob:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "hep.generate",
            "metadata": {"name": "bench-generate"},
            "params": {"seed": 1, "events": events, "pt_hat_min": pt_hat_min},
            "resources": {"max_runtime": 3600},
            "payment": {"max_price": "0.01 ether", "claim_window": 600, "run_window": 3600},
        }
    )
    assert isinstance(spec, GenerateJob)
    return spec


def bare(spec: GenerateJob) -> float:
    settings = hep_generate.generate_settings(spec.params, [])
    started = time.perf_counter()
    pythia = start_pythia(settings, "bench")
    for _ in range(spec.params.events):
        if not pythia.next():
            raise SystemExit("Pythia failed to generate an event")
    return time.perf_counter() - started


def runner_alone(spec: GenerateJob, work: Path) -> float:
    inputs, outputs = work / "inputs", work / "outputs"
    inputs.mkdir(parents=True)
    outputs.mkdir()
    started = time.perf_counter()
    hep_generate.run(spec, inputs, outputs, lambda _: None)
    return time.perf_counter() - started


def in_market(spec: GenerateJob, home: Path) -> float:
    net = start_devnet(
        home,
        workers=1,
        anvil_port=free_port(),
        api_port=free_port(),
        challenge_window=1,
        policy=REPO / "examples" / "hep-policy.yaml",
    )
    try:
        client = MarketClient.from_deployment(net.deployment, private_key=net.requester.private_key)
        store = LocalStore(home / "store")
        spec_cid = store.add_bytes(canonical_json(spec))
        from_block = client.block_number() + 1
        started = time.perf_counter()
        pay = spec.payment
        job_id, _ = client.post_job(spec_cid, pay.max_price_wei, pay.claim_window, pay.run_window)
        while True:
            for event in client.events(from_block, client.block_number(), job_id):
                if event.name == "ResultSubmitted":
                    return time.perf_counter() - started
            time.sleep(0.1)
    finally:
        net.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--pt-hat-min", type=float, default=50)
    args = parser.parse_args()
    spec = job_spec(args.events, args.pt_hat_min)
    with tempfile.TemporaryDirectory(prefix="hepx-bench-gen-") as tmp:
        rows = [
            ("Pythia8 bare (no output)", bare(spec)),
            ("hep.generate runner alone", runner_alone(spec, Path(tmp) / "alone")),
            ("hep.generate in the market", in_market(spec, Path(tmp) / "market")),
        ]
    n = args.events
    print(f"{n} events, HardQCD:all 13 TeV, pTHatMin {args.pt_hat_min:g} GeV, seed 1")
    for name, seconds in rows:
        print(f"  {name:<28} {seconds:8.1f} s  {n / seconds:8.1f} events/s")
    overhead = 1 - rows[1][1] / rows[2][1]
    print(f"  market overhead vs the runner alone: {100 * overhead:.1f}% (goal <= 5%)")
    print(f"  HepMC3 output vs bare Pythia8: {rows[1][1] / rows[0][1]:.2f}x the time")


if __name__ == "__main__":
    main()
