"""Views read by one raw eth_call (hepx/chain/views.py) answer exactly what web3's contract
call does, for every shape the market's views have (structs, arrays of structs, addresses,
bytes, booleans, several outputs), and cost one request instead of three."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.chain import MarketClient
from hepx.deployment import Deployment
from hepx.errors import TxReverted


def _sent_by(client: MarketClient, ask: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``ask()`` returns, and the methods of the requests it sent the node."""
    sent: list[str] = []
    provider = client.rpc._provider
    post = provider._post

    def counting(body: bytes) -> bytes:
        request = json.loads(body)
        sent.extend(r["method"] for r in (request if isinstance(request, list) else [request]))
        return post(body)

    provider._post = counting  # type: ignore[method-assign]
    try:
        return ask(), sent
    finally:
        provider._post = post  # type: ignore[method-assign]


def test_every_view_shape_reads_as_web3_reads_it_in_one_request(
    node: Anvil, deployment: Deployment
) -> None:
    client = client_of(node, deployment, 0)
    job, _ = client.post_job("bafyview", 10**15, 60, 60)
    sweep, _ = client.post_sweep(["bafya", "bafyb"], 10**12, 60, 60)
    calls = [
        ("getJob", (job,)), ("getTerms", (job,)), ("getAssignments", (job,)),
        ("getSweep", (sweep,)), ("getLot", (sweep,)), ("getWorker", (client.sender,)),
        ("jobCount", ()), ("withdrawable", (client.sender,)), ("disputeCourt", ()),
        ("commitmentOf", (job, client.sender, b"\1" * 32, b"\2" * 32)),
        ("hasKind", (client.sender, b"\0" * 32)), ("builtFor", ()),
    ]  # fmt: skip
    for function, args in calls:
        expected = client.contract.functions[function](*args).call()
        got, sent = _sent_by(client, partial(client.read, function, *args))
        assert got == expected or list(got) == list(expected), function
        assert sent == ["eth_call"], (function, sent)


def test_a_transaction_built_from_raw_requests_is_the_one_web3_builds(
    node: Anvil, deployment: Deployment
) -> None:
    """Same call data, gas (the estimate plus its margin), fees and chain; refusals still go
    through web3's path, which names the contract's error."""
    client = client_of(node, deployment, 0)
    functions = client.contract.functions
    for fn, value in [
        (functions.postSweep(["bafya", "bafyb"], 10**12, 60, 60), 2 * 10**12),
        (functions.register([b"\1" * 32]), 0),
    ]:
        lean = client._lean_tx(fn, client.sender, value, None)
        params = {"from": client.sender, "value": value, "chainId": client.chain_id()}
        web3_built = fn.build_transaction(params)
        assert lean is not None
        assert lean["data"] == web3_built["data"] and lean["to"] == web3_built["to"]
        assert lean["gas"] == int(web3_built["gas"] * 1.2) + 10_000
        for field in ("value", "chainId", "maxPriorityFeePerGas", "maxFeePerGas"):
            assert lean[field] == web3_built[field], field
    refused = functions.claimLot(10**9, 10**9, 1)  # no such sweep
    assert client._lean_tx(refused, client.sender, 0, None) is None
    with pytest.raises(TxReverted, match="SweepUnknown"):
        client.transact("claimLot", refused)


def test_a_claims_simulation_answers_as_web3s_call_in_one_request_and_names_a_refusal(
    node: Anvil, deployment: Deployment
) -> None:
    requester, worker = client_of(node, deployment, 0), client_of(node, deployment, 3)
    job, _ = requester.post_job("bafysim", 10**15, 60, 60)
    sweep, _ = requester.post_sweep(["bafya", "bafyb", "bafyc"], 10**12, 60, 60)
    calls = [("claimJobs", ([job, 10**9], [10**15, 10**15])), ("claimLot", (sweep, sweep, 2))]
    for function, args in calls:
        expected = worker.contract.functions[function](*args).call({"from": worker.sender})
        got, sent = _sent_by(worker, partial(worker.simulate, function, function, *args))
        assert got == expected and got, function  # claimLot: (lot, count); claimJobs: 1 held
        assert sent == ["eth_call"], (function, sent)
    with pytest.raises(TxReverted, match="SweepUnknown"):
        worker.simulate("claimLot", "claimLot", 10**9, 10**9, 1)
