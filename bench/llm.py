"""LLM tokens/s through the market against the same server called directly, same prompt.

Starts a devnet with the local LLM server (llama.cpp + packaged SmolLM2-135M) and one worker,
then, one run each:
  1. direct: POST the chat request to the server; tokens/s = completion tokens / wall time;
  2. market: post the same request as an llm.chat job through the API and time post ->
     result on chain (ResultSubmitted); tokens/s = the completion tokens the result reports
     / that time. The gap is the market's overhead: spec in the store, claim, subprocess,
     result stored, submit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import start_devnet
from hepx.llm_server import MODEL_ALIAS

PROMPT = "Explain in a few sentences what a particle collider does."


def wait_result(client: MarketClient, job_id: int, from_block: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    cursor = from_block
    while time.monotonic() < deadline:
        head = client.block_number()
        for ev in client.events(cursor, head, job_id=job_id):
            if ev.name == "ResultSubmitted":
                return str(ev.args["resultCid"])
        cursor = head + 1
        time.sleep(0.02)
    raise SystemExit(f"job {job_id}: no result after {timeout} s")


def flush_prompt_cache(base_url: str) -> None:
    """llama.cpp reuses the KV cache of the last prompt's prefix; a different one-token request
    in between makes both measured runs start cold, so neither gets the other's prompt free."""
    body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "Ok."}]}
    httpx.post(f"{base_url}/chat/completions", json={**body, "max_tokens": 1}, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    params = {
        "model": MODEL_ALIAS,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "seed": 1,
    }
    with tempfile.TemporaryDirectory(prefix="hepx-bench-llm-") as home:
        devnet = start_devnet(
            Path(home), workers=1, anvil_port=free_port(), api_port=free_port(), llm="now"
        )
        try:
            assert devnet.llm_url is not None
            flush_prompt_cache(devnet.llm_url)
            started = time.perf_counter()
            direct = httpx.post(f"{devnet.llm_url}/chat/completions", json=params, timeout=600)
            direct_s = time.perf_counter() - started
            direct.raise_for_status()
            direct_body = direct.json()
            direct_tokens = direct_body["usage"]["completion_tokens"]

            client = MarketClient.from_deployment(devnet.deployment)
            spec = {
                "apiVersion": "hepx/v1",
                "kind": "llm.chat",
                "metadata": {"name": "bench-llm"},
                "params": params,
                "resources": {"max_runtime": 600},
                "payment": {"max_price": "0.01 ether", "claim_window": 600, "run_window": 900},
            }
            flush_prompt_cache(devnet.llm_url)
            from_block = client.block_number() + 1
            started = time.perf_counter()
            posted = httpx.post(f"{devnet.api_url}/jobs", json=spec, timeout=60)
            posted.raise_for_status()
            job_id = posted.json()["job_id"]
            result = wait_result(client, job_id, from_block, timeout=900)
            market_s = time.perf_counter() - started
            answer = httpx.get(f"{devnet.api_url}/ipfs/{result}/outputs/answer.json").json()
            market_tokens = answer["usage"]["completion_tokens"]
        finally:
            devnet.stop()
    same = answer["text"] == direct_body["choices"][0]["message"]["content"]
    print(f"prompt: {PROMPT!r}, max_tokens {args.max_tokens}, temperature 0, one run each")
    print(
        f"direct  {direct_tokens:4d} tokens in {direct_s:6.2f} s = "
        f"{direct_tokens / direct_s:6.1f} tokens/s"
    )
    print(
        f"market  {market_tokens:4d} tokens in {market_s:6.2f} s = "
        f"{market_tokens / market_s:6.1f} tokens/s (post -> result on chain)"
    )
    print(f"overhead {market_s - direct_s:+.2f} s; same text: {same}")


if __name__ == "__main__":
    main()
