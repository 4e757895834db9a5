"""Agents serve on dispute panels by themselves (agent/verification.py), on a real anvil.

Three honest agents with stakes hear a JobDisputed, volunteer, re-run the echo job, compare
their outputs with the worker's published result, commit, reveal and resolve: a made-up
result is refuted (its worker slashed, the requester refunded), an honest one upheld (the
requester's bond pays the panel). Before the court nothing could refuse a result.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from agent_helpers import SteppedAgent, client_of

from agent.policy import Policy
from agent.stake import ensure_stake
from hepx.anvil import Anvil
from hepx.chain import (
    CourtClient,
    DisputeState,
    JobState,
    MarketClient,
    PaymentReason,
    Verdict,
    deploy_market,
)
from hepx.deployment import Deployment
from hepx.digest import digest_bytes32
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

ETHER = 10**18
PRICE = ETHER // 50  # above the devnet's stake-free limit: the worker and verifiers lock it
STAKE = ETHER // 5
WINDOW = 30  # challenge window: also each dispute phase
# The verifiers ask more than the job pays, so they never claim it; they still verify echo.
VERIFIER_POLICY = Policy.model_validate({"kinds": {"echo": {"price": ETHER}}, "stake": STAKE})
WORKER_POLICY = Policy.model_validate({"kinds": {"echo": {"price": PRICE}}, "stake": STAKE})


@pytest.fixture
def market(anvil: Anvil, tmp_path: Path) -> Deployment:
    return deploy_market(anvil.url, anvil.accounts[0].private_key, challenge_window=WINDOW)


def _agent(anvil: Anvil, market: Deployment, store: LocalStore, state: Path, account: int,
           policy: Policy) -> SteppedAgent:  # fmt: skip
    agent = SteppedAgent(
        client_of(anvil, market, account), store, policy, state,
        start_block=market.deploy_block, poll_interval=0.05, submit_margin=1,
    )  # fmt: skip
    ensure_stake(agent.client, policy)
    return agent


def _post_echo(requester: MarketClient, store: LocalStore) -> tuple[int, str]:
    spec_cid = _echo_spec(store)
    job_id, _ = requester.post_job(spec_cid, PRICE, 60, 60)
    return job_id, spec_cid


def _echo_spec(store: LocalStore) -> str:
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "disputed"},
            "params": {"message": "the answer is 42"}, "resources": {"max_runtime": 20},
            "payment": {"max_price": PRICE, "claim_window": 60, "run_window": 60},
        }
    )  # fmt: skip
    return store.add_bytes(canonical_json(spec))


def _panel(
    anvil: Anvil, market: Deployment, store: LocalStore, tmp_path: Path
) -> list[SteppedAgent]:
    agents = [
        _agent(anvil, market, store, tmp_path / f"v{i}", 4 + i, VERIFIER_POLICY) for i in range(3)
    ]
    anvil_rpc(anvil, "evm_increaseTime", 2)  # their stakes predate the dispute
    anvil_rpc(anvil, "evm_mine")
    return agents


def anvil_rpc(anvil: Anvil, method: str, *params: object) -> object:
    reply = requests.post(anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                            "params": list(params)}, timeout=10).json()  # fmt: skip
    assert "error" not in reply, reply
    return reply["result"]


def _rewards(client: MarketClient, market: Deployment, job_id: int) -> dict[str, int]:
    """Each verifier's VerifierReward credit for ``job_id`` (the agents withdraw as they go)."""
    paid: dict[str, int] = {}
    for event in client.events(market.deploy_block, client.block_number(), job_id=job_id):
        if event.name == "Payment" and event.args["reason"] == PaymentReason.VERIFIER_REWARD:
            payee = str(event.args["payee"])
            paid[payee] = paid.get(payee, 0) + int(event.args["amount"])
    return paid


