"""Concurrent transactions of one sender: each gets its own nonce, none waits for another's
receipt, and a nonce taken behind the client's back is recovered from, not mistaken for a
send that went through (which made three of four concurrent posts hang until the receipt
timeout before)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, contract
from hepx.chain.nonces import sequence_for
from hepx.deployment import Deployment
from hepx.errors import TxDropped

WEI = 10**15


def _post_concurrently(clients: list[MarketClient], n: int) -> list[object]:
    results: list[object] = [None] * n

    def post(i: int) -> None:
        try:
            results[i] = clients[i % len(clients)].post_job(f"spec-{i}", WEI, 600, 600)
        except Exception as exc:  # the test reports which failed
            results[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_eight_concurrent_posts_of_one_sender_all_land_with_distinct_nonces(
    node: Anvil, deployment: Deployment
) -> None:
    client = client_of(node, deployment, 6)
    client.receipt_timeout = 20
    started = time.monotonic()
    results = _post_concurrently([client], 8)
    elapsed = time.monotonic() - started
    failures = [r for r in results if isinstance(r, Exception)]
    assert failures == []
    job_ids = {job_id for job_id, _ in results}  # type: ignore[misc]
    assert len(job_ids) == 8
    nonces = {client.w3.eth.get_transaction(tx.tx_hash)["nonce"] for _, tx in results}  # type: ignore[misc,arg-type]
    assert len(nonces) == 8
    assert elapsed < 15  # none waited for a receipt timeout


def test_two_clients_of_one_key_in_one_process_share_the_sequence(
    node: Anvil, deployment: Deployment
) -> None:
    clients = [client_of(node, deployment, 7), client_of(node, deployment, 7)]
    results = _post_concurrently(clients, 6)
    assert [r for r in results if isinstance(r, Exception)] == []


def test_a_nonce_used_behind_the_clients_back_is_caught_up_with(
    node: Anvil, deployment: Deployment
) -> None:
    client = client_of(node, deployment, 8)
    client.post_job("before", WEI, 600, 600)  # the client now counts nonces itself
    w3 = client.w3
    # Another program with the same key sends a transaction with the next nonce.
    taken = w3.eth.get_transaction_count(client.sender, "pending")
    outside = w3.eth.account.sign_transaction(
        {
            "to": "0x" + "11" * 20, "value": 1, "gas": 21_000, "chainId": w3.eth.chain_id,
            "nonce": taken, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1,
        },
        node.accounts[8].private_key,
    )  # fmt: skip
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(outside.raw_transaction))
    job_id, tx = client.post_job("after", WEI, 600, 600)
    assert client.job(job_id).requester == client.sender
    assert w3.eth.get_transaction(tx.tx_hash)["nonce"] == taken + 1  # type: ignore[arg-type]


def test_a_chain_that_forgot_our_transactions_gets_the_nonce_it_expects(
    node: Anvil, deployment: Deployment
) -> None:
    # A devnet reverted to a snapshot (or a reorg) drops transactions this process counted;
    # sending with the counted nonce would sit in the node's queue for ever.
    client = client_of(node, deployment, 9)
    snapshot = client.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    client.post_job("forgotten", WEI, 600, 600)
    client.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    started = time.monotonic()
    job_id, _ = client.post_job("after the revert", WEI, 600, 600)
    assert time.monotonic() - started < 10
    assert client.job(job_id).requester == client.sender


def test_a_transaction_the_node_drops_fails_at_once_and_its_nonce_is_used_again(
    node: Anvil, deployment: Deployment
) -> None:
    # Found by bench/chaos.py's reorg row: a transaction whose block a reorg orphaned is gone
    # from anvil, and the sender waited the whole receipt timeout (120 s) for it.
    client = client_of(node, deployment, 8)
    client.receipt_timeout = 60
    rpc = client.rpc
    rpc.request("evm_setAutomine", [False])
    failure: list[BaseException] = []

    def post() -> None:
        try:
            client.post_job("spec-dropped", WEI, 600, 600)
        except BaseException as exc:  # the test checks which error
            failure.append(exc)

    try:
        sender = threading.Thread(target=post)
        started = time.monotonic()
        sender.start()
        while not rpc.request("txpool_content", [])["pending"]:
            time.sleep(0.05)
        pending = rpc.request("txpool_content", [])["pending"]
        ((dropped, nonce),) = [
            (tx["hash"], int(tx["nonce"], 16)) for txs in pending.values() for tx in txs.values()
        ]
        rpc.request("anvil_dropTransaction", [dropped])
        sender.join(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        rpc.request("evm_setAutomine", [True])
    assert [type(e) for e in failure] == [TxDropped], failure
    assert elapsed < 10  # not the receipt timeout
    _, tx = client.post_job("spec-after", WEI, 600, 600)  # the freed nonce, not a gap
    assert client.rpc.transaction(tx.tx_hash)["nonce"] == nonce


def test_a_transaction_queued_behind_an_orphaned_nonce_is_mined_once_the_gap_is_filled(
    node: Anvil, deployment: Deployment
) -> None:
    # Found by bench/chaos.py's full reorg row: an agent's finalize, given its nonce just
    # before a reorg orphaned the transaction before it, waited behind the vanished nonce for
    # the whole receipt timeout (120 s).
    client = client_of(node, deployment, 9)
    client.receipt_timeout = 60
    _, kept = client.post_job("spec-kept", WEI, 600, 600)
    _, orphaned = client.post_job("spec-orphaned", WEI, 600, 600)
    node.reorg(1)  # the second post's block goes: its nonce is free again
    # The race: this process handed out the next nonce before the reorg was seen.
    sequence = sequence_for(client.rpc_url, client.chain_id(), client.sender)
    gap_nonce = client.rpc.transaction(kept.tx_hash)["nonce"] + 2
    sequence._next, sequence._last_sent = gap_nonce, kept.tx_hash
    started = time.monotonic()
    job_id, queued = client.post_job("spec-queued", WEI, 600, 600)
    assert time.monotonic() - started < 15  # not the receipt timeout
    assert client.rpc.transaction(queued.tx_hash)["nonce"] == gap_nonce
    assert client.job(job_id).requester == client.sender


def test_a_receipt_is_asked_for_again_within_milliseconds_then_at_the_last_interval(
    node: Anvil, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An automining node mines a transaction a millisecond or two after taking it: waiting
    50 ms before asking again set every transaction of a sender 50 ms apart (21 posts/s from
    one thread). The node here answers "not mined" eight times, then the real receipt."""
    client = client_of(node, deployment, 8)
    request, not_yet = client.rpc.request, [8]

    def late_receipts(method: str, params: list[object]) -> object:
        if method == "eth_getTransactionReceipt" and not_yet[0]:
            not_yet[0] -= 1
            return None
        return request(method, params)

    slept: list[float] = []
    monkeypatch.setattr(client.rpc, "request", late_receipts)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(  # this module's waits only
        contract, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )
    job_id, tx = client.post_job("spec-late", WEI, 600, 600)
    assert client.job(job_id).state == JobState.OPEN and tx.block_number > 0
    assert slept[:5] == [0.002, 0.003, 0.005, 0.01, 0.02]  # 40 ms for the first five asks
    assert len(slept) >= 8 and set(slept[5:]) == {0.05}  # then as before (the node may lag)
