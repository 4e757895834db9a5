"""Results go out a round at a time (agent/settlement.py): every ready result of a round in
one submitResults, which also settles the worker's matured results; a result is booked ready
before it is sent, so a kill costs no run, and one the chain no longer takes is skipped, not
reverted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from agent_helpers import SteppedAgent, client_of

from agent.phases import Phase
from agent.policy import Policy
from agent.settlement import heard, submit_and_settle
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, MarketEvent, deploy_market
from hepx.deployment import Deployment
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

POLICY = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "max_runtime": 60, "slots": 4})


def _agent(anvil: Anvil, deployment: Deployment, store: LocalStore, state: Path) -> SteppedAgent:
    return SteppedAgent(client_of(anvil, deployment, 1), store, POLICY, state,
                        start_block=deployment.deploy_block, poll_interval=0.05,
                        submit_margin=1)  # fmt: skip


def _post(requester: MarketClient, store: LocalStore, message: str, run_window: int = 60) -> int:
    spec = parse_spec({
        "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "t"},
        "params": {"message": message}, "resources": {"max_runtime": 30},
        "payment": {"max_price": 10**6, "claim_window": 60, "run_window": run_window},
    })  # fmt: skip
    return requester.post_job(store.add_bytes(canonical_json(spec)), 10**6, 60, run_window)[0]


def _warp(client: MarketClient, seconds: int) -> None:
    client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _jobs_read(agent: SteppedAgent, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The job of each read of the chain's job record the agent makes from now on."""
    asked: list[int] = []
    real = agent.client.job
    monkeypatch.setattr(agent.client, "job", lambda j: asked.append(j) or real(j))
    return asked


def _run_without_sending(agent: SteppedAgent) -> None:
    """One loop round and its jobs' runs, but no round after: the results stay ready (an
    agent killed between its jobs' end and its next round)."""
    WorkerAgent.step(agent)
    agent.slots.join(timeout=120)


