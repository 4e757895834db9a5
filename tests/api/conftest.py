"""API tests against a real anvil with the real JobMarket and a real store in a temp folder.

One anvil and one deployment per session (posting jobs is cheap and ids only grow, so tests
never depend on absolute ids); a fresh store and app per test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from hepx.anvil import Anvil, free_port, start_anvil
from hepx.chain import MarketClient, deploy_market
from hepx.config import Settings
from hepx.deployment import Deployment
from hepx.store import LocalStore


@pytest.fixture(scope="session")
def node() -> Iterator[Anvil]:
    anvil = start_anvil()
    try:
        yield anvil
    finally:
        anvil.stop()


@pytest.fixture(scope="session")
def deployment(node: Anvil) -> Deployment:
    return deploy_market(node.url, node.accounts[0].private_key)


@pytest.fixture(scope="session")
def deployment_file(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deploy") / "deployment.json"
    deployment.save(path)
    return path


@pytest.fixture
def make_settings(node: Anvil, deployment_file: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the test's app; keyword overrides replace single fields."""

    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "home": tmp_path / "home",
            "rpc_url": node.url,
            "deployment": deployment_file,
            "store_dir": tmp_path / "store",
            "private_key": node.accounts[0].private_key,
            # The API's own key posts plain specs (a gateway's setup); tests of the rules
            # around it (tokens, custodial off) set their own.
            "custodial": True,
            # Starlette's test client is not on loopback: API tests are not rate limited
            # unless they say so (tests/api/test_api_limits.py).
            "write_rate_limit": 0,
        }
        fields.update(overrides)
        return Settings(**fields)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def store(settings: Settings) -> LocalStore:
    """The same folder the app stores into, opened directly."""
    return LocalStore(settings.store_path, fsync=False)


@pytest.fixture
def market_as(node: Anvil, deployment: Deployment) -> Callable[[int], MarketClient]:
    """A MarketClient signing with dev account ``i`` (0 is the API's requester)."""

    def make(i: int) -> MarketClient:
        return MarketClient(node.url, deployment.job_market, node.accounts[i].private_key)

    return make


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """The app served by a real uvicorn, for what only a real HTTP connection shows."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
