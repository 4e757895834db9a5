"""Core tests that need a chain: a real anvil and the real JobMarket, one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hepx.anvil import Anvil, start_anvil
from hepx.chain import deploy_market
from hepx.deployment import Deployment


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    anvil = start_anvil()
    try:
        yield anvil
    finally:
        anvil.stop()


@pytest.fixture(scope="module")
def deployment(node: Anvil) -> Deployment:
    return deploy_market(node.url, node.accounts[0].private_key, challenge_window=1)
