"""Gas used by each JobMarket call, from real receipts on a fresh anvil.

    .venv/bin/python bench/gas.py [--json]

Job 1 settles by accept and is the first money its worker and requester are credited (fresh
storage slots); job 2 settles by finalize after the challenge window, when both already hold
credit. Then both withdraw.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from hepx.anvil import start_anvil
from hepx.artifacts import load_artifact

CHALLENGE_WINDOW = 3600
SPEC_CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"  # CIDv1 raw sha2-256
RESULT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
ESCROW = 10**18
PRICE = 6 * 10**17


def run() -> list[tuple[str, int]]:
    """(step, gas used) for deploy and each call of two job lifecycles and the withdrawals."""
    artifact = load_artifact("JobMarket")
    with start_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer, requester, worker, keeper = (
            Web3.to_checksum_address(a.address) for a in node.accounts[:4]
        )
        rows: list[tuple[str, int]] = []

        def mine(label: str, call: Any, sender: str, value: int = 0) -> Any:
            tx_hash = call.transact({"from": sender, "value": value})
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                raise RuntimeError(f"{label} reverted (tx {tx_hash.hex()})")
            rows.append((label, int(receipt["gasUsed"])))
            return receipt

        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        deployed = mine("deploy JobMarket", factory.constructor(CHALLENGE_WINDOW), deployer)
        market = w3.eth.contract(address=deployed["contractAddress"], abi=artifact.abi)
        fns = market.functions

        for job_id, settle in ((1, "accept"), (2, "finalize")):
            mine(f"job {job_id} postJob", fns.postJob(SPEC_CID, 600, 1800), requester, ESCROW)
            mine(f"job {job_id} claim", fns.claim(job_id, PRICE), worker)
            mine(f"job {job_id} submitResult", fns.submitResult(job_id, RESULT_CID), worker)
            if settle == "accept":
                mine(f"job {job_id} accept", fns.accept(job_id), requester)
            else:
                w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [CHALLENGE_WINDOW + 1])
                w3.provider.make_request(RPCEndpoint("evm_mine"), [])
                mine(f"job {job_id} finalize", fns.finalize(job_id), keeper)
        mine("withdraw (worker)", fns.withdraw(), worker)
        mine("withdraw (requester)", fns.withdraw(), requester)
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = run()
    gas = dict(rows)
    totals = {
        f"job {n} post -> settled": sum(v for k, v in rows if k.startswith(f"job {n} "))
        for n in (1, 2)
    }
    if args.json:
        print(json.dumps({"steps": gas, "totals": totals}, indent=2))
        return 0
    width = max(len(label) for label in [*gas, *totals])
    print(f"{'step':<{width}} | gas used")
    print(f"{'-' * width}-+----------")
    for label, used in [*rows, *totals.items()]:
        print(f"{label:<{width}} | {used:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
