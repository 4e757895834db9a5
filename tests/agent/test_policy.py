"""The guardian: which jobs a worker's policy accepts, and at what price."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.policy import Policy, decide
from hepx.chain import Job, JobState
from hepx.errors import PolicyError
from hepx.spec import parse_spec

REQUESTER = "0x" + "11" * 20


def _spec(kind: str = "echo", max_runtime: int = 30) -> object:
    params = {"message": "hi"} if kind == "echo" else {"seed": 1, "events": 10}
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": kind,
            "metadata": {"name": "t"},
            "params": params,
            "resources": {"max_runtime": max_runtime},
            "payment": {"max_price": "1 ether", "claim_window": 60, "run_window": 3600},
        }
    )


def _job(escrow: int = 10**18, run_window: int = 3600, requester: str = REQUESTER) -> Job:
    return Job(1, requester, JobState.OPEN, 0, run_window, None, 0, escrow)


def _policy(text: str, tmp_path: Path) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return Policy.load(path)


def test_accepts_listed_kind_at_its_ask(tmp_path: Path) -> None:
    policy = _policy('kinds: {echo: {price: "2 gwei"}}', tmp_path)
    decision = decide(policy, _spec(), _job())
    assert decision.accept and decision.price == 2 * 10**9


def test_declines_kind_not_in_policy(tmp_path: Path) -> None:
    policy = _policy('kinds: {echo: {price: "1 gwei"}}', tmp_path)
    decision = decide(policy, _spec("hep.pythia"), _job())
    assert not decision.accept and "hep.pythia" in decision.reason


def test_declines_job_paying_below_price_floor(tmp_path: Path) -> None:
    policy = _policy('kinds: {echo: {price: "1 ether"}}', tmp_path)
    decision = decide(policy, _spec(), _job(escrow=10**18 - 1))
    assert not decision.accept and "below ask" in decision.reason


def test_declines_job_longer_than_policy_max_runtime(tmp_path: Path) -> None:
    policy = _policy("kinds: {echo: {price: 1}}\nmax_runtime: 10", tmp_path)
    decision = decide(policy, _spec(max_runtime=30), _job())
    assert not decision.accept and "max_runtime" in decision.reason


def test_declines_when_on_chain_run_window_cannot_fit_the_job(tmp_path: Path) -> None:
    policy = _policy("kinds: {echo: {price: 1}}", tmp_path)
    decision = decide(policy, _spec(max_runtime=30), _job(run_window=20))
    assert not decision.accept and "run window" in decision.reason


def test_requester_allowlist_is_case_insensitive(tmp_path: Path) -> None:
    text = f"kinds: {{echo: {{price: 1}}}}\nrequesters: ['{REQUESTER.upper()}']"
    policy = _policy(text, tmp_path)
    assert decide(policy, _spec(), _job()).accept
    assert not decide(policy, _spec(), _job(requester="0x" + "22" * 20)).accept


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kinds: {echo: {price: 'ten ether'}}", "kinds.echo.price"),
        ("kinds: {echo: {prize: 1}}", "prize"),
        ("max_runtime: -5", "max_runtime"),
        ("kinds: [echo", "not valid YAML"),
    ],
)
def test_invalid_policy_file_names_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(PolicyError, match=needle):
        _policy(text, tmp_path)


def test_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        Policy.load(tmp_path / "nope.yaml")