def _until_resolved(
    anvil: Anvil, court: CourtClient, job_id: int, agents: list[SteppedAgent]
) -> None:
    """Step the panel, moving the chain's clock past each phase's deadline in turn."""
    for _ in range(12):
        for agent in agents:
            agent.step()
        dispute = court.dispute(job_id)
        assert dispute is not None
        if dispute.state == DisputeState.RESOLVED:
            # The seats that stepped before the verdict read it in their next step (on a
            # loaded machine the reveal deadline, not the last reveal, can make it due).
            for agent in agents:
                agent.step()
            return
        anvil_rpc(anvil, "evm_increaseTime", WINDOW // 2)
        anvil_rpc(anvil, "evm_mine")
    raise AssertionError(f"dispute of job {job_id} not resolved: {court.dispute(job_id)}")


def test_a_panel_of_agents_refutes_a_made_up_result_and_the_worker_is_slashed(
    anvil: Anvil, market: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester, cheat = client_of(anvil, market, 1), client_of(anvil, market, 2)
    ensure_stake(cheat, WORKER_POLICY)
    panel = _panel(anvil, market, store, tmp_path)
    job_id, _ = _post_echo(requester, store)
    cheat.claim(job_id, PRICE)
    made_up = tmp_path / "made-up"
    (made_up / "outputs").mkdir(parents=True)
    (made_up / "outputs" / "echo.txt").write_text("whatever pays\n")
    cheat.submit_result(job_id, store.add_dir(made_up), digest_bytes32("echo", made_up / "outputs"))
    court = CourtClient.of_market(requester)
    credit_before = requester.withdrawable(requester.sender)
    court.open_dispute(job_id, PRICE, panel=3)

    _until_resolved(anvil, court, job_id, panel)

    dispute = court.dispute(job_id)
    assert dispute is not None and dispute.verdict == Verdict.WORKER_REFUTED
    assert requester.job(job_id).state == JobState.OVERTURNED
    assert requester.withdrawable(requester.sender) == credit_before + PRICE + 3 * PRICE
    assert cheat.worker(cheat.sender).stake == STAKE - PRICE
    rewards = _rewards(requester, market, job_id)
    assert rewards == {agent.address: PRICE // 2 // 3 for agent in panel}
    for agent in panel:
        assert agent.verifier.book.phase(job_id) == "done"


def test_a_panel_of_agents_refutes_a_made_up_result_in_a_sweeps_lot(
    anvil: Anvil, market: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    """A sweep's job has no JobPosted or ResultSubmitted of its own: the panel finds its spec
    and result through its sweep and lot once the requester opened it to the dispute."""
    requester, cheat = client_of(anvil, market, 1), client_of(anvil, market, 2)
    ensure_stake(cheat, WORKER_POLICY)
    panel = _panel(anvil, market, store, tmp_path)
    spec_cid = _echo_spec(store)
    sweep, _ = requester.post_sweep([spec_cid, spec_cid], PRICE, 60, 60)
    lot, _, _ = cheat.claim_lot(sweep, sweep, 2)
    made_up = tmp_path / "made-up"
    (made_up / "outputs").mkdir(parents=True)
    (made_up / "outputs" / "echo.txt").write_text("whatever pays\n")
    digest = digest_bytes32("echo", made_up / "outputs")
    cheat.submit_lot(lot, [(store.add_dir(made_up), digest)] * 2)
    requester.open_lot_job(lot, sweep + 1, [digest, digest])
    court = CourtClient.of_market(requester)
    court.open_dispute(sweep + 1, PRICE, panel=3)

    _until_resolved(anvil, court, sweep + 1, panel)

    dispute = court.dispute(sweep + 1)
    assert dispute is not None and dispute.verdict == Verdict.WORKER_REFUTED
    assert requester.job(sweep + 1).state == JobState.OVERTURNED
    assert cheat.worker(cheat.sender).stake == STAKE - PRICE


def test_a_panel_of_agents_upholds_honest_work_and_the_bond_pays_it(
    anvil: Anvil, market: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = client_of(anvil, market, 1)
    worker = _agent(anvil, market, store, tmp_path / "w", 2, WORKER_POLICY)
    panel = _panel(anvil, market, store, tmp_path)
    job_id, _ = _post_echo(requester, store)
    # It claims (once its turn comes: the panel's agents rank too), runs and submits the
    # honest result with its digest.
    deadline = time.monotonic() + 30
    while requester.job(job_id).state != JobState.SUBMITTED and time.monotonic() < deadline:
        worker.step()
        time.sleep(0.1)
    assert requester.job(job_id).state == JobState.SUBMITTED
    court = CourtClient.of_market(requester)
    court.open_dispute(job_id, PRICE, panel=3)  # the requester disputes honest work

    _until_resolved(anvil, court, job_id, [*panel, worker])

    dispute = court.dispute(job_id)
    assert dispute is not None and dispute.verdict == Verdict.WORKER_UPHELD
    assert requester.job(job_id).state == JobState.SETTLED
    assert worker.client.worker(worker.address).stake == STAKE
    # The worker's agent kept its submission through the dispute and saw it settle.
    assert worker.book.phase(job_id) == "done"
    assert worker.book.jobs[job_id].get("final_state") == "settled"
    rewards = _rewards(requester, market, job_id)
    assert rewards == {agent.address: PRICE for agent in panel}  # the bond, three ways