def test_a_rounds_results_go_out_in_one_transaction_that_settles_the_matured_ones(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    first = [_post(requester, store, f"a{i}") for i in range(2)]
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()
    assert {requester.job(j).state for j in first} == {JobState.SUBMITTED}
    assert len({agent.book.jobs[j]["submit_tx"] for j in first}) == 1  # one submitResults
    _warp(requester, 5)  # past the test market's challenge window
    later = _post(requester, store, "b")
    agent.step()
    tx = agent.book.jobs[later]["submit_tx"]
    receipt = requester.w3.eth.get_transaction_receipt(tx)
    settled = [e for e in requester.events(receipt["blockNumber"], receipt["blockNumber"])
               if e.name == "JobSettled" and e.tx_hash == tx]  # fmt: skip
    assert sorted(e.args["jobId"] for e in settled) == first  # no separate finalize
    assert {agent.book.phase(j) for j in first} == {Phase.DONE}


def test_an_agent_killed_with_a_result_ready_sends_it_after_restart_without_running_again(
    anvil: Anvil,
    deployment: Deployment,
    store: LocalStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id = _post(requester, store, "once")
    killed = _agent(anvil, deployment, store, tmp_path / "w")
    _run_without_sending(killed)
    assert killed.book.phase(job_id) == Phase.READY
    assert requester.job(job_id).state == JobState.CLAIMED
    with caplog.at_level(logging.INFO, logger="hepx.agent"):
        restarted = _agent(anvil, deployment, store, tmp_path / "w")
        restarted.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    assert "event=running" not in caplog.text  # the stored result went out, no second run
    assert restarted.book.jobs[job_id]["result_cid"] == killed.book.jobs[job_id]["result_cid"]


def test_a_ready_result_past_its_run_deadline_is_skipped_on_chain_and_the_job_failed(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, deployment, 0)
    job_id = _post(requester, store, "late", run_window=30)
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    _run_without_sending(agent)
    _warp(requester, 40)  # the agent was stopped past the run deadline
    sent = requester.w3.eth.get_transaction_count(agent.address)
    agent.step()
    # The batch was mined (no reverted transaction), the job skipped and booked failed; it
    # is then expired (its escrow back to the requester) like any failed job.
    assert requester.w3.eth.get_transaction_count(agent.address) >= sent + 1
    assert agent.book.phase(job_id) in (Phase.FAILED, Phase.DONE)
    assert "ResultSubmitted" not in [
        e.name for e in requester.events(deployment.deploy_block, requester.block_number(),
                                         job_id=job_id)
    ]  # fmt: skip
    agent.step()
    assert requester.job(job_id).state == JobState.EXPIRED


def test_a_submitted_job_is_read_only_after_its_challenge_window_or_an_event_about_it(
    anvil: Anvil, store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=600)
    requester = client_of(anvil, market, 0)
    accepted, left = _post(requester, store, "x"), _post(requester, store, "y")
    agent = _agent(anvil, market, store, tmp_path / "w")
    agent.step()  # claims, runs and submits both
    asked = _jobs_read(agent, monkeypatch)
    agent.step()
    assert asked == []  # both in their windows: a round reads neither
    requester.accept(accepted)
    agent.step()
    assert asked == [accepted] and agent.book.phase(accepted) == Phase.DONE
    assert agent.book.phase(left) == Phase.SUBMITTED
    _warp(requester, 605)
    agent.step()  # its window over: read, and settled
    assert left in asked and agent.book.phase(left) == Phase.DONE
    assert requester.job(left).state == JobState.SETTLED


def test_a_result_is_settled_in_the_first_block_past_its_challenge_window(
    anvil: Anvil, store: LocalStore, tmp_path: Path
) -> None:
    market = deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=600)
    requester = client_of(anvil, market, 0)
    job_id = _post(requester, store, "z")
    agent = _agent(anvil, market, store, tmp_path / "w")
    agent.step()  # claims, runs and submits it
    end = int(agent.book.jobs[job_id]["challenge_end"])
    # The next block carries end + 1, the first time past the window (the pending block's).
    requester.w3.provider.make_request("evm_setNextBlockTimestamp", [end + 1])  # type: ignore[arg-type]
    agent.step()
    assert requester.job(job_id).state == JobState.SETTLED
    done = requester.w3.eth.get_block(agent.book.jobs[job_id]["done_block"])
    assert done["timestamp"] == end + 1  # not a second later


def test_a_matured_result_waiting_to_ride_is_read_once_until_an_event_or_a_skip(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    requester = client_of(anvil, deployment, 0)
    job_id = _post(requester, store, "rides")
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    agent.step()  # claims, runs and submits it
    _warp(requester, 5)  # past the test market's challenge window
    asked = _jobs_read(agent, monkeypatch)

    def round_with_a_job_running() -> None:  # its matured result waits for that job's
        submit_and_settle(agent.client, agent.book, agent.recovery, running=True)

    round_with_a_job_running()
    round_with_a_job_running()
    round_with_a_job_running()
    assert asked == [job_id]  # read once past its window, not every round
    heard(agent.book, MarketEvent("JobDisputed", {"jobId": job_id}, 0, "0x", 0))
    round_with_a_job_running()
    assert asked == [job_id, job_id]  # an event about it: read again
    submit_and_settle(agent.client, agent.book, agent.recovery, running=False)
    assert requester.job(job_id).state == JobState.SETTLED
    assert agent.book.phase(job_id) == Phase.DONE


def test_a_matured_result_a_reorg_took_back_is_read_again_after_the_chain_skips_it(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    requester = client_of(anvil, deployment, 0)
    job_id = _post(requester, store, "reorged")
    agent = _agent(anvil, deployment, store, tmp_path / "w")
    _run_without_sending(agent)  # claimed on chain, its result ready
    before_submission = requester.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    agent.step()
    _warp(requester, 5)
    submit_and_settle(agent.client, agent.book, agent.recovery, running=True)
    assert agent.book.jobs[job_id].get("matured")  # read once, waiting to ride
    requester.w3.provider.make_request("evm_revert", [before_submission])  # type: ignore[arg-type]
    _warp(requester, 5)  # the submission is gone; the job is claimed again
    asked = _jobs_read(agent, monkeypatch)
    submit_and_settle(agent.client, agent.book, agent.recovery, running=False)
    assert asked == [] and requester.job(job_id).state == JobState.CLAIMED  # skipped on chain
    submit_and_settle(agent.client, agent.book, agent.recovery, running=False)
    assert asked == [job_id]  # read again: found claimed, and its result sent again
    assert requester.job(job_id).state == JobState.SUBMITTED
