"""The registry's calls and replicated jobs' results run MarketCalls' code in the market's
storage (the market's own code is at EIP-170's limit). Through the market they behave as
before (tests/contracts/test_protocol.py, test_draws.py, test_attacks.py: stakes, kinds,
unbonding, commit, reveal, tally, errors by name); here, the code contract called directly
holds nothing of the market's."""

from __future__ import annotations

from market_helpers import ETHER, Market, State
from web3 import Web3

from hepx.artifacts import load_artifact

KIND = Web3.keccak(text="echo")


def test_the_registry_code_called_directly_touches_nothing_of_the_market(
    market: Market, worker: str, stranger: str
) -> None:
    address = market.contract.functions.marketCalls().call()
    calls = market.w3.eth.contract(address=address, abi=load_artifact("MarketCalls").abi)
    tx = calls.functions.register([KIND]).transact({"from": stranger, "gas": 10**6})
    assert market.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    assert market.contract.functions.getWorker(stranger).call()[0] is False
    assert calls.functions.unbondDelay().call() == market.contract.functions.unbondDelay().call()
    # Nor can it be used to reach the market's stakes: its storage is its own.
    market.send(worker, "register", [], value=ETHER)
    assert calls.functions.getWorker(worker).call()[1] == 0


def test_the_replica_calls_called_directly_know_no_job_of_the_market(
    market: Market, requester: str, worker: str
) -> None:
    job_id = market.post(requester)
    address = market.contract.functions.marketCalls().call()
    calls = market.w3.eth.contract(address=address, abi=load_artifact("MarketCalls").abi)
    for fn in (calls.functions.finalize(job_id), calls.functions.commitResult(job_id, KIND)):
        tx = fn.transact({"from": worker, "gas": 10**6})
        assert market.w3.eth.wait_for_transaction_receipt(tx)["status"] == 0  # JobMarketUnknownJob
    assert market.job(job_id)["state"] == State.OPEN


def test_every_market_call_names_its_arguments_for_decoders() -> None:
    """The forwarding stubs name their (unused) parameters: the ABI takes argument names from
    the implementation, and explorers, the agent and the hostile suite decode calls by name."""
    abi = load_artifact("JobMarket").abi
    unnamed = [
        f"{entry['name']} argument {i}"
        for entry in abi
        if entry["type"] == "function"
        for i, arg in enumerate(entry["inputs"])
        if not arg["name"]
    ]
    assert unnamed == []
