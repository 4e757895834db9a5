"""Agents on a real anvil and the real JobMarket: auctions, replicas with commit-reveal, stakes,
allowlists and ERC-20 jobs, including a restart between commit and reveal."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AnswerLost, SteppedAgent
from web3 import Web3

from agent.bidding import AWARD_GAS
from agent.host import Produced
from agent.policy import Policy
from agent.stake import ensure_stake
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import (
    AssignmentStatus,
    JobState,
    MarketClient,
    PaymentReason,
    TokenClient,
)
from hepx.deployment import Deployment
from hepx.digest import Digest
from hepx.errors import ChainError
from hepx.spec import JobSpec, canonical_json, parse_spec
from hepx.store import LocalStore
from hepx.terms import post_spec

MAX_PRICE = 10**6
STAKE = 10**16  # 0.01 ether
MIN_STAKE = 10**15
DRAW_WINDOW = 3  # a replicated job's claim window: its draw closes after it


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _policy(price: int = 1000, **extra: Any) -> Policy:
    return Policy.model_validate({"kinds": {"echo": {"price": price}}, "max_runtime": 60, **extra})


def _agent(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    state: Path,
    account: int,
    policy: Policy | None = None,
) -> WorkerAgent:
    return SteppedAgent(
        _client(anvil, deployment, account),
        store,
        policy or _policy(),
        state / f"worker-{account}",
        start_block=deployment.deploy_block,
        poll_interval=0.05,
        submit_margin=1,
    )


def _spec(store: LocalStore, **payment: Any) -> tuple[str, JobSpec]:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": "t"},
            "params": {"message": "replicated"},
            "resources": {"max_runtime": 20},
            "payment": {
                "max_price": MAX_PRICE,
                "claim_window": 60,
                "run_window": 60,
                **payment,
            },
        }
    )
    return store.add_bytes(canonical_json(spec)), spec


def _staked_agents(
    anvil: Anvil, deployment: Deployment, store: LocalStore, state: Path, accounts: tuple[int, ...]
) -> list[WorkerAgent]:
    """Agents staked as their policy says, before the job is posted: a replicated job's draw
    counts only stake bonded before its post."""
    agents = [_agent(anvil, deployment, store, state, a, _policy(stake=STAKE)) for a in accounts]
    for agent in agents:
        ensure_stake(agent.client, agent.policy)
    return agents


def _events(client: MarketClient, deployment: Deployment, job_id: int) -> list[Any]:
    return client.events(deployment.deploy_block, client.block_number(), job_id=job_id)


def _until(condition: Callable[[], bool], agents: list[WorkerAgent], timeout: float = 30) -> None:
    """Step the agents until ``condition`` holds (a failed test, not a hang, if it never does)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        for agent in agents:
            agent.step()
        time.sleep(0.2)


def _wait_past(client: MarketClient, job_id: int) -> None:
    """Sleep until the wall clock is past the job's current deadline."""
    time.sleep(max(0.0, client.job(job_id).deadline + 1.2 - time.time()))


def _statuses(client: MarketClient, job_id: int) -> dict[str, AssignmentStatus]:
    return {a.worker: a.status for a in client.assignments(job_id)}


# ---------------------------------------------------------------- auctions


def test_auction_three_agents_bid_the_lowest_wins_after_a_stranger_awards(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, mode="auction", claim_window=3)
    job_id, _ = post_spec(requester, cid, spec)
    agents = [
        _agent(anvil, deployment, store, tmp_path, account, _policy(price))
        for account, price in ((1, 3000), (2, 2000), (3, 1000))
    ]
    for agent in agents:  # each new bid is lower, so each one is placed
        agent.step()
    names = [e.name for e in _events(requester, deployment, job_id)]
    assert names.count("BidPlaced") == 3 and names.count("BidOutbid") == 2
    assert requester.job(job_id).state == JobState.OPEN

    _wait_past(requester, job_id)
    _client(anvil, deployment, 5).award(job_id, gas=AWARD_GAS)  # neither bidder nor requester
    job = requester.job(job_id)
    assert job.state == JobState.CLAIMED
    assert (job.worker, job.price) == (agents[2].address, 1000)

    _until(lambda: requester.job(job_id).state == JobState.SETTLED, agents)
    assert [a.book.jobs[job_id]["phase"] for a in agents] == ["done", "done", "done"]
    assert requester.withdrawable(requester.sender) == MAX_PRICE - 1000


