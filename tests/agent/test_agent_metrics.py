"""Agent metrics on a real anvil: every mined tx of the worker is counted, priced and timed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.host import KEEP_DONE, JobBook
from agent.metrics import AgentMetrics
from agent.phases import Phase
from hepx.anvil import Anvil, free_port, start_anvil
from hepx.chain import MarketClient, deploy_market

PRICE = 7 * 10**14


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    anvil = start_anvil()
    try:
        yield anvil
    finally:
        anvil.stop()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_agent_metrics_count_gas_earnings_withdrawals_and_latencies(
    node: Anvil, tmp_path: Path
) -> None:
    deployment = deploy_market(node.url, node.accounts[0].private_key, challenge_window=1)
    requester = MarketClient.from_deployment(deployment, private_key=node.accounts[1].private_key)
    worker = MarketClient.from_deployment(deployment, private_key=node.accounts[2].private_key)
    store = tmp_path / "store"
    store.mkdir()
    (store / "block").write_bytes(b"x" * 1234)
    metrics = AgentMetrics(worker, store)

    job_id, _ = requester.post_job("bafyspec", 10**15, 600, 600)
    claim = worker.claim(job_id, PRICE)
    submit = worker.submit_result(job_id, "bafyresult", bytes(32))
    worker.w3.provider.make_request("evm_increaseTime", [5])  # type: ignore[arg-type]
    worker.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    final = worker.finalize(job_id, gas=200_000)
    withdraw = worker.withdraw()
    requester.cancel(requester.post_job("bafyother", 10**15, 600, 600)[0])  # not the agent's

    port = free_port()
    metrics.serve(port)
    got = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    txs = (claim, submit, final, withdraw)
    for call, tx in zip(("claim", "submitResult", "finalize", "withdraw"), txs, strict=True):
        assert got[("hepx_agent_transactions_total", (("call", call),))] == 1
        assert got[("hepx_agent_gas_used_total", (("call", call),))] == tx.gas_used
    assert got[("hepx_agent_gas_spent_wei_total", ())] == sum(
        tx.gas_used * tx.gas_price for tx in txs
    )
    assert sum(tx.gas_price for tx in txs) > 0
    assert got[("hepx_agent_earnings_wei_total", ())] == PRICE
    assert got[("hepx_agent_withdrawn_wei_total", ())] == PRICE
    assert got[("hepx_agent_claim_latency_seconds_count", ())] == 1
    assert got[("hepx_agent_settle_latency_seconds_count", ())] == 1
    assert got[("hepx_agent_store_bytes", ())] == 1234
    assert got[("hepx_agent_withdrawable_wei", ())] == 0
    assert got[("hepx_agent_chain_head", ())] == worker.block_number()


def test_the_jobs_gauge_counts_jobs_moved_to_the_books_archive_as_done(
    node: Anvil, tmp_path: Path
) -> None:
    deployment = deploy_market(node.url, node.accounts[0].private_key, challenge_window=1)
    worker = MarketClient.from_deployment(deployment, private_key=node.accounts[2].private_key)
    metrics = AgentMetrics(worker, tmp_path)
    book = JobBook(tmp_path / "jobs.json")
    done = KEEP_DONE + 5
    book.set_many({j: {} for j in range(1, done + 3)}, phase=Phase.CLAIMING)
    book.set_many({j: {"done_block": 1} for j in range(1, done + 1)}, phase=Phase.DONE,
                  pins_released=True)  # fmt: skip
    assert len(book.archive_done(through_block=100)) == done
    # The gauge reads the agent's book and follower only (a stand-in for the agent).
    metrics.agent = SimpleNamespace(book=book, follower=SimpleNamespace(  # type: ignore[assignment]
        cursor=SimpleNamespace(block=worker.block_number())))  # fmt: skip
    jobs = {s.labels["phase"]: s.value for family in metrics.collect() for s in family.samples
            if s.name == "hepx_agent_jobs"}  # fmt: skip
    assert jobs[Phase.DONE.value] == done and jobs[Phase.CLAIMING.value] == 2
