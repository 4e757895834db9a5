"""Fixtures the agent tests share: a real anvil per module, a fresh market per test, a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hepx.anvil import Anvil, start_anvil
from hepx.chain import deploy_market
from hepx.deployment import Deployment
from hepx.store import LocalStore


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with start_anvil() as node:
        yield node


@pytest.fixture
def deployment(anvil: Anvil, tmp_path: Path) -> Deployment:
    """A fresh market (challenge window 1 s) whose deployment file is in ``tmp_path``."""
    deployed = deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=1)
    deployed.save(tmp_path / "deployment.json")
    return deployed


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)