def test_auction_bidder_awards_the_closed_auction_itself(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, mode="auction", claim_window=2)
    job_id, _ = post_spec(requester, cid, spec)
    agent = _agent(anvil, deployment, store, tmp_path, 1)
    agent.step()
    assert agent.book.jobs[job_id]["phase"] == "bid"
    _wait_past(requester, job_id)
    _until(lambda: requester.job(job_id).state == JobState.SETTLED, [agent])
    assert "JobClaimed" in [e.name for e in _events(requester, deployment, job_id)]


def test_a_bid_whose_answer_was_lost_is_found_on_chain_and_the_auction_carried_on(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, mode="auction", claim_window=2)
    job_id, _ = post_spec(requester, cid, spec)
    lossy = AnswerLost.from_deployment(deployment, private_key=anvil.accounts[1].private_key)
    first = SteppedAgent(lossy, store, _policy(), tmp_path / "worker-1", deployment.deploy_block)
    with pytest.raises(ChainError):
        first.step()
    assert first.book.jobs[job_id]["phase"] == "claiming"
    agent = _agent(anvil, deployment, store, tmp_path, 1)
    agent.step()
    assert agent.book.jobs[job_id]["phase"] == "bid"
    _wait_past(requester, job_id)
    _until(lambda: requester.job(job_id).state == JobState.SETTLED, [agent])
    names = [e.name for e in _events(requester, deployment, job_id)]
    assert names.count("BidPlaced") == 1 and names.count("JobClaimed") == 1


# ---------------------------------------------------------------- replicas


def test_three_of_three_equal_digests_settle_and_pay_all_three(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, replicas=3, quorum=3, reveal_window=30, claim_window=DRAW_WINDOW)
    agents = _staked_agents(anvil, deployment, store, tmp_path, (1, 2, 3))
    job_id, _ = post_spec(requester, cid, spec)
    _until(lambda: all("replica" in a.book.jobs.get(job_id, {}) for a in agents), agents, 60)

    assert requester.job(job_id).state == JobState.SETTLED
    assert set(_statuses(requester, job_id).values()) == {AssignmentStatus.PAID}
    events = _events(requester, deployment, job_id)
    settled = next(e for e in events if e.name == "ReplicasSettled").args
    assert settled["paidWorkers"] == 3 and settled["payment"] == 3000
    paid = {e.args["payee"] for e in events if e.name == "Payment" and e.args["reason"] == 1}
    assert paid == {a.address for a in agents}
    assert requester.withdrawable(requester.sender) == 3 * MAX_PRICE - 3000
    assert all(a.book.jobs[job_id]["replica"] == "paid" for a in agents)


