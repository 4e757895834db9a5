"""Shared values for the API tests."""

from __future__ import annotations

from typing import Any

from hepx.chain import MarketClient


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


def stake_for_draws(workers: list[MarketClient], stake: int = 10**15) -> None:
    """Register ``workers`` for echo with ``stake``, before the job is posted: a replicated
    job's draw counts only stake bonded before its post, among workers of its kind."""
    for worker in workers:
        record = worker.worker(worker.sender)
        if not record.registered:
            worker.register(["echo"], stake=stake)
            continue
        if not worker.has_kind(worker.sender, "echo"):
            worker.set_kinds(["echo"])
        if record.available < stake:
            worker.add_stake(stake)


def seat_replicas(workers: list[MarketClient], job_id: int, price: int) -> None:
    """Each worker applies to the job's draw at ``price``; past the claim window the draw is
    awarded (the job then commits)."""
    node = workers[0].w3.provider
    node.make_request("evm_mine", [])  # type: ignore[arg-type]  # the seed is a later block's
    for worker in workers:
        worker.claim(job_id, price)
    wait = workers[0].job(job_id).deadline + 1 - workers[0].chain_now()
    node.make_request("evm_increaseTime", [max(0, int(wait) + 1)])  # type: ignore[arg-type]
    node.make_request("evm_mine", [])  # type: ignore[arg-type]
    workers[0].award(job_id)
