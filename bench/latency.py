"""Market latency: post -> result on chain for trivial `echo` jobs, on a real devnet.

Starts anvil, the API and worker agents (as `hepx devnet up` does), then:
  1. sequential: post one job, wait for its ResultSubmitted, repeat (--jobs times): p50/p95;
  2. burst: post --jobs jobs at once and time until every result is on chain: jobs/s.
The echo kind's output is its input, so this measures the market, not the work.
With --other-kind N, N of the workers serve only another kind and the rest only echo: a
market whose workers serve different kinds, where an echo job waits for echo's workers.

    python bench/latency.py --jobs 30
    python bench/latency.py --jobs 30 --workers 8 --other-kind 4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import start_devnet
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

# What the --other-kind workers serve instead of echo: no job of a run is of it.
OTHER_KIND = "hep.merge"


def write_policy(path: Path, kind: str, slots: int | None = None) -> Path:
    """A worker policy that serves ``kind`` alone at 1 gwei, with ``slots`` (None: as many
    as the machine's CPUs)."""
    path.write_text(
        f"kinds: {{{kind}: {{price: '1 gwei'}}}}\n" + (f"slots: {slots}\n" if slots else "")
    )
    return path


def echo_spec(i: int) -> bytes:
    return canonical_json(
        parse_spec(
            {
                "apiVersion": "hepx/v1",
                "kind": "echo",
                "metadata": {"name": f"bench-{i}"},
                "params": {"message": f"hello {i}"},
                "resources": {"max_runtime": 30},
                "payment": {"max_price": "1000 gwei", "claim_window": 600, "run_window": 600},
            }
        )
    )


def wait_results(
    client: MarketClient, job_ids: set[int], from_block: int, timeout: float
) -> dict[int, float]:
    """Wall time at which each job's ResultSubmitted was first seen."""
    seen: dict[int, float] = {}
    cursor = from_block
    deadline = time.monotonic() + timeout
    while len(seen) < len(job_ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {len(seen)}/{len(job_ids)} results after {timeout} s")
        head = client.block_number()
        for ev in client.events(cursor, head):
            if ev.name == "ResultSubmitted" and ev.job_id in job_ids:
                seen.setdefault(int(ev.args["jobId"]), time.perf_counter())
        cursor = head + 1
        time.sleep(0.02)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--other-kind", type=int, default=0, metavar="N",
        help=f"of the workers, N serve {OTHER_KIND} only and the rest echo only",
    )  # fmt: skip
    args = parser.parse_args()
    if args.other_kind >= args.workers:
        parser.error("--other-kind N needs more than N workers (some serve echo)")

    home = Path(tempfile.mkdtemp(prefix="hepx-bench-"))
    echo, other_policies = None, []
    if args.other_kind:
        echo = write_policy(home / "echo.yaml", "echo")
        other_policies = [write_policy(home / "other-kind.yaml", OTHER_KIND)] * args.other_kind
    devnet = start_devnet(
        home, workers=args.workers, anvil_port=free_port(), api_port=free_port(),
        policy=echo, worker_policies=other_policies,
    )  # fmt: skip
    try:
        store = LocalStore(home / "store")
        client = MarketClient.from_deployment(
            devnet.deployment, private_key=devnet.requester.private_key
        )
        specs = [store.add_bytes(echo_spec(i)) for i in range(2 * args.jobs)]

        latencies = []
        for i in range(args.jobs):
            start_block = client.block_number() + 1
            t0 = time.perf_counter()
            job_id, _ = client.post_job(specs[i], 10**12, 600, 600)
            done = wait_results(client, {job_id}, start_block, timeout=120)
            latencies.append(done[job_id] - t0)
        latencies.sort()

        start_block = client.block_number() + 1
        t0 = time.perf_counter()
        burst = {
            client.post_job(specs[args.jobs + i], 10**12, 600, 600)[0] for i in range(args.jobs)
        }
        posted = time.perf_counter() - t0
        done = wait_results(client, burst, start_block, timeout=600)
        elapsed = max(done.values()) - t0
    finally:
        devnet.stop()

    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    others = f" ({args.other_kind} serving {OTHER_KIND} only)" if args.other_kind else ""
    print(f"\nhepx market latency: echo jobs, {args.workers} workers{others}, anvil automine\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| sequential jobs | {args.jobs} |")
    print(f"| post -> result on chain p50 | {statistics.median(latencies) * 1000:.0f} ms |")
    print(f"| post -> result on chain p95 | {p95 * 1000:.0f} ms |")
    print(f"| post -> result on chain max | {latencies[-1] * 1000:.0f} ms |")
    print(f"| burst of {args.jobs}: posting | {posted:.2f} s |")
    print(
        f"| burst of {args.jobs}: all results on chain | {elapsed:.2f} s "
        f"({args.jobs / elapsed:.1f} jobs/s) |"
    )


if __name__ == "__main__":
    main()
