"""How many agents one RPC endpoint serves: N agent processes follow one anvil while jobs are
posted at a steady rate; every agent must see every job, and the table shows how far behind
the chain's head they fall.

The agents' policy asks more than any job pays, so each one reads every JobPosted, fetches the
job and its spec, and declines: the follower's whole read path, with no transactions that
would make the agents race. Their lag comes from their own metrics
(``hepx_agent_chain_head_lag_blocks``), scraped every half second.

    python bench/followers.py --agents 1,10,20 --rate 2 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from hepx.anvil import free_port, start_anvil
from hepx.chain import MarketClient, deploy_market
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

DECLINING = "kinds: {echo: {price: '1 ether'}}\n"  # above every job's max price
LAG = re.compile(r"^hepx_agent_chain_head_lag_blocks (\S+)$", re.M)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(agents: int, rate: float, seconds: float) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="hepx-bench-followers-"))
    with start_anvil() as anvil:
        deployment = deploy_market(anvil.url, anvil.accounts[0].private_key, 1)
        deployment.save(home / "deployment.json")
        store = LocalStore(home / "store")
        policy = home / "policy.yaml"
        policy.write_text(DECLINING)
        env = {
            **os.environ,
            "HEPX_DEPLOYMENT": str(home / "deployment.json"),
            "HEPX_STORE_DIR": str(store.root),
            "HEPX_PRIVATE_KEY": anvil.accounts[1].private_key,  # reads only: one key serves all
        }
        ports = [free_port() for _ in range(agents)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "hepx", "agent", "run", "--state-dir", str(home / f"a{i}")]
                + ["--policy", str(policy), "--metrics-port", str(port)],
                env=env,
                stderr=open(home / f"a{i}.log", "wb"),  # noqa: SIM115 (closed with the process)
                start_new_session=True,
            )
            for i, port in enumerate(ports)
        ]
        lags: list[float] = []
        stop = threading.Event()

        def scrape() -> None:
            while not stop.is_set():
                for port in ports:
                    try:
                        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                    except httpx.HTTPError:
                        continue  # not serving yet
                    if m := LAG.search(text):
                        lags.append(float(m.group(1)))
                stop.wait(0.5)

        requester = MarketClient.from_deployment(
            deployment, private_key=anvil.accounts[0].private_key
        )
        spec = parse_spec(
            {
                "apiVersion": "hepx/v1",
                "kind": "echo",
                "metadata": {"name": "followed"},
                "params": {"message": "nobody takes this"},
                "resources": {"max_runtime": 10},
                "payment": {"max_price": 1000, "claim_window": 600, "run_window": 60},
            }
        )
        cid = store.add_bytes(canonical_json(spec))
        time.sleep(5)  # the agents start up
        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        cpu_before, posted, t0 = _cpu_seconds(anvil.process.pid), 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            requester.post_job(cid, 1000, 600, 60)
            posted += 1
            time.sleep(max(0.0, t0 + posted / rate - time.monotonic()))
        anvil_cpu = (_cpu_seconds(anvil.process.pid) - cpu_before) / (time.monotonic() - t0)
        time.sleep(3)  # the last posts reach every agent
        stop.set()
        scraper.join()
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        seen = [(home / f"a{i}.log").read_text().count("event=declined") for i in range(agents)]
    return {
        "agents": agents,
        "posted": posted,
        "saw_all": sum(1 for s in seen if s >= posted),
        "lag_p50": statistics.median(lags) if lags else float("nan"),
        "lag_max": max(lags) if lags else float("nan"),
        "anvil_cpu": anvil_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="1,10,20", help="comma-separated agent counts")
    parser.add_argument("--rate", type=float, default=2.0, help="jobs posted per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    rows = [run_once(int(n), args.rate, args.seconds) for n in args.agents.split(",")]
    print(f"\nagents following one anvil, {args.rate:g} jobs/s posted for {args.seconds:g} s\n")
    print("| agents | jobs posted | agents that saw every job | head lag p50 | max | anvil CPU |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['agents']:.0f} | {r['posted']:.0f} | {r['saw_all']:.0f} | "
            f"{r['lag_p50']:.0f} blocks | {r['lag_max']:.0f} blocks | {r['anvil_cpu']:.0%} |"
        )


if __name__ == "__main__":
    main()
