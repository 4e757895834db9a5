"""Shared values for the API tests."""

from __future__ import annotations

from typing import Any


def echo_spec(**payment: Any) -> dict[str, Any]:
    """A valid echo spec; ``payment`` fields override the defaults."""
    return {
        "apiVersion": "hepx/v1",
        "kind": "echo",
        "metadata": {"name": "api-test"},
        "params": {"message": "hello"},
        "inputs": [],
        "resources": {"max_runtime": 60},
        "payment": {"max_price": "0.01 ether", "claim_window": 300, "run_window": 600, **payment},
    }
