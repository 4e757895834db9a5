"""JobMarket tests on a real anvil: one node and deployment per session, a snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("market_helpers")

from market_helpers import CHALLENGE_WINDOW, NO_STAKE_LIMIT, Market, deploy  # noqa: E402
from web3 import Web3  # noqa: E402

from hepx.anvil import Anvil, start_anvil  # noqa: E402
from hepx.artifacts import load_artifact  # noqa: E402


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


def _deploy_market(node: Anvil, stake_free_limit: int = NO_STAKE_LIMIT) -> Market:
    w3 = Web3(Web3.HTTPProvider(node.url))
    accounts = [Web3.to_checksum_address(a.address) for a in node.accounts]
    artifact = load_artifact("JobMarket")
    receipt = deploy(w3, artifact, accounts[0], CHALLENGE_WINDOW, stake_free_limit)
    assert receipt["status"] == 1, "JobMarket deployment failed"
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    return Market(w3, contract, artifact, accounts)


def _rolled_back(market: Market) -> Iterator[Market]:
    """``market``, rolled back after the test (chain state and balances)."""
    snapshot = market.rpc("evm_snapshot")
    try:
        yield market
    finally:
        assert market.rpc("evm_revert", snapshot) is True


@pytest.fixture(scope="session")
def deployed_market(anvil_node: Anvil) -> Market:
    return _deploy_market(anvil_node)


@pytest.fixture(scope="session")
def deployed_public_market(anvil_node: Anvil) -> Market:
    """A market deployed as on a public chain: stake-free limit 0, every paid job staked."""
    return _deploy_market(anvil_node, stake_free_limit=0)


@pytest.fixture
def public_market(deployed_public_market: Market) -> Iterator[Market]:
    yield from _rolled_back(deployed_public_market)


@pytest.fixture
def market(deployed_market: Market) -> Iterator[Market]:
    """The session's market, rolled back after the test (chain state and balances)."""
    yield from _rolled_back(deployed_market)


@pytest.fixture
def requester(market: Market) -> str:
    return market.accounts[1]


@pytest.fixture
def worker(market: Market) -> str:
    return market.accounts[2]


@pytest.fixture
def stranger(market: Market) -> str:
    return market.accounts[3]
