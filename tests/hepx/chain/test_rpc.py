"""Every call goes through Rpc.call: connection failures are retried exactly ``retries`` times
(web3's own retries are off, so they do not nest), and third-party errors arrive as hepx's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.chain import MarketClient, Rpc
from hepx.deployment import Deployment
from hepx.errors import ChainError, ChainUnavailable, NoContract, TxReverted


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[int]]]:
    """A TCP server on loopback that accepts every connection, counts it and never answers:
    each request times out (web3 itself retries timeouts, which is what must not nest)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = [0]
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_a_node_that_never_answers_costs_exactly_retries_attempts(
    silent_server: tuple[str, list[int]],
) -> None:
    url, accepted = silent_server
    rpc = Rpc(url, retries=3, backoff=0.01, timeout=0.2)
    with pytest.raises(ChainUnavailable, match="unreachable after 3 tries"):
        rpc.block_number()
    assert accepted[0] == 3  # not 3 x web3's own retries


def test_unknown_transaction_and_receipt_are_none_not_errors(
    node: Anvil, deployment: Deployment
) -> None:
    rpc = client_of(node, deployment, 0).rpc
    unknown = "0x" + "ab" * 32
    assert rpc.transaction(unknown) is None
    assert rpc.receipt(unknown) is None


def test_a_call_to_an_address_without_code_is_no_contract(node: Anvil) -> None:
    empty = MarketClient(node.url, node.accounts[5].address)
    with pytest.raises(NoContract, match="no contract answers"):
        empty.job_count()


def test_a_refused_call_is_tx_reverted_with_the_contracts_error_by_name(
    node: Anvil, deployment: Deployment
) -> None:
    worker = client_of(node, deployment, 4)
    with pytest.raises(TxReverted) as refused:
        worker.claim(10**9, 1)  # no such job
    assert refused.value.error is not None and refused.value.error.startswith("JobMarket")


def test_a_raw_request_the_node_refuses_is_a_chain_error(
    node: Anvil, deployment: Deployment
) -> None:
    rpc = client_of(node, deployment, 0).rpc
    with pytest.raises(ChainError, match="no_such_method failed"):
        rpc.request("no_such_method", [])
