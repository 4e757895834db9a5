"""Event index at scale: 10,000 jobs on a real anvil, then the job list's first-page latency.

1. posts --jobs echo jobs (signed raw txs, sent without waiting) and claims every third;
2. starts the API (uvicorn, real HTTP) on a fresh index and times its catch-up;
3. times GET /jobs (first page, 25 jobs; unfiltered and filtered) and the HTML job list `/`:
   p50/p95/max over --requests requests each. The goal is < 200 ms for the first page.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account

from api.app import create_app
from hepx.anvil import free_port, start_anvil
from hepx.chain import MarketClient, deploy_market
from hepx.config import Settings
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

GAS_POST, GAS_CLAIM = 400_000, 300_000
print = functools.partial(print, flush=True)  # noqa: A001 - progress shows when piped
BATCH = 200


def send_all(client: MarketClient, key: str, calls: list[tuple[str, list[Any], int, int]]) -> None:
    """Sign and send ``(function, args, value, gas)`` calls back to back; wait for the last."""
    account = Account.from_key(key)
    w3 = client.w3
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    chain_id = client.chain_id()
    raw: list[str] = []
    for name, fn_args, value, gas in calls:
        tx = {
            "chainId": chain_id,
            "to": client.address,
            "data": client.contract.encode_abi(name, args=fn_args),
            "value": value,
            "gas": gas,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "nonce": nonce,
            "type": 2,
        }
        raw.append("0x" + bytes(account.sign_transaction(tx).raw_transaction).hex())
        nonce += 1
    with httpx.Client(timeout=600) as http:

        def rpc(method: str, params: list[Any]) -> Any:
            return http.post(
                client.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            ).json()["result"]

        # Automine with thousands of txs in flight mines them out of nonce order and strands
        # some in the pool: queue a batch, then mine blocks until the pool is empty.
        rpc("evm_setAutomine", [False])
        for start in range(0, len(raw), BATCH):  # JSON-RPC batches: one HTTP call per BATCH
            batch = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [tx]}
                for i, tx in enumerate(raw[start : start + BATCH])
            ]
            answers = http.post(client.rpc_url, json=batch).json()
            failed = [a["error"] for a in answers if "error" in a]
            assert not failed, f"the node refused transactions: {failed[:3]}"
            # Mine each batch before the next: a pool of thousands silently drops some.
            while int(rpc("txpool_status", [])["pending"], 16):
                rpc("anvil_mine", [1])
        rpc("evm_setAutomine", [True])
    if raw:
        last = answers[-1]["result"]
        receipt = w3.eth.wait_for_transaction_receipt(last, timeout=600, poll_latency=0.05)
        assert receipt["status"] == 1, "the last transaction reverted"


def timed(url: str, params: dict[str, Any], count: int) -> list[float]:
    times = []
    with httpx.Client(timeout=30) as http:
        for _ in range(count):
            started = time.perf_counter()
            reply = http.get(url, params=params)
            times.append((time.perf_counter() - started) * 1000)
            reply.raise_for_status()
    return times


def report(label: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"{label:<44} p50 {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms  "
        f"max {ordered[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        anvil = start_anvil(workdir=home / "anvil")
        server: uvicorn.Server | None = None
        try:
            requester, worker = anvil.accounts[0], anvil.accounts[1]
            deployment = deploy_market(anvil.url, requester.private_key)
            deployment.save(home / "deployment.json")
            client = MarketClient.from_deployment(deployment)
            spec = parse_spec(
                {
                    "apiVersion": "hepx/v1",
                    "kind": "echo",
                    "metadata": {"name": "bench-index"},
                    "params": {"message": "hi"},
                    "resources": {"max_runtime": 30},
                    "payment": {"max_price": "1000 gwei", "claim_window": 3600, "run_window": 3600},
                }
            )
            spec_cid = LocalStore(home / "store").add_bytes(canonical_json(spec))
            first_id = client.job_count() + 1
            started = time.perf_counter()
            send_all(
                client,
                requester.private_key,
                [("postJob", [spec_cid, 3600, 3600], 10**12, GAS_POST) for _ in range(args.jobs)],
            )
            posted = time.perf_counter() - started
            assert client.job_count() == first_id - 1 + args.jobs, "some posts were lost"
            claims = [
                ("claim", [job_id, 10**11], 0, GAS_CLAIM)
                for job_id in range(first_id, first_id + args.jobs, 3)
            ]
            send_all(client, worker.private_key, claims)
            print(
                f"chain: {args.jobs} jobs posted in {posted:.1f} s, {len(claims)} claimed; "
                f"head block {client.block_number()}"
            )

            settings = Settings(
                home=home,
                rpc_url=anvil.url,
                deployment=home / "deployment.json",
                store_dir=home / "store",
                index_path=home / "index.sqlite",
            )
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(create_app(settings), port=port, log_level="warning")
            )
            threading.Thread(target=server.run, daemon=True).start()
            api = f"http://127.0.0.1:{port}"
            while not server.started:
                time.sleep(0.05)
            started = time.perf_counter()
            while True:  # the background thread catches up from the deploy block
                status = httpx.get(f"{api}/explorer/status", timeout=600).json()
                head = status["head"]
                if (
                    head is not None
                    and status["synced_block"] >= head
                    and status["jobs"] >= args.jobs
                ):
                    break
                time.sleep(0.2)
            print(
                f"index: caught up {status['events']} events / {status['jobs']} jobs in "
                f"{time.perf_counter() - started:.1f} s "
                f"({(home / 'index.sqlite').stat().st_size / 2**20:.1f} MiB)"
            )
            n = args.requests
            report("GET /jobs (page 1, 25 jobs)", timed(f"{api}/jobs", {}, n))
            report("GET /jobs?state=claimed", timed(f"{api}/jobs", {"state": "claimed"}, n))
            report(
                "GET /jobs?worker=W&kind=echo",
                timed(f"{api}/jobs", {"worker": worker.address, "kind": "echo"}, n),
            )
            report("GET /jobs?page=200", timed(f"{api}/jobs", {"page": 200}, n))
            report("GET / (HTML job list)", timed(f"{api}/", {}, n))
        finally:
            if server is not None:
                server.should_exit = True
                time.sleep(0.5)
            anvil.stop()


if __name__ == "__main__":
    main()
