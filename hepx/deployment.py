"""The deployment file: where the market lives on which chain, read by agent, API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hepx.errors import ConfigError
from hepx.files import write_atomic


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int
    rpc_url: str
    job_market: str
    deploy_block: int
    deploy_tx: str
    deployer: str
    challenge_window: int
    source_hash: str
    # Optional so deployment files written before them still load.
    registry: str | None = None  # the worker registry (the market itself implements it)
    test_token: str | None = None  # the devnet's open-mint ERC-20, if deployed
    stake_free_limit: int = 0  # wei; jobs above it need a stake of their price

    def save(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a file."""
        write_atomic(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.exists():
            raise ConfigError(
                f"no deployment file at {path}: deploy the contracts first "
                "(`hepx deploy --rpc URL`, or `hepx devnet up`), or set HEPX_DEPLOYMENT"
            )
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as exc:
            raise ConfigError(f"deployment file {path} is not valid: {exc}") from exc
