"""Views read by one raw eth_call (hepx/chain/views.py) answer exactly what web3's contract
call does, for every shape the market's views have (structs, arrays of structs, addresses,
bytes, booleans, several outputs), and cost one request instead of three."""

from __future__ import annotations

from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.deployment import Deployment


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
    sent: list[str] = []
    make_request = client.w3.provider.make_request

    def counting(method: str, params: object) -> object:
        sent.append(method)
        return make_request(method, params)  # type: ignore[arg-type]

    for function, args in calls:
        expected = client.contract.functions[function](*args).call()
        sent.clear()
        client.w3.provider.make_request = counting  # type: ignore[method-assign,assignment]
        try:
            got = client.read(function, *args)
        finally:
            client.w3.provider.make_request = make_request  # type: ignore[method-assign]
        assert got == expected or list(got) == list(expected), function
        assert sent == ["eth_call"], (function, sent)
