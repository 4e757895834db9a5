"""Helpers shared by the chain-client tests."""

from __future__ import annotations

from hepx.anvil import Anvil
from hepx.chain import MarketClient
from hepx.deployment import Deployment


def client_of(node: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=node.accounts[account].private_key)
