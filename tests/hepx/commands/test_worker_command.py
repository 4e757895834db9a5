"""`hepx worker register|unbond|withdraw|status` and `hepx job cancel|accept|expire` against a
real anvil and JobMarket (in-process CLI runs, so they stay fast)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hepx.anvil import Anvil, start_anvil
from hepx.chain import JobState, MarketClient, deploy_market
from hepx.cli import app
from hepx.deployment import Deployment

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
RESULT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
UNBOND_DELAY = 2  # = the challenge window


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with start_anvil() as node:
        yield node


@pytest.fixture
def deployment(anvil: Anvil, tmp_path: Path) -> Deployment:
    deployed = deploy_market(anvil.url, anvil.accounts[0].private_key, UNBOND_DELAY)
    deployed.save(tmp_path / "deployment.json")
    return deployed


def _cli(tmp_path: Path, anvil: Anvil, account: int | None, *args: str) -> Result:
    env = {"HEPX_HOME": str(tmp_path), "HEPX_DEPLOYMENT": str(tmp_path / "deployment.json")}
    env["HEPX_PRIVATE_KEY"] = anvil.accounts[account].private_key if account is not None else ""
    return CliRunner().invoke(app, list(args), env=env)


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _status(tmp_path: Path, anvil: Anvil, account: int) -> dict[str, object]:
    result = _cli(tmp_path, anvil, account, "worker", "status", "--json", "--kinds", "echo,llm")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_worker_register_unbond_and_withdraw_round_trip(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    result = _cli(
        tmp_path, anvil, 1, "worker", "register", "--stake", "0.01 ether", "--kinds", "echo"
    )
    assert result.exit_code == 0, result.output
    assert "registered" in result.stdout
    status = _status(tmp_path, anvil, 1)
    assert status["registered"] is True and status["stake"] == 10**16
    assert status["kinds"] == {"echo": True, "llm": False}

    result = _cli(tmp_path, anvil, 1, "worker", "unbond", "all")
    assert result.exit_code == 0, result.output
    assert _status(tmp_path, anvil, 1)["unbonding"] == 10**16
    early = _cli(tmp_path, anvil, 1, "worker", "withdraw")
    assert "still unbonding" in early.stdout

    time.sleep(UNBOND_DELAY + 1)
    client = _client(anvil, deployment, 1)
    before = client.balance(client.sender)
    result = _cli(tmp_path, anvil, 1, "worker", "withdraw")
    assert result.exit_code == 0, result.output
    assert "withdrew stake" in result.stdout
    status = _status(tmp_path, anvil, 1)
    assert (status["stake"], status["unbonding"]) == (0, 0)
    assert client.balance(client.sender) > before + 10**16 - 10**15  # minus gas
    again = _cli(tmp_path, anvil, 1, "worker", "withdraw")
    assert "nothing to withdraw" in again.stdout


def test_worker_register_again_adds_stake_and_kinds(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    assert _cli(tmp_path, anvil, 2, "worker", "register", "--stake", "1000").exit_code == 0
    result = _cli(tmp_path, anvil, 2, "worker", "register", "--stake", "500", "--kinds", "llm")
    assert result.exit_code == 0, result.output
    status = _status(tmp_path, anvil, 2)
    assert status["stake"] == 1500 and status["kinds"] == {"echo": False, "llm": True}


def test_worker_unbond_more_than_available_is_refused_by_name(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    assert _cli(tmp_path, anvil, 3, "worker", "register", "--stake", "1000").exit_code == 0
    result = _cli(tmp_path, anvil, 3, "worker", "unbond", "2000")
    assert result.exit_code == 1
    assert "RegistryInsufficientStake" in result.output


def test_worker_status_of_another_address_needs_no_key(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    result = _cli(tmp_path, anvil, None, "worker", "status", anvil.accounts[7].address)
    assert result.exit_code == 0, result.output
    assert "is not registered" in result.stdout and "hepx worker register" in result.stdout


def test_worker_command_without_a_key_says_how_to_give_one(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    result = _cli(tmp_path, anvil, None, "worker", "register")
    assert result.exit_code == 2
    assert "--account" in result.output and "HEPX_PRIVATE_KEY" in result.output


def test_worker_register_with_an_unreadable_stake_says_what_is_wrong(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    result = _cli(tmp_path, anvil, 1, "worker", "register", "--stake", "lots")
    assert result.exit_code == 2
    assert "--stake" in result.output and "'lots' is not a number" in result.output
    assert "0.5 ether" in result.output  # and how to write one


def test_job_cancel_by_its_requester_refunds_and_by_anyone_else_is_refused(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(CID, 5000, 60, 60)
    refused = _cli(tmp_path, anvil, 4, "job", "cancel", str(job_id))
    assert refused.exit_code == 1 and "JobMarketNotRequester" in refused.output
    result = _cli(tmp_path, anvil, 0, "job", "cancel", str(job_id))
    assert result.exit_code == 0, result.output
    assert requester.job(job_id).state == JobState.CANCELLED
    assert requester.withdrawable(requester.sender) == 5000


def test_job_accept_settles_a_submitted_result_at_once(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    requester, worker = _client(anvil, deployment, 0), _client(anvil, deployment, 5)
    job_id, _ = requester.post_job(CID, 5000, 60, 60)
    worker.claim(job_id, 1200)
    worker.submit_result(job_id, RESULT, bytes(32))
    result = _cli(tmp_path, anvil, 0, "job", "accept", str(job_id))
    assert result.exit_code == 0, result.output
    assert "1200" in result.stdout
    assert requester.job(job_id).state == JobState.SETTLED
    assert requester.withdrawable(worker.sender) == 1200


def test_job_expire_refuses_before_the_deadline_and_refunds_after_it(
    anvil: Anvil, deployment: Deployment, tmp_path: Path
) -> None:
    requester = _client(anvil, deployment, 0)
    job_id, _ = requester.post_job(CID, 5000, 2, 60)
    early = _cli(tmp_path, anvil, 6, "job", "expire", str(job_id))
    assert early.exit_code == 1 and "JobMarketDeadlineNotReached" in early.output
    time.sleep(max(0.0, requester.job(job_id).deadline + 1.5 - time.time()))
    result = _cli(tmp_path, anvil, 6, "job", "expire", str(job_id))  # anyone may
    assert result.exit_code == 0, result.output
    assert requester.job(job_id).state == JobState.EXPIRED
    assert requester.withdrawable(requester.sender) == 5000
