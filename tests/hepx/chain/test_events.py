"""The one log decoder equals web3's own decoding, for logs read by eth_getLogs and for the
logs of receipts; a worker's follower leaves only other workers' money undecoded; block
ranges cover exactly what they should."""

from __future__ import annotations

from typing import Any

from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.chain import (
    MarketClient,
    MarketEvent,
    PaymentDirection,
    block_ranges,
    confirmed_ranges,
    others_money,
)
from hepx.deployment import Deployment

WEI = 10**15


def _web3_decoded(client: MarketClient, start: int, end: int) -> list[MarketEvent]:
    """The same logs decoded by web3's process_log: the reference the fast decoder must match."""
    events: dict[str, Any] = {
        item["name"]: client.contract.events[item["name"]]()
        for item in client.artifact.abi
        if item["type"] == "event"
    }
    by_topic = {"0x" + bytes.fromhex(e.topic.removeprefix("0x")).hex(): e for e in events.values()}
    logs = client.w3.eth.get_logs({"address": client.address, "fromBlock": start, "toBlock": end})
    decoded = []
    for raw in logs:
        got = by_topic["0x" + bytes(raw["topics"][0]).hex()].process_log(raw)
        decoded.append(
            MarketEvent(
                name=str(got["event"]),
                args=dict(got["args"]),
                block_number=int(got["blockNumber"]),
                tx_hash="0x" + bytes(got["transactionHash"]).hex(),
                log_index=int(got["logIndex"]),
                block_hash="0x" + bytes(got["blockHash"]).hex(),
            )
        )
    return decoded


def test_decoder_matches_web3_on_every_market_event_in_logs_and_receipts(
    node: Anvil, deployment: Deployment
) -> None:
    requester, worker = client_of(node, deployment, 1), client_of(node, deployment, 3)
    start = requester.block_number() + 1
    job, posted = requester.post_job("echo-a", WEI, 600, 600)
    receipts = [
        posted,
        worker.claim(job, WEI // 3),
        worker.submit_result(job, "bafyresult", bytes(32)),
    ]
    receipts.append(requester.accept(job))
    receipts.append(requester.cancel(requester.post_job("echo-b", WEI, 600, 600)[0]))
    receipts.append(worker.withdraw())
    end = requester.block_number()

    reference = _web3_decoded(requester, start, end)
    assert len({e.name for e in reference}) >= 6  # posted, claimed, submitted, settled, ...
    assert requester.events(start, end, chunk=2) == reference
    from_receipts = [e for r in receipts for e in r.events]
    assert from_receipts == [e for e in reference if e.tx_hash in {r.tx_hash for r in receipts}]
    # Filtered by job id: only that job's events, in order.
    assert requester.events(start, end, job_id=job) == [e for e in reference if e.job_id == job]


def test_a_worker_follower_skips_only_other_workers_payments_and_settlements(
    node: Anvil, deployment: Deployment
) -> None:
    requester, worker, other = (client_of(node, deployment, i) for i in (1, 3, 4))
    start = requester.block_number() + 1
    jobs = [requester.post_job(f"echo-{i}", WEI, 600, 600)[0] for i in range(3)]
    for taker, job in zip((worker, other, other), jobs, strict=True):
        taker.claim(job, WEI // 3)
        taker.submit_result(job, "bafyresult", bytes(32))
        requester.accept(job)
    end = requester.block_number()
    held = {jobs[2]}  # a job of the other's the worker holds too (a replica's, say)
    every = requester.events(start, end)
    kept = list(
        requester.iter_events(start, end, skip=others_money(worker.sender, held.__contains__))
    )

    def concerns_worker(e: MarketEvent) -> bool:
        if e.name == "Payment":
            return e.args["payee"] == worker.sender
        if e.name == "JobSettled":
            return e.args["worker"] == worker.sender or e.job_id in held
        return True

    assert kept == [e for e in every if concerns_worker(e)]
    assert len(kept) < len(every)
    paid = [e for e in kept if e.name == "Payment"]
    assert paid and all(e.args["direction"] == PaymentDirection.CREDIT for e in paid)
    assert {e.job_id for e in kept if e.name == "JobSettled"} == {jobs[0], jobs[2]}
    assert {e.job_id for e in kept if e.name == "JobClaimed"} == set(jobs)  # all else: kept


def test_block_ranges_cover_every_block_once_in_order() -> None:
    assert list(block_ranges(5, 14, 4)) == [(5, 8), (9, 12), (13, 14)]
    assert list(block_ranges(5, 5, 100)) == [(5, 5)]
    assert list(block_ranges(6, 5, 100)) == []


def test_confirmed_ranges_stop_confirmations_blocks_below_the_head(
    node: Anvil, deployment: Deployment
) -> None:
    client = client_of(node, deployment, 0)
    client.w3.provider.make_request("anvil_mine", [hex(5)])  # type: ignore[arg-type]
    head = client.block_number()
    safe, ranges = confirmed_ranges(client.rpc, head - 5, 2, 2)
    assert safe == head - 2
    assert list(ranges) == [(head - 4, head - 3), (head - 2, head - 2)]
    safe, ranges = confirmed_ranges(client.rpc, head - 1, 2, 2)
    assert list(ranges) == []  # nothing deep enough yet