def test_two_of_three_slashes_the_worker_that_reveals_another_digest(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, replicas=3, reveal_window=30, min_stake=MIN_STAKE,
                      claim_window=DRAW_WINDOW)  # fmt: skip
    agents = _staked_agents(anvil, deployment, store, tmp_path, (1, 2, 3))
    job_id, _ = post_spec(requester, cid, spec)
    liar = agents[1]
    honest_result = liar.produce_result

    def lying_result(job_id: int, spec_cid: str, spec: JobSpec | None = None) -> Produced | None:
        produced = honest_result(job_id, spec_cid, spec)
        lie = Digest("sha256", "0x" + "13" * 32)
        return None if produced is None else dataclasses.replace(produced, digest=lie)

    liar.produce_result = lying_result  # type: ignore[method-assign]
    _until(lambda: requester.job(job_id).state.final, agents, timeout=60)

    assert requester.job(job_id).state == JobState.SETTLED
    statuses = _statuses(requester, job_id)
    assert statuses.pop(liar.address) == AssignmentStatus.SLASHED
    assert set(statuses.values()) == {AssignmentStatus.PAID}
    assert requester.worker(liar.address).stake == STAKE - MIN_STAKE
    honest = requester.worker(agents[0].address)
    assert (honest.stake, honest.locked) == (STAKE, 0)
    # The requester gets back what the two honest workers were not paid, and not the liar's
    # stake: that is split between the two honest replicas, beside their price.
    assert requester.withdrawable(requester.sender) == 3 * MAX_PRICE - 2000
    shares = {
        e.args["payee"]: e.args["amount"]
        for e in _events(requester, deployment, job_id)
        if e.name == "Payment" and e.args["reason"] == PaymentReason.SLASH
    }
    assert shares == {agents[0].address: MIN_STAKE // 2, agents[2].address: MIN_STAKE // 2}


def test_agent_killed_between_commit_and_reveal_reveals_after_restart(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, replicas=2, quorum=2, reveal_window=60, claim_window=DRAW_WINDOW)
    for account in (1, 2):  # replicas are drawn among workers staked before the post
        ensure_stake(_client(anvil, deployment, account), _policy(stake=STAKE))
    env = {
        **os.environ,
        "HEPX_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "HEPX_STORE_DIR": str(store.root),
        "HEPX_PRIVATE_KEY": anvil.accounts[1].private_key,
        "HEPX_POLL_INTERVAL": "0.05",
    }
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"kinds: {{echo: {{price: 1000}}}}\nstake: {STAKE}\n")
    cmd = [sys.executable, "-m", "hepx", "agent", "run", "--state-dir", str(tmp_path / "a")]
    cmd += ["--policy", str(policy)]
    first = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, start_new_session=True)
    job_id, _ = post_spec(requester, cid, spec)
    other = _agent(anvil, deployment, store, tmp_path, 2)
    address = Web3.to_checksum_address(anvil.accounts[1].address)
    try:
        _until(lambda: requester.terms(job_id).assigned == 1, [], timeout=30)
        other.client.claim(job_id, 1000)  # the draw's second seat
        _wait_past(requester, job_id)
        _until(lambda: requester.job(job_id).state == JobState.COMMITTING, [], timeout=30)
        _until(lambda: _statuses(requester, job_id)[address] == AssignmentStatus.COMMITTED, [])
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # committed, not revealed: reveals wait for `other`
        first.communicate()
    assert requester.job(job_id).state == JobState.COMMITTING

    other.book.set(job_id, phase="claiming")  # claimed by hand above
    other.book.set(job_id, phase="replica", spec_cid=cid)
    other.step()  # runs, commits (all committed: reveals open) and reveals
    assert _statuses(requester, job_id)[other.address] == AssignmentStatus.REVEALED

    second = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _until(lambda: requester.job(job_id).state.final, [], timeout=30)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        log = second.communicate(timeout=20)[1].decode()
    assert requester.job(job_id).state == JobState.SETTLED, log
    assert set(_statuses(requester, job_id).values()) == {AssignmentStatus.PAID}
    mine = [
        e.name for e in _events(requester, deployment, job_id) if e.args.get("worker") == address
    ]
    assert mine.count("ResultCommitted") == 1 and mine.count("ResultRevealed") == 1
    assert "event=revealed" in log


# ---------------------------------------------------------------- stakes, allowlists, tokens


