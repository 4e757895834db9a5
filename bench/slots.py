"""Job slots: N jobs of S seconds each on one agent, against one such job alone.

Starts a devnet with one worker agent whose policy has ``slots: --slots``, then times
post -> result on chain for one `echo` job that sleeps ``--seconds``, and for ``--jobs`` such
jobs posted at once. With one slot the jobs queue (N times one job); with N slots they overlap.

    python bench/slots.py --slots 1     # one job at a time (the agent before slots)
    python bench/slots.py --slots 4     # the issue's goal: 4 jobs in at most 1.3 x one job
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from latency import wait_results, write_policy

from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import start_devnet
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore


def sleeping_echo(i: int, seconds: float) -> bytes:
    return canonical_json(
        parse_spec(
            {
                "apiVersion": "hepx/v1",
                "kind": "echo",
                "metadata": {"name": f"slots-{i}"},
                "params": {"message": f"job {i}", "sleep_seconds": seconds},
                "resources": {"max_runtime": 120},
                "payment": {"max_price": "1000 gwei", "claim_window": 600, "run_window": 600},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hepx-bench-slots-"))
    policy = write_policy(home / "policy.yaml", "echo", args.slots)
    devnet = start_devnet(
        home, workers=1, anvil_port=free_port(), api_port=free_port(), policy=policy
    )
    try:
        store = LocalStore(home / "store")
        client = MarketClient.from_deployment(
            devnet.deployment, private_key=devnet.requester.private_key
        )
        specs = [store.add_bytes(sleeping_echo(i, args.seconds)) for i in range(args.jobs + 1)]

        start_block = client.block_number() + 1
        t0 = time.perf_counter()
        job_id, _ = client.post_job(specs[0], 10**12, 600, 600)
        one = wait_results(client, {job_id}, start_block, timeout=300)[job_id] - t0

        start_block = client.block_number() + 1
        t0 = time.perf_counter()
        burst = {client.post_job(spec, 10**12, 600, 600)[0] for spec in specs[1:]}
        done = wait_results(client, burst, start_block, timeout=600)
        many = max(done.values()) - t0
    finally:
        devnet.stop()

    print(f"\nhepx job slots: one agent, slots {args.slots}, echo jobs sleeping {args.seconds} s\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| one job: post -> result on chain | {one:.2f} s |")
    print(f"| {args.jobs} jobs at once: all results on chain | {many:.2f} s |")
    print(f"| ratio to one job | {many / one:.2f} x |")


if __name__ == "__main__":
    main()
