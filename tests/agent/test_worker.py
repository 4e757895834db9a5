"""The worker agent against a real anvil: what it claims, what it refuses, how it recovers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agent_helpers import AnswerLost, SteppedAgent

import hepx.digest as digest_module
from agent.phases import Phase
from agent.policy import Policy
from agent.waiting import WaitReason
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, deploy_market
from hepx.deployment import Deployment
from hepx.errors import ChainError, TxReverted
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

CID_OF_SPEC = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
POLICY = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "max_runtime": 60})


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _agent(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    state: Path,
    account: int = 1,
    slots: int | None = None,
) -> WorkerAgent:
    return SteppedAgent(
        _client(anvil, deployment, account),
        store,
        POLICY.model_copy(update={"slots": slots}) if slots else POLICY,
        state,
        start_block=deployment.deploy_block,
        poll_interval=0.05,
        submit_margin=1,
    )


def _past_the_challenge_window(client: MarketClient) -> None:
    """Move the chain's clock past the test market's challenge window (1 s) and mine."""
    client.w3.provider.make_request("evm_increaseTime", [5])  # type: ignore[arg-type]
    client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _echo(store: LocalStore, run_window: int = 60, max_runtime: int = 30, **params: object) -> str:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "echo",
            "metadata": {"name": "t"},
            "params": {"message": "hi", **params},
            "resources": {"max_runtime": max_runtime},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": run_window},
        }
    )
    return store.add_bytes(canonical_json(spec))


def _events(client: MarketClient, deployment: Deployment, job_id: int) -> list[str]:
    return [
        e.name for e in client.events(deployment.deploy_block, client.block_number(), job_id=job_id)
    ]


def test_agent_runs_echo_job_and_submits_a_result_that_holds_the_output(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hashed: list[str] = []  # the output files the canonical digest read
    file_sha256 = digest_module._file_sha256
    monkeypatch.setattr(
        digest_module, "_file_sha256", lambda path: hashed.append(path.name) or file_sha256(path)
    )
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    job = requester.job(job_id)
    assert job.state == JobState.SUBMITTED and job.price == 1000
    submitted = [
        e
        for e in requester.events(deployment.deploy_block, requester.block_number(), job_id=job_id)
        if e.name == "ResultSubmitted"
    ][0].args
    result = submitted["resultCid"]
    assert store.read_bytes(store.resolve(result, "outputs/message.txt")) == b"hi"
    provenance = json.loads(store.read_bytes(store.resolve(result, "provenance.json")))
    assert provenance["job_id"] == job_id and provenance["worker"] == agent.address
    # One digest of the outputs, for the provenance and the chain alike (it was made twice:
    # a physics job's ROOT file was read whole for each).
    assert provenance["digest"]["value"] == "0x" + bytes(submitted["digest"]).hex()
    assert sorted(hashed) == sorted(set(hashed)) and "message.txt" in hashed


def test_job_whose_spec_cannot_be_fetched_is_not_claimed(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    elsewhere = LocalStore(tmp_path / "other-store", fsync=False)
    job_id, _ = requester.post_job(
        _echo(elsewhere), 10**6, 60, 60
    )  # spec not in the worker's store
    with caplog.at_level(logging.INFO):
        _agent(anvil, deployment, store, tmp_path / "w").step()
    assert requester.job(job_id).state == JobState.OPEN
    assert "spec_unavailable" in caplog.text


def test_job_whose_spec_is_invalid_is_not_claimed(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(store.add_bytes(b'{"apiVersion": "hepx/v0"}'), 10**6, 60, 60)
    with caplog.at_level(logging.INFO):
        _agent(anvil, deployment, store, tmp_path / "w").step()
    assert requester.job(job_id).state == JobState.OPEN
    assert "invalid_spec" in caplog.text


def test_claim_refused_by_the_contract_is_logged_and_skipped(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    first, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    second, _ = requester.post_job(_echo(store, message="second"), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    rival = _client(anvil, deployment, 2)
    real_claim = agent.client.claim_jobs

    def rival_claims_first(prices: dict[int, int]):  # type: ignore[no-untyped-def]
        if first in prices:  # another worker's claim lands between our read and our claim
            rival.claim(first, 10)
        return real_claim(prices)

    agent.client.claim_jobs = rival_claims_first  # type: ignore[method-assign]
    sent_before = agent.client.w3.eth.get_transaction_count(agent.address)
    with caplog.at_level(logging.INFO):
        agent.step()
    assert f"event=claim_refused job={first}" in caplog.text
    assert "another worker was first" in caplog.text
    assert requester.job(first).worker == rival.sender
    assert first not in agent.book.jobs
    assert requester.job(second).state == JobState.SUBMITTED  # the agent carried on
    # The lost race cost no transaction at all (the simulation saw the rival's claim): the
    # agent sent only the second job's claim and result.
    assert agent.client.w3.eth.get_transaction_count(agent.address) == sent_before + 2


def test_jobs_posted_together_are_claimed_in_one_transaction(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    jobs = [requester.post_job(_echo(store, message=f"m{i}"), 10**6, 60, 60)[0] for i in range(3)]
    agent = _agent(anvil, deployment, store, tmp_path / "w", slots=4)  # all three at once
    agent.step()
    claim_txs = {agent.book.jobs[j]["claim_tx"] for j in jobs}
    assert len(claim_txs) == 1  # one claimJobs for the three
    assert all(requester.job(j).state == JobState.SUBMITTED for j in jobs)


def test_an_agent_killed_with_a_claim_queued_but_not_sent_claims_the_job_after_restart(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    killed = _agent(anvil, deployment, store, tmp_path / "w")
    # Reads the post, queues the claim, moves its cursor, and writes it.
    killed.follower.poll(killed.handle, killed.consider_posted)
    killed.follower.cursor.flush()
    assert killed.claim_queued_for(job_id)
    # SIGKILL here: the batch never went out, and the cursor is past the post.
    restarted = _agent(anvil, deployment, store, tmp_path / "w")
    restarted.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    assert requester.job(job_id).worker == restarted.address


def test_matured_results_are_settled_together_in_one_transaction(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    jobs = [requester.post_job(_echo(store, message=f"s{i}"), 10**6, 60, 60)[0] for i in range(3)]
    agent = _agent(anvil, deployment, store, tmp_path / "w", slots=4)
    agent.step()  # claims and submits all three
    _past_the_challenge_window(requester)
    head = agent.client.block_number()
    agent.step()
    assert all(requester.job(j).state == JobState.SETTLED for j in jobs)
    assert {agent.book.jobs[j]["phase"] for j in jobs} == {Phase.DONE}
    settling = {
        e.args["jobId"]: e.block_number
        for e in agent.client.events(head + 1, agent.client.block_number())
        if e.name == "JobSettled"
    }
    assert sorted(settling) == jobs and len(set(settling.values())) == 1  # one transaction


def test_a_refused_settlement_batch_is_retried_next_round_not_taken_for_an_outage(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    _past_the_challenge_window(requester)
    real_finalize = agent.client.finalize_jobs

    def out_of_gas(job_ids: list[int]):  # type: ignore[no-untyped-def]
        raise TxReverted(f"finalizeJobs {job_ids}: tx 0xabc reverted on chain")

    agent.client.finalize_jobs = out_of_gas  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        agent.step()  # does not raise: the loop would take a ChainError for an outage
    assert "event=settle_refused" in caplog.text
    assert agent.book.phase(job_id) == Phase.SUBMITTED
    agent.client.finalize_jobs = real_finalize  # type: ignore[method-assign]
    agent.step()
    assert requester.job(job_id).state == JobState.SETTLED
    assert agent.book.phase(job_id) == Phase.DONE


def test_a_batch_one_item_of_which_the_chain_refuses_is_claimed_item_by_item(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    good, _ = requester.post_job(_echo(store, message="good"), 10**6, 60, 60)
    cheap, _ = requester.post_job(_echo(store, message="cheap"), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w", slots=4)
    real_claim = agent.client.claim_jobs

    def overpriced(prices: dict[int, int]):  # type: ignore[no-untyped-def]
        # The agent asks more than the max for one job (as if its policy changed meanwhile).
        return real_claim({j: 10**7 if j == cheap else p for j, p in prices.items()})

    agent.client.claim_jobs = overpriced  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        agent.step()
    assert "event=claim_batch_refused" in caplog.text and "JobMarketPriceAboveMax" in caplog.text
    assert requester.job(good).state == JobState.SUBMITTED  # not lost with the batch
    assert requester.job(cheap).state == JobState.OPEN and cheap not in agent.book.jobs
    assert not agent.slots.holds(cheap)


def test_a_race_lost_after_the_simulation_is_skipped_on_chain_not_reverted(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    rival = _client(anvil, deployment, 2)
    real_transact = agent.client.transact

    def rival_lands_between_simulation_and_send(what: str, fn, **kw):  # type: ignore[no-untyped-def]
        if what.startswith("claimJobs"):  # after the eth_call that said "claimable"
            rival.claim(job_id, 10)
        return real_transact(what, fn, **kw)

    agent.client.transact = rival_lands_between_simulation_and_send  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        agent.step()
    assert f"event=claim_refused job={job_id}" in caplog.text
    assert requester.job(job_id).worker == rival.sender and job_id not in agent.book.jobs
    head = agent.client.block_number()
    mine = [
        r
        for n in range(head - 2, head + 1)
        for r in agent.client.rpc.request("eth_getBlockReceipts", [hex(n)]) or []
        if r["from"].lower() == agent.address.lower()
    ]
    assert [int(r["status"], 16) for r in mine] == [1]  # sent, mined, not reverted
    skipped = [e for e in agent.client.events(head, head) if e.name == "BatchItemSkipped"]
    assert [(e.job_id, e.args["caller"]) for e in skipped] == [(job_id, agent.address)]


def test_failed_job_is_expired_after_its_run_deadline_and_escrow_refunded(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(
        _echo(store, run_window=4, max_runtime=2, fail="boom"), 10**6, 60, 4
    )
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    assert agent.book.jobs[job_id]["phase"] == "failed"
    deadline = time.monotonic() + 15
    while requester.job(job_id).state != JobState.EXPIRED and time.monotonic() < deadline:
        time.sleep(0.5)
        agent.step()
    assert requester.job(job_id).state == JobState.EXPIRED
    assert requester.withdrawable(requester.sender) == 10**6
    assert "ResultSubmitted" not in _events(requester, deployment, job_id)


def test_hung_job_is_killed_at_its_timeout_and_reported_failed(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store, max_runtime=1, sleep_seconds=30), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    started = time.monotonic()
    agent.step()
    assert time.monotonic() - started < 15
    assert agent.book.jobs[job_id]["phase"] == "failed"
    assert "timed out" in agent.book.jobs[job_id]["error"]


def test_the_agent_reads_its_credit_only_once_something_was_paid_to_it(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No payment, no read of the agent's credit in its rounds; a payment made in another
    party's transaction (a refund to the agent's key, sent by another client of it) is seen
    in the chain's events, and the next round withdraws it."""
    agent = _agent(anvil, deployment, store, tmp_path / "w", account=5)
    agent.step()  # at its start it looks once
    reads: list[str] = []
    real = agent.client.withdrawable
    monkeypatch.setattr(agent.client, "withdrawable", lambda a: reads.append(a) or real(a))
    for _ in range(3):
        agent.step()
    assert reads == []
    own_key = _client(anvil, deployment, 5)  # not the agent's client: its receipts unseen
    job_id, _ = own_key.post_job(_echo(store), 10**6, 60, 60)
    own_key.cancel(job_id)
    assert own_key.withdrawable(agent.address) == 10**6
    agent.step()
    assert reads == [agent.address]  # once: its withdrawal is no credit to look for
    assert own_key.withdrawable(agent.address) == 0  # withdrawn


