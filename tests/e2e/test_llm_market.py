"""LLM jobs through the whole market on a real devnet with the real local LLM server.

The server requires an API key (a sentinel): jobs can only succeed if the worker sends it,
and afterwards no byte of it may be found in the store, the logs or the chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import Devnet, start_devnet
from hepx.llm import ChatMessage, estimate_prompt_tokens
from hepx.llm_build import llm_extra_missing
from hepx.llm_server import MODEL_ALIAS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        llm_extra_missing() is not None, reason=f"llm extra not installed: {llm_extra_missing()}"
    ),
]
SENTINEL = "sk-hepx-SENTINEL-7f3a9c1e5b"
PROMPT = "Write one short sentence about the Higgs boson."


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    home = tmp_path_factory.mktemp("hepx-llm-home")
    net = start_devnet(
        home,
        workers=1,
        anvil_port=free_port(),
        api_port=free_port(),
        challenge_window=2,
        llm="now",
        llm_api_key=SENTINEL,
    )
    yield net
    net.stop()


def wait_state(api: str, job_id: int, state: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/jobs/{job_id}", timeout=10).json()
        if job["state"] == state:
            return job
        assert job["state"] not in {"expired", "cancelled"}, job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.get('state')} after {timeout} s")


def spec(kind: str, params: dict[str, Any], inputs: list[dict[str, str]] | None = None) -> dict:
    return {
        "apiVersion": "hepx/v1",
        "kind": kind,
        "metadata": {"name": kind.replace(".", "-")},
        "params": params,
        "inputs": inputs or [],
        "resources": {"max_runtime": 600},
        "payment": {"max_price": "0.001 ether", "claim_window": 300, "run_window": 900},
    }


def test_chat_job_settles_at_its_token_price_and_matches_the_server_called_directly(
    devnet: Devnet,
) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    params = {"model": MODEL_ALIAS, "messages": messages, "max_tokens": 24, "seed": 11}
    posted = httpx.post(f"{devnet.api_url}/jobs", json=spec("llm.chat", params), timeout=60)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]
    job = wait_state(devnet.api_url, job_id, "settled", timeout=300)

    answer = httpx.get(f"{devnet.api_url}/ipfs/{job['result_cid']}/outputs/answer.json").json()
    assert answer["model"] == MODEL_ALIAS and answer["backend"] == "llama.cpp"
    assert 0 < answer["usage"]["completion_tokens"] <= 24

    # Same request straight to the server: at temperature 0 the market returns the same text.
    direct = httpx.post(
        f"{devnet.llm_url}/chat/completions",
        headers={"Authorization": f"Bearer {SENTINEL}"},
        json={**params, "temperature": 0},
        timeout=120,
    ).json()
    assert direct["choices"][0]["message"]["content"] == answer["text"]

    # Paid the worst case the devnet policy prices: 1 gwei base + 1 gwei/input + 2 gwei/output.
    prompt = estimate_prompt_tokens([ChatMessage(role="user", content=PROMPT)])
    client = MarketClient.from_deployment(devnet.deployment)
    assert client.job(job_id).price == 10**9 * (1 + prompt + 2 * 24)


def test_batch_job_of_20_through_the_market_records_the_malformed_request(
    devnet: Devnet,
) -> None:
    lines = [
        json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": f"Say {i}."}]})
        for i in range(1, 21)
    ]
    lines[4] = '{"id": "q5", "messages": "not a list"}'
    uploaded = httpx.post(f"{devnet.api_url}/ipfs", content="\n".join(lines).encode(), timeout=30)
    uploaded.raise_for_status()
    params = {"model": MODEL_ALIAS, "max_requests": 20, "max_prompt_tokens": 64, "max_tokens": 4}
    inputs = [{"name": "requests.jsonl", "cid": uploaded.json()["cid"]}]
    posted = httpx.post(
        f"{devnet.api_url}/jobs", json=spec("llm.batch", params, inputs), timeout=60
    )
    assert posted.status_code == 201, posted.text
    job = wait_state(devnet.api_url, posted.json()["job_id"], "settled", timeout=800)
    result = job["result_cid"]
    body = httpx.get(f"{devnet.api_url}/ipfs/{result}/outputs/answers.jsonl", timeout=30).text
    answers = [json.loads(line) for line in body.splitlines()]
    assert len(answers) == 20
    failed = [a for a in answers if "error" in a]
    assert [(a["line"], a["id"]) for a in failed] == [(5, "q5")]
    assert "messages" in failed[0]["error"]
    assert all(a["text"] for a in answers if "error" not in a)


def test_api_key_never_reaches_the_store_the_logs_or_the_chain(devnet: Devnet) -> None:
    # Runs after the jobs above (module order): they could only succeed with the key.
    needle = SENTINEL.encode()
    scanned = 0
    for root in (devnet.home / "store", devnet.home / "devnet"):
        for path in root.rglob("*"):
            if path.is_file():
                scanned += 1
                assert needle not in path.read_bytes(), f"key found in {path}"
    assert scanned > 10
    assert (devnet.logs / "worker-1.log").stat().st_size > 0

    client = MarketClient.from_deployment(devnet.deployment)
    hex_needle = needle.hex()
    txs = 0
    for number in range(client.block_number() + 1):
        block = client.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            txs += 1
            assert hex_needle not in bytes(tx["input"]).hex()
            receipt = client.w3.eth.get_transaction_receipt(tx["hash"])
            for entry in receipt["logs"]:
                assert hex_needle not in bytes(entry["data"]).hex()
    assert txs >= 6  # deploy, 2 posts, 2 claims, 2 submits at least


def test_server_refuses_requests_without_the_key(devnet: Devnet) -> None:
    # Proves the jobs above used the key: without it the same endpoint says 401.
    resp = httpx.get(f"{devnet.llm_url}/models", timeout=10)
    assert resp.status_code == 401
