"""The explorer's decoding agrees with Foundry's `cast` on the same transactions.

For every market transaction of a job's life, cast reads the calldata and the receipt from
the same anvil and decodes them independently (calldata-decode, decode-event, sig-event);
the explorer's /explorer/tx answer must name the same function, arguments and events.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_helpers import echo_spec
from fastapi.testclient import TestClient

from api.app import create_app
from hepx.anvil import Anvil
from hepx.artifacts import load_artifact
from hepx.chain import MarketClient
from hepx.config import Settings
from hepx.deployment import Deployment

REPO = Path(__file__).resolve().parents[2]
CAST = REPO / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"

pytestmark = pytest.mark.skipif(not CAST.exists(), reason="cast missing: run `npm ci`")


def _cast(*args: str) -> str:
    done = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _plain(value: Any) -> Any:
    """cast prints big numbers as strings and small ones as numbers: compare as ints."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _abi_items(kind: str) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in load_artifact("JobMarket").abi if i["type"] == kind}


def _check_tx(api: TestClient, rpc: str, tx_hash: str) -> list[str]:
    """Compare one tx's decoding with cast's; return the event names seen."""
    ours = api.get(f"/explorer/tx/{tx_hash}").json()
    functions, events = _abi_items("function"), _abi_items("event")

    call = ours["call"]
    calldata = _cast("tx", tx_hash, "input", "--rpc-url", rpc)
    assert calldata[:10] == _cast("sig", call["signature"])  # same function selector
    theirs = json.loads(_cast("calldata-decode", call["signature"], calldata, "--json"))
    names = [i["name"] for i in functions[call["function"]]["inputs"]]
    assert [_plain(v) for v in theirs] == [call["args"][n] for n in names]

    receipt = json.loads(_cast("receipt", tx_hash, "--json", "--rpc-url", rpc))
    assert len(receipt["logs"]) == len(ours["logs"])
    seen = []
    for raw, log in zip(receipt["logs"], ours["logs"], strict=True):
        inputs = events[log["event"]]["inputs"]
        full = f"{log['event']}({','.join(i['type'] for i in inputs)})"
        assert raw["topics"][0] == _cast("sig-event", full)
        indexed = [i for i in inputs if i["indexed"]]
        for topic, item in zip(raw["topics"][1:], indexed, strict=True):
            if item["type"] == "address":
                value: Any = _cast("parse-bytes32-address", topic)
            else:
                value = int(_cast("to-dec", topic))
            assert value == log["args"][item["name"]], (log["event"], item["name"])
        plain = [i for i in inputs if not i["indexed"]]
        data_sig = f"{log['event']}({','.join(i['type'] for i in plain)})"
        decoded = json.loads(_cast("decode-event", "--sig", data_sig, raw["data"], "--json"))
        assert [_plain(v) for v in decoded] == [log["args"][i["name"]] for i in plain]
        seen.append(log["event"])
    return seen


def test_explorer_and_cast_decode_every_market_tx_of_a_job_alike(
    make_settings: Callable[..., Settings], node: Anvil, deployment: Deployment
) -> None:
    api = TestClient(create_app(make_settings()))
    posted = api.post("/jobs", json=echo_spec())
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]
    worker = MarketClient.from_deployment(deployment, private_key=node.accounts[6].private_key)
    requester = MarketClient.from_deployment(deployment, private_key=node.accounts[0].private_key)
    claim = worker.claim(job_id, 12345)
    submit = worker.submit_result(
        job_id, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", bytes(32)
    )
    accept = requester.accept(job_id)

    seen = [
        _check_tx(api, node.url, tx)
        for tx in (posted.json()["tx_hash"], claim.tx_hash, submit.tx_hash, accept.tx_hash)
    ]
    assert seen == [
        ["JobPosted", "Payment"],
        ["JobClaimed", "Payment"],  # the requester's refund of max price - ask
        ["ResultSubmitted"],
        ["Payment", "JobSettled"],
    ]
