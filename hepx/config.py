"""Settings from the environment (``HEPX_*``) and an optional file (``HEPX_CONFIG``, YAML).

Precedence: explicit arguments > environment > config file > defaults. Defaults are the local
devnet's, so a laptop needs no configuration at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def default_home() -> Path:
    return Path(os.environ.get("HEPX_HOME", Path.home() / ".hepx"))


class Settings(BaseSettings):
    """Everything the CLI, the agent and the API read from their environment."""

    model_config = SettingsConfigDict(env_prefix="HEPX_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Folder for hepx state")
    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC URL of the chain")
    ws_url: str | None = Field(
        None,
        description="WebSocket URL whose newHeads wake agents at once (default: the RPC URL's "
        "own port as ws://; 'none' to poll only)",
    )
    deployment: Path | None = Field(
        None, description="Deployment file (default: <home>/deployment.json)"
    )
    store_dir: Path | None = Field(None, description="Local blockstore (default: <home>/store)")
    store_backend: Literal["local", "kubo"] = Field(
        "local", description="Content store: the local blockstore or a kubo node"
    )
    kubo_url: str = Field("http://127.0.0.1:5001", description="Kubo RPC URL (backend kubo)")
    gateway_url: str | None = Field(
        None, description="Trustless gateway to fetch missing content from (e.g. the API URL)"
    )
    publish_url: str | None = Field(
        None,
        description="hepx API that a worker pushes each result's DAG to (a verified CAR) "
        "before it goes on chain; for workers whose store is not the API's",
    )
    pin_retention: float = Field(
        7 * 86400, ge=0, description="Seconds a settled job's spec/inputs/outputs stay pinned"
    )
    private_key: SecretStr | None = Field(
        None, description="Key that signs transactions (requester for the API, worker for agents)"
    )
    api_url: str = Field("http://127.0.0.1:8000", description="URL of the hepx REST API")
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token this client sends to the API (from `hepx api token new`); "
        "needed where the API asks for one",
    )
    api_host: str = Field(
        "127.0.0.1",
        description="Address the API listens on; beyond loopback, calls that spend or store "
        "need a token",
    )
    custodial: bool = Field(
        False,
        description="The API posts and disputes jobs paid from its own key (HEPX_PRIVATE_KEY) "
        "for callers without a wallet. Off: it only relays requests its callers signed",
    )
    tokens_path: Path | None = Field(
        None,
        description="Hashed API tokens, budgets and quotas (default: <home>/api-tokens.sqlite)",
    )
    write_rate_limit: int = Field(
        120,
        ge=0,
        description="Writes (POST) one client may make per minute before the API answers 429 "
        "with Retry-After; 0 = no limit",
    )
    rate_limit_loopback: bool = Field(
        False,
        description="Also limit clients on 127.0.0.0/8 and ::1 (a devnet's workers and runner "
        "share that address; behind a proxy on the same host, turn this on)",
    )
    max_spec_bytes: int = Field(
        1 << 20, gt=0, description="Largest job spec POST /jobs takes (413 above it)"
    )
    max_upload_bytes: int = Field(
        1 << 30, gt=0, description="Largest body POST /ipfs takes (413 above it)"
    )
    expire_lapsed: bool = Field(
        True,
        description="The API refunds its own jobs that lapsed (unclaimed past the claim "
        "deadline, or claimed and unsubmitted past the run deadline: a vanished worker)",
    )
    confirmations: int = Field(0, ge=0, description="Blocks an event must be buried under")
    poll_interval: float = Field(0.25, gt=0, description="Seconds between chain polls")
    index_path: Path | None = Field(
        None, description="SQLite index of market events (default: <home>/index.sqlite)"
    )
    keystore_dir: Path | None = Field(
        None, description="Encrypted account keystores (default: <home>/keystores)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file := os.environ.get("HEPX_CONFIG"):
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def deployment_path(self) -> Path:
        return self.deployment or self.home / "deployment.json"

    @property
    def store_path(self) -> Path:
        return self.store_dir or self.home / "store"

    @property
    def index_file(self) -> Path:
        return self.index_path or self.home / "index.sqlite"

    @property
    def keystore_path(self) -> Path:
        return self.keystore_dir or self.home / "keystores"

    @property
    def tokens_file(self) -> Path:
        return self.tokens_path or self.home / "api-tokens.sqlite"

    def api_headers(self) -> dict[str, str]:
        """What a client of the API sends with every call: its bearer token, if it has one."""
        if self.api_token is None or not self.api_token.get_secret_value():
            return {}
        return {"Authorization": f"Bearer {self.api_token.get_secret_value()}"}


def load_settings(**overrides: Any) -> Settings:
    """Settings with ``overrides`` (None values ignored) on top of environment and file."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