def test_earnings_are_withdrawn_at_most_once_per_interval_and_what_is_left_at_stop(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    """A withdrawal per payment cost a transaction and its fee per lot: within
    ``withdraw_every`` the credit waits in the contract, and the agent takes it when it stops."""
    agent = _agent(anvil, deployment, store, tmp_path / "w", account=6)
    agent.policy = POLICY.model_copy(update={"withdraw_every": 3600})
    agent.earnings.policy = agent.policy
    own_key = _client(anvil, deployment, 6)  # refunds to the agent's key credit the agent

    def credit() -> None:
        job_id, _ = own_key.post_job(_echo(store), 10**6, 60, 60)
        own_key.cancel(job_id)

    credit()
    agent.step()
    assert own_key.withdrawable(agent.address) == 0  # the first credit: at once
    credit()
    agent.step()
    agent.step()
    assert own_key.withdrawable(agent.address) == 10**6  # within the interval: it waits
    stop = threading.Event()
    stop.set()  # a loop that stops at once still withdraws on its way out
    agent.run(stop)
    assert own_key.withdrawable(agent.address) == 0


def test_agent_finalizes_after_challenge_window_and_withdraws_its_price(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    deadline = time.monotonic() + 15
    while requester.job(job_id).state != JobState.SETTLED and time.monotonic() < deadline:
        time.sleep(0.3)
        agent.step()
    assert requester.job(job_id).state == JobState.SETTLED
    assert requester.withdrawable(agent.address) == 0  # withdrawn in the same step
    assert requester.withdrawable(requester.sender) == 10**6 - 1000


def test_rpc_outage_does_not_kill_the_agent(
    store: LocalStore, tmp_path: Path, anvil: Anvil, deployment: Deployment
) -> None:
    client = MarketClient(
        "http://127.0.0.1:9", deployment.job_market, anvil.accounts[1].private_key, retries=1
    )
    agent = WorkerAgent(client, store, POLICY, tmp_path / "w", start_block=1, poll_interval=0.05)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    time.sleep(1.0)
    assert runner.is_alive()  # it logs the outage and keeps polling
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive()


def test_a_waiting_job_stays_waiting_when_the_chain_fails_while_it_is_considered_again(
    store: LocalStore, tmp_path: Path, anvil: Anvil, deployment: Deployment
) -> None:
    # Found by bench/chaos.py's outage row: the job left the waiting list before it was
    # considered, the RPC failed mid-way, and nobody ever took the job.
    down = MarketClient(
        "http://127.0.0.1:9", deployment.job_market, anvil.accounts[1].private_key, retries=1
    )
    agent = WorkerAgent(down, store, POLICY, tmp_path / "w", start_block=1)
    agent.waiting.put(WaitReason.SLOT, 7, CID_OF_SPEC)
    with pytest.raises(ChainError):
        agent.reconsider_waiting()
    assert agent.waiting.jobs[WaitReason.SLOT] == {7: CID_OF_SPEC}
    agent.waiting.flush()  # as the cursor's next write does
    restarted = WorkerAgent(down, store, POLICY, tmp_path / "w", start_block=1)
    assert restarted.waiting.jobs[WaitReason.SLOT] == {7: CID_OF_SPEC}


def test_a_claim_whose_answer_was_lost_is_found_on_chain_and_run(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    # Found by CI (three-slots-busy below): the agent was killed after its claim was mined
    # and before its book said so; after the restart nobody ran the job, which stayed claimed.
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    lossy = AnswerLost.from_deployment(deployment, private_key=anvil.accounts[1].private_key)
    first = SteppedAgent(lossy, store, POLICY, tmp_path / "w", start_block=deployment.deploy_block)
    with pytest.raises(ChainError):
        first.step()
    assert requester.job(job_id).state == JobState.CLAIMED
    restarted = _agent(anvil, deployment, store, tmp_path / "w")
    restarted.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    names = _events(requester, deployment, job_id)
    assert names.count("JobClaimed") == 1 and names.count("ResultSubmitted") == 1


def test_a_claim_that_never_reached_the_chain_leaves_the_job_to_be_claimed_again(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    spec_cid = _echo(store)
    job_id, _ = requester.post_job(spec_cid, 10**6, 60, 60)
    down = MarketClient(
        "http://127.0.0.1:9", deployment.job_market, anvil.accounts[1].private_key, retries=1
    )
    first = WorkerAgent(down, store, POLICY, tmp_path / "w", start_block=deployment.deploy_block)
    first.book.set(job_id, phase="claiming", spec_cid=spec_cid, price=1000)
    restarted = _agent(anvil, deployment, store, tmp_path / "w")
    restarted.follower.cursor.block = requester.block_number()  # the JobPosted is behind it
    restarted.step()
    assert requester.job(job_id).state == JobState.SUBMITTED


@pytest.mark.parametrize("jobs", [1, 3], ids=["one-job", "three-slots-busy"])
def test_agent_killed_mid_job_resumes_it_once_after_restart(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path, jobs: int
) -> None:
    requester = _client(anvil, deployment, 0)
    spec = _echo(store, sleep_seconds=3)
    job_ids = [requester.post_job(spec, 10**6, 60, 60)[0] for _ in range(jobs)]
    env = {
        **os.environ,
        "HEPX_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "HEPX_STORE_DIR": str(store.root),
        "HEPX_PRIVATE_KEY": anvil.accounts[1].private_key,
        "HEPX_POLL_INTERVAL": "0.05",
    }
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"kinds: {{echo: {{price: 1000}}}}\nslots: {jobs}\n")
    cmd = [
        sys.executable,
        "-m",
        "hepx",
        "agent",
        "run",
        "--state-dir",
        str(tmp_path / "w"),
        "--policy",
        str(policy),
    ]

    def states() -> set[JobState]:
        return {requester.job(j).state for j in job_ids}

    first = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 90  # a bound, not a timing: loaded CI machines are slow
    while states() != {JobState.CLAIMED} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert states() == {JobState.CLAIMED}
    os.killpg(first.pid, signal.SIGKILL)  # mid-job: each echo sleeps 3 s
    first.wait()
    assert states() == {JobState.CLAIMED}

    second = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90  # a bound, not a timing: loaded CI machines are slow
        while states() != {JobState.SETTLED} and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        log = second.communicate(timeout=60)[1]
    assert states() == {JobState.SETTLED}, log
    for job_id in job_ids:
        names = _events(requester, deployment, job_id)
        assert names.count("JobClaimed") == 1 and names.count("ResultSubmitted") == 1, job_id
    assert log.count("event=resuming") == jobs


def test_on_a_public_market_an_unstaked_agent_declines_paid_jobs_and_a_staked_one_claims(
    anvil: Anvil, store: LocalStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    public = deploy_market(anvil.url, anvil.accounts[0].private_key, 1, stake_free_limit=0)
    requester = _client(anvil, public, 0)
    job_id, _ = requester.post_job(_echo(store), 10**6, 60, 60)
    unstaked = _agent(anvil, public, store, tmp_path / "u", account=3)
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        unstaked.step()
    assert requester.job(job_id).state == JobState.OPEN  # no claim was even sent
    assert "needs a stake of 1000 wei" in caplog.text
    staked = _agent(anvil, public, store, tmp_path / "s", account=4)
    staked.client.register(["echo"], stake=10**6)
    staked.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    assert staked.client.worker(staked.address).locked == 1000  # its price, until settled
