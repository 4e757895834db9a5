"""New heads over WebSocket wake an agent at once (hepx/chain/heads.py), on a real anvil;
without a WebSocket the agent polls as before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from agent.policy import Policy
from agent.worker import WorkerAgent
from hepx.anvil import Anvil, free_port, start_anvil
from hepx.chain import HeadWatcher, JobState, MarketClient, deploy_market, websocket_url
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with start_anvil() as node:
        yield node


def _mine(anvil: Anvil) -> None:
    requests.post(anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine",
                                   "params": []}, timeout=10)  # fmt: skip


def test_websocket_url_is_the_rpc_url_on_the_same_port() -> None:
    assert websocket_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert websocket_url("https://rpc.example/v1/key") == "wss://rpc.example/v1/key"
    assert websocket_url("ipc:///tmp/geth.ipc") is None


def test_a_new_block_wakes_the_watcher(anvil: Anvil) -> None:
    watcher = HeadWatcher(websocket_url(anvil.url)).start()
    try:
        assert watcher.subscribed.wait(10), "no subscription to anvil's newHeads"
        watcher.wait(0)  # forget anything before
        _mine(anvil)
        assert watcher.wait(10) and watcher.heads >= 1
    finally:
        watcher.stop()


def test_without_a_websocket_the_watcher_waits_out_the_poll_interval() -> None:
    watcher = HeadWatcher(f"ws://127.0.0.1:{free_port()}").start()  # nothing listens there
    try:
        assert watcher.wait(0.3) is False
        assert not watcher.subscribed.is_set()
    finally:
        watcher.stop()


def test_an_agent_with_a_long_poll_interval_still_takes_a_job_as_it_is_posted(
    anvil: Anvil, tmp_path: Path
) -> None:
    deployment = deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=5)
    store = LocalStore(tmp_path / "store", fsync=False)
    worker = MarketClient.from_deployment(deployment, private_key=anvil.accounts[2].private_key)
    policy = Policy.model_validate({"kinds": {"echo": {"price": 1}}})
    # A minute between polls: only the new head of the post can wake it in time.
    agent = WorkerAgent(worker, store, policy, tmp_path / "agent", deployment.deploy_block,
                        poll_interval=60, submit_margin=1)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert agent.heads.subscribed.wait(10)
        spec = parse_spec({
            "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "woken"},
            "params": {"message": "hi"}, "resources": {"max_runtime": 20},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 60},
        })  # fmt: skip
        key = anvil.accounts[1].private_key
        requester = MarketClient.from_deployment(deployment, private_key=key)
        job_id, _ = requester.post_job(store.add_bytes(canonical_json(spec)), 10**6, 60, 60)
        deadline = time.monotonic() + 30
        while requester.job(job_id).state == JobState.OPEN and time.monotonic() < deadline:
            time.sleep(0.1)
        assert requester.job(job_id).state != JobState.OPEN, "the agent slept through the post"
    finally:
        stop.set()
        thread.join(timeout=90)


def test_heads_gather_into_a_round_but_work_of_its_own_does_not_wait() -> None:
    watcher = HeadWatcher(None)
    began = time.monotonic()
    watcher.gather(0.3)  # nothing due: the whole gathering time
    assert time.monotonic() - began >= 0.3
    threading.Timer(0.05, watcher.wake).start()
    began = time.monotonic()
    watcher.gather(30)  # a result made ready meanwhile ends it
    assert time.monotonic() - began < 30
    watcher.wake()  # due before the next gathering: it does not wait at all
    assert watcher.wait(0) is True
    began = time.monotonic()
    watcher.gather(30)
    assert time.monotonic() - began < 30