def test_agent_registers_its_stake_and_kinds_then_tops_up_to_a_larger_policy(
    anvil: Anvil, deployment: Deployment
) -> None:
    client = _client(anvil, deployment, 4)
    ensure_stake(client, _policy(stake=STAKE))
    record = client.worker(client.sender)
    assert record.registered and record.stake == STAKE
    assert client.has_kind(client.sender, "echo") and not client.has_kind(
        client.sender, "hep.pythia"
    )
    bigger = Policy.model_validate(
        {"kinds": {"echo": {"price": 1}, "hep.pythia": {"price": 1}}, "stake": 3 * STAKE}
    )
    ensure_stake(client, bigger)
    assert client.worker(client.sender).stake == 3 * STAKE
    assert client.has_kind(client.sender, "hep.pythia")


def test_an_unstaked_agent_registers_without_stake_so_its_peers_know_it(
    anvil: Anvil, deployment: Deployment
) -> None:
    client = _client(anvil, deployment, 8)
    ensure_stake(client, _policy())
    record = client.worker(client.sender)
    assert record.registered and record.stake == 0
    assert client.has_kind(client.sender, "echo")
    ensure_stake(client, _policy())  # started again: nothing more to send
    assert client.worker(client.sender) == record


def test_worker_below_the_min_stake_does_not_claim_and_a_staked_one_does(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    cid, spec = _spec(store, min_stake=MIN_STAKE)
    job_id, _ = post_spec(requester, cid, spec)
    poor = _agent(anvil, deployment, store, tmp_path, 1)
    with caplog.at_level(logging.INFO):
        poor.step()
    assert requester.job(job_id).state == JobState.OPEN
    assert "min stake" in caplog.text
    assert job_id not in poor.book.jobs

    rich = _agent(anvil, deployment, store, tmp_path, 2, _policy(stake=STAKE))
    ensure_stake(rich.client, rich.policy)
    rich.step()
    assert requester.job(job_id).worker == rich.address
    assert requester.worker(rich.address).locked == MIN_STAKE
    _until(lambda: requester.job(job_id).state == JobState.SETTLED, [rich])
    assert requester.worker(rich.address).locked == 0  # released when paid


def test_allowlisted_job_is_taken_only_by_a_listed_worker(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    listed = [anvil.accounts[i].address for i in (2, 5, 6)]
    cid, spec = _spec(store, allowlist=listed)
    job_id, _ = post_spec(requester, cid, spec)
    outsider = _agent(anvil, deployment, store, tmp_path, 1)
    with caplog.at_level(logging.INFO):
        outsider.step()
    assert requester.job(job_id).state == JobState.OPEN
    assert "not on the job's allowlist" in caplog.text
    insider = _agent(anvil, deployment, store, tmp_path, 2)
    insider.step()  # claims with a Merkle proof the contract checks
    assert requester.job(job_id).worker == insider.address
    assert requester.job(job_id).state == JobState.SUBMITTED


def test_erc20_job_escrows_pays_and_refunds_in_the_token(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    assert deployment.test_token is not None  # deployed on a devnet chain
    key = anvil.accounts[0].private_key
    token = TokenClient(anvil.url, deployment.test_token, key)
    requester = _client(anvil, deployment, 0)
    token.mint(requester.sender, 10 * MAX_PRICE)
    cid, spec = _spec(store, token=deployment.test_token)
    job_id, _ = post_spec(requester, cid, spec)  # approves the escrow, then posts
    market = requester.address
    assert token.balance_of(market) == MAX_PRICE
    assert token.balance_of(requester.sender) == 9 * MAX_PRICE

    eth_only = _agent(anvil, deployment, store, tmp_path, 1)
    eth_only.step()
    assert requester.job(job_id).state == JobState.OPEN  # its policy takes no tokens

    agent = _agent(anvil, deployment, store, tmp_path, 2, _policy(tokens=[deployment.test_token]))
    _until(lambda: requester.job(job_id).state == JobState.SETTLED, [agent])
    agent.step()  # withdraws its token credit
    assert token.balance_of(agent.address) == 1000
    assert requester.token_withdrawable(deployment.test_token, requester.sender) == MAX_PRICE - 1000
    assert token.balance_of(market) == MAX_PRICE - 1000  # the requester's credit, nothing else
