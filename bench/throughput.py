"""Throughput of the whole market: no-op jobs posted through the REST API, run by W agents with
S slots each, until every one is settled on chain.

For each agents x slots configuration a fresh devnet (anvil automine, the API, W agents) gets
--jobs echo jobs posted by --posters threads at once, once every agent is up (its kinds
registered on chain), and the table shows:

  jobs/s          jobs / (last settlement - first post)
  results/s       jobs / (last result on chain - first post): the same without the settle
                  tail, whose 1-2 s of chance (below) moves a run of a few seconds by a
                  fifth
  posting         the first post -> the last POST answered: with one job per POST, the API's
                  pace bounds the run (it shares the machine's two cores with the agents)
  p50, p95        post -> result on chain, per job (results are looked for every 50 ms)
  settle tail     the last result on chain -> the last settlement: a result settles in the
                  first block whose timestamp is past its challenge window (1 s here), and
                  block timestamps are whole seconds, so 1-2 s of it is where in its second
                  the last result went out; most of the difference between two runs of the
                  same configuration is this
  gas/job         every transaction's gas in the run (posts, claims, results, settlements,
                  withdrawals, refused ones too) over the jobs
  CPU/job         the whole machine's busy CPU time from the first post to the last
                  settlement (/proc/stat: anvil, the API, every agent and job) over the jobs:
                  what the run cost, steadier from run to run than jobs/s on a shared machine
  reverted        transactions the agents sent that reverted on chain (gas paid for nothing:
                  a lost claim race, a settlement another agent made first), by call
  skipped claims  jobs an agent's claimJobs found taken (a race lost after its eth_call: the
                  transaction is mined, the item skipped), and the gas of the claims that
                  claimed nothing

With --batch N the posters send N specs per POST /jobs/batch (one postJobs transaction)
instead of one per POST /jobs; the agents always claim and submit a round's jobs in one
transaction each. With --sweep too, each batch is posted as one sweep (postSweep), which
the agents take in lots (one claimLot, one submitLot and a share of one settlement per lot).
With --other-kind N, N of the agents serve another kind than the jobs': a market whose
workers serve different kinds, where those of echo must not wait for the others' turns.
With --job-seconds S each job sleeps S seconds in its runner: work that waits (on a remote
service, a batch system) and uses no CPU, so that the agents' slots bound the run, not the
two cores that no-op jobs make every agent share with anvil and the API.
With --own-jobs-only the agents leave every post another worker ranks first for, and the other
workers' claims and results, undecoded, and stand in for nobody (bench/own_jobs_only): not a
way to run a market, but the bound on what sharing the chain's following among the agents of
one machine could save.

    python bench/throughput.py --jobs 100 --agents 1,2,4 --slots 2
    python bench/throughput.py --jobs 200 --agents 1,2,4,8 --slots 2 --batch 50
    python bench/throughput.py --jobs 1000 --agents 1,2,4,8 --slots 2 --batch 200 --sweep
    python bench/throughput.py --jobs 1000 --agents 8 --slots 4 --batch 200 --sweep --other-kind 4
    python bench/throughput.py --jobs 1000 --agents 4,8 --slots 4 --batch 200 --sweep --repeat 5
    python bench/throughput.py --jobs 200 --agents 1,2,4,8 --slots 2 --batch 50 --job-seconds 0.5
    python bench/throughput.py --jobs 400 --agents 4,8 --batch 50 --repeat 4 --own-jobs-only
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from latency import OTHER_KIND, write_policy

from hepx.anvil import free_port
from hepx.chain import JobState, LotState, MarketClient
from hepx.devnet import Devnet, start_devnet
from hepx.workflow_api import HttpJobsApi


def noop_spec(i: int, seconds: float = 0.0) -> dict[str, object]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "echo",
        "metadata": {"name": f"throughput-{i}"},
        "params": {"message": f"job {i}", "sleep_seconds": seconds},
        "resources": {"max_runtime": 60},
        "payment": {"max_price": "1000 gwei", "claim_window": 600, "run_window": 600},
    }


@dataclass
class Run:
    agents: int
    other_kind: int  # of the agents, those that serve OTHER_KIND only
    slots: int
    jobs: int
    seconds: float
    posting: float  # the first post -> the last POST answered
    tail: float  # the last result on chain -> the last settlement
    p50: float
    p95: float
    gas_per_job: float
    cpu_per_job: float  # seconds of busy CPU, all processes, per job
    reverted: dict[str, int]  # call -> agent transactions of it that reverted on chain
    skipped: int  # claim items skipped on chain (BatchItemSkipped in a claimJobs)
    skipped_gas: int  # gas of the claimJobs that claimed nothing

    @property
    def results_rate(self) -> float:
        """Jobs per second from the first post to the last result on chain."""
        return self.jobs / (self.seconds - self.tail)


def _busy_cpu_seconds() -> float:
    """CPU time the machine has spent not idle since boot, all cores (Linux)."""
    with open("/proc/stat") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _wait_agents_up(devnet: Devnet, client: MarketClient) -> None:
    """Until every agent has registered its kinds on chain (the last step of its start): the
    run measures the market, not the agents' start (a Python process each, whose imports
    would share the cores with the run)."""
    deadline = time.monotonic() + 120
    waiting = {w.address.lower() for w in devnet.workers}
    cursor = devnet.deployment.deploy_block
    while waiting:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(waiting)} agents not up in 120 s: see {devnet.logs}")
        if (dead := devnet.dead_child()) is not None:
            raise SystemExit(f"before the run: {dead}")
        time.sleep(0.2)
        head = client.block_number()
        waiting -= {str(e.args["worker"]).lower() for e in client.events(cursor, head)
                    if e.name == "WorkerRegistered"}  # fmt: skip
        cursor = head + 1


def _call_of(client: MarketClient, tx_hash: str) -> str:
    """The market function a transaction called (its selector if the market has none)."""
    data = client.rpc.request("eth_getTransactionByHash", [tx_hash])["input"]
    try:
        return str(client.contract.get_function_by_selector(data[:10]).fn_name)
    except ValueError:
        return str(data[:10])


def run_once(
    agents: int, slots: int, jobs: int, posters: int, batch: int = 1, sweep: bool = False,
    other_kind: int = 0, job_seconds: float = 0.0,
) -> Run:  # fmt: skip
    home = Path(tempfile.mkdtemp(prefix="hepx-bench-throughput-"))
    policy = write_policy(home / "policy.yaml", "echo", slots)
    other = write_policy(home / "other-kind.yaml", OTHER_KIND, slots)
    devnet = start_devnet(
        home,
        workers=agents,
        anvil_port=free_port(),
        api_port=free_port(),
        challenge_window=1,
        policy=policy,
        worker_policies=[other] * other_kind,
    )
    try:
        client = MarketClient(devnet.anvil.url, devnet.deployment.job_market, None)
        _wait_agents_up(devnet, client)
        api = HttpJobsApi(devnet.api_url)
        first_block = client.block_number() + 1
        posted_at: dict[int, float] = {}
        lock = threading.Lock()
        chunks = iter([list(range(i, min(i + batch, jobs))) for i in range(0, jobs, batch)])

        answered: list[float] = []  # when each poster's last POST was answered

        def poster() -> None:
            for chunk in chunks:  # one shared iterator: each chunk is taken once
                t0 = time.perf_counter()
                if batch == 1:
                    ids = [int(api.post_job(noop_spec(chunk[0], job_seconds))["job_id"])]
                else:
                    specs = [noop_spec(i, job_seconds) for i in chunk]
                    posted = api.post_jobs(specs, sweep=sweep)["jobs"]
                    ids = [int(job["job_id"]) for job in posted]
                with lock:
                    posted_at.update(dict.fromkeys(ids, t0))
            with lock:
                answered.append(time.perf_counter())

        busy_before = _busy_cpu_seconds()
        started = time.perf_counter()
        # Results are looked for while the posters post: a result seen only once all posts
        # were answered counted the rest of the posting in its latency.
        threads = [threading.Thread(target=poster) for _ in range(posters)]
        for t in threads:
            t.start()
        result_at: dict[int, float] = {}
        settled: set[int] = set()
        lots: dict[int, range] = {}  # a sweep's lots: their jobs
        cursor = first_block
        deadline = time.monotonic() + 900
        while len(settled) < jobs and time.monotonic() < deadline:
            if (dead := devnet.dead_child()) is not None:  # else the run waited out 900 s
                raise SystemExit(f"{agents}x{slots}: mid-run, {dead}")
            head = client.block_number()
            now = time.perf_counter()
            for ev in client.events(cursor, head):
                if ev.name == "LotClaimed":
                    lot = int(ev.args["lotId"])
                    lots[lot] = range(lot, lot + int(ev.args["count"]))
                elif ev.name == "LotSubmitted":
                    for j in lots[int(ev.args["lotId"])]:
                        result_at.setdefault(j, now)
                elif ev.name == "LotSettled":
                    settled.update(lots[int(ev.args["lotId"])])
                if ev.job_id is None:
                    continue
                if ev.name == "ResultSubmitted":
                    result_at.setdefault(ev.job_id, now)
                elif ev.name == "JobSettled":
                    settled.add(ev.job_id)
            cursor = head + 1
            time.sleep(0.05)
        ended = time.perf_counter()
        busy = _busy_cpu_seconds() - busy_before
        for t in threads:
            t.join()
        if len(settled) < jobs:
            raise SystemExit(f"{agents}x{slots}: only {len(settled)}/{jobs} settled in 900 s")
        latencies = sorted(result_at[j] - posted_at[j] for j in posted_at)
        gas, reverted, skipped_gas = 0, Counter[str](), 0
        workers = {w.address.lower() for w in devnet.workers}
        for number in range(first_block, client.block_number() + 1):
            for r in client.rpc.request("eth_getBlockReceipts", [hex(number)]) or []:
                gas += int(r["gasUsed"], 16)
                if r["from"].lower() in workers and int(r["status"], 16) == 0:
                    reverted[_call_of(client, r["transactionHash"])] += 1
        events = client.events(first_block, client.block_number())
        calls = {e.tx_hash: _call_of(client, e.tx_hash) for e in events
                 if e.name == "BatchItemSkipped"}  # fmt: skip
        skips = [e for e in events if calls.get(e.tx_hash) == "claimJobs"]
        skips += [e for e in events if e.name == "SweepClaimSkipped"]  # a lot of no job
        claiming = {e.tx_hash for e in events if e.name == "JobClaimed"}
        for tx_hash in {e.tx_hash for e in skips} - claiming:
            receipt = client.rpc.request("eth_getTransactionReceipt", [tx_hash])
            skipped_gas += int(receipt["gasUsed"], 16)
        assert all(client.job(j).state == JobState.SETTLED for j in posted_at if not sweep)
        assert all(client.lot(lot).state == LotState.SETTLED for lot in lots)
    finally:
        devnet.stop()
    shutil.rmtree(home)  # a failed run's is kept (the exit names its logs)
    return Run(
        agents,
        other_kind,
        slots,
        jobs,
        ended - started,
        max(answered) - started,
        ended - max(result_at.values()),
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
        gas / jobs,
        busy / jobs,
        reverted,
        len(skips),
        skipped_gas,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--agents", default="1,2,4", help="comma-separated agent counts")
    parser.add_argument("--slots", default="2", help="comma-separated slots per agent")
    parser.add_argument("--posters", type=int, default=4, help="threads posting at once")
    parser.add_argument("--batch", type=int, default=1, help="specs per POST (1: POST /jobs)")
    parser.add_argument("--sweep", action="store_true", help="each batch posted as one sweep")
    parser.add_argument(
        "--other-kind", type=int, default=0, metavar="N",
        help=f"of the agents, N serve {OTHER_KIND} only (no job's kind)",
    )  # fmt: skip
    parser.add_argument(
        "--job-seconds", type=float, default=0.0, metavar="S",
        help="each job sleeps S seconds in its runner (0: a no-op job)",
    )  # fmt: skip
    parser.add_argument(
        "--own-jobs-only", action="store_true",
        help="agents that follow only the jobs they rank first for (a bound, not a market)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="R",
        help="run every configuration R times, in turn, and summarise them (mean, range)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.sweep and args.batch == 1:
        parser.error("--sweep posts batches: give --batch N (N > 1)")
    counts = [int(a) for a in args.agents.split(",")]
    if any(a <= args.other_kind for a in counts):
        parser.error("--other-kind N needs more than N agents in every count (some serve echo)")
    if args.own_jobs_only and args.other_kind:
        # Its agents rank every post among all workers, kinds aside: a job whose first-ranked
        # worker serves another kind would wait for ever.
        parser.error("--own-jobs-only bounds a market of one kind: leave out --other-kind")
    if args.own_jobs_only:  # the agents' Python reads bench/own_jobs_only/sitecustomize.py
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(
                None, [str(Path(__file__).parent / "own_jobs_only"), os.environ.get("PYTHONPATH")]
            )
        )
    # In turn (1, 2, 4, 1, 2, 4, ...), not each configuration's runs together: the machine's
    # speed drifts over minutes, and the settle tail's chance differs from run to run.
    runs = [
        run_once(
            a,
            int(s),
            args.jobs,
            args.posters,
            args.batch,
            args.sweep,
            args.other_kind,
            args.job_seconds,
        )
        for _ in range(args.repeat)
        for a in counts
        for s in args.slots.split(",")
    ]
    posting = (
        f"POST /jobs ({args.posters} posters)"
        if args.batch == 1
        else f"POST /jobs/batch of {args.batch}{' as sweeps' if args.sweep else ''} "
        f"({args.posters} posters)"
    )
    jobs = f"echo jobs of {args.job_seconds:g} s" if args.job_seconds else "no-op echo jobs"
    only = ", agents following only their own jobs" if args.own_jobs_only else ""
    print(f"\n{args.jobs} {jobs} through {posting}, anvil automine{only}\n")
    print(
        "| agents x slots | jobs/s | results/s | posting | p50 post -> result | p95 | settle tail "
        "| gas/job | CPU/job | reverted txs | skipped claims (gas of empty claims) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        calls = ", ".join(f"{name} {n}" for name, n in sorted(r.reverted.items()))
        reverted = f"{sum(r.reverted.values())}" + (f" ({calls})" if calls else "")
        agents = f"{r.agents} ({r.other_kind} {OTHER_KIND})" if r.other_kind else f"{r.agents}"
        print(
            f"| {agents} x {r.slots} | {r.jobs / r.seconds:.2f} | {r.results_rate:.2f} | "
            f"{r.posting:.2f} s | "
            f"{r.p50 * 1000:.0f} ms | "
            f"{r.p95 * 1000:.0f} ms | {r.tail:.2f} s | {r.gas_per_job:,.0f} | "
            f"{r.cpu_per_job * 1000:.1f} ms | "
            f"{reverted} | "
            f"{r.skipped} ({r.skipped_gas:,}) |"
        )
    if args.repeat > 1:
        _summary(runs)


def _summary(runs: list[Run]) -> None:
    """Each configuration's runs together: jobs/s, results/s, the settle tail and CPU per job."""
    print(
        "\n| agents x slots | runs | jobs/s: mean (range) | results/s: mean (range) "
        "| posting: mean | settle tail: mean | CPU/job: mean |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    configs: dict[tuple[int, int, int], list[Run]] = {}
    for r in runs:
        configs.setdefault((r.agents, r.other_kind, r.slots), []).append(r)
    for (agents, other_kind, slots), same in configs.items():
        rates = [r.jobs / r.seconds for r in same]
        to_results = [r.results_rate for r in same]
        others = f" ({other_kind} {OTHER_KIND})" if other_kind else ""
        print(
            f"| {agents}{others} x {slots} | {len(same)} | {statistics.mean(rates):.2f} "
            f"({min(rates):.2f}-{max(rates):.2f}) | {statistics.mean(to_results):.2f} "
            f"({min(to_results):.2f}-{max(to_results):.2f}) | "
            f"{statistics.mean(r.posting for r in same):.2f} s | "
            f"{statistics.mean(r.tail for r in same):.2f} s | "
            f"{statistics.mean(r.cpu_per_job for r in same) * 1000:.1f} ms |"
        )


if __name__ == "__main__":
    main()
