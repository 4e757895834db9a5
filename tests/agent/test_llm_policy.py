"""Pricing of LLM jobs: a worker claims only where the escrow covers the worst case in tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.llm_policy import endpoint_env
from agent.policy import Policy, decide
from hepx.chain import Job, JobState
from hepx.errors import PolicyError, SpecError
from hepx.llm import estimate_prompt_tokens, worst_case_tokens
from hepx.spec import JobSpec, parse_spec

REQUESTER = "0x" + "22" * 20
CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
POLICY = """
kinds: {llm.chat: {price: 1000}, llm.batch: {price: 1000}}
llm:
  base_url: http://127.0.0.1:9/v1
  api_key_env: MY_LLM_KEY
  models: [tiny]
  price_per_input_token: 10
  price_per_output_token: 30
  max_context: 512
"""


def chat_spec(content: str = "Say hi", max_tokens: int = 50, model: str = "tiny") -> JobSpec:
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "llm.chat",
            "metadata": {"name": "chat"},
            "params": {
                "model": model,
                "messages": [{"role": "user", "content": content}],
                "max_tokens": max_tokens,
            },
            "resources": {"max_runtime": 60},
            "payment": {"max_price": "1 ether", "claim_window": 60, "run_window": 120},
        }
    )


def batch_spec(**params: Any) -> JobSpec:
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "llm.batch",
            "metadata": {"name": "batch"},
            "params": {
                "model": "tiny",
                "max_requests": 20,
                "max_prompt_tokens": 100,
                "max_tokens": 16,
                **params,
            },
            "inputs": [{"name": "requests.jsonl", "cid": CID}],
            "resources": {"max_runtime": 60},
            "payment": {"max_price": "1 ether", "claim_window": 60, "run_window": 120},
        }
    )


def job(escrow: int) -> Job:
    return Job(1, REQUESTER, JobState.OPEN, 0, 3600, None, 0, escrow)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return Policy.load(path)


def test_claim_price_is_base_plus_worst_case_tokens(policy: Policy) -> None:
    spec = chat_spec()
    prompt = estimate_prompt_tokens(spec.params.messages)  # type: ignore[attr-defined]
    worst = 1000 + prompt * 10 + 50 * 30
    decision = decide(policy, spec, job(escrow=worst))
    assert decision.accept and decision.price == worst


def test_declines_when_escrow_misses_the_worst_case_by_one_wei(policy: Policy) -> None:
    spec = chat_spec()
    prompt = estimate_prompt_tokens(spec.params.messages)  # type: ignore[attr-defined]
    decision = decide(policy, spec, job(escrow=1000 + prompt * 10 + 50 * 30 - 1))
    assert not decision.accept and "worst case" in decision.reason


def test_batch_worst_case_counts_every_request(policy: Policy) -> None:
    spec = batch_spec()
    assert worst_case_tokens(spec.params) == (20 * 100, 20 * 16)  # type: ignore[arg-type]
    decision = decide(policy, spec, job(escrow=10**18))
    assert decision.accept and decision.price == 1000 + 2000 * 10 + 320 * 30


def test_declines_prompt_too_long_for_the_context_before_claiming(policy: Policy) -> None:
    decision = decide(policy, chat_spec(content="word " * 400, max_tokens=10), job(10**18))
    assert not decision.accept and "context too long" in decision.reason


def test_declines_model_the_endpoint_does_not_serve(policy: Policy) -> None:
    decision = decide(policy, chat_spec(model="gpt-9"), job(10**18))
    assert not decision.accept and "gpt-9" in decision.reason


def test_declines_llm_jobs_without_an_llm_section(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("kinds: {llm.chat: {price: 1}}")
    decision = decide(Policy.load(path), chat_spec(), job(10**18))
    assert not decision.accept and "no llm endpoint" in decision.reason


def test_policy_refuses_an_inline_api_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + "  api_key: sk-oops\n")
    with pytest.raises(PolicyError, match="api_key_env"):
        Policy.load(path)


def test_runner_environment_names_the_key_variable_not_the_key(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-secret-value")
    env = endpoint_env(policy.llm)
    assert "MY_LLM_KEY" in env["HEPX_LLM_ENDPOINT"]
    assert "sk-secret-value" not in repr(env)


def test_batch_spec_must_list_its_requests_file_as_an_input() -> None:
    with pytest.raises(SpecError, match="params.requests: no input is named 'other.jsonl'"):
        batch_spec(requests="other.jsonl")


def test_chat_spec_names_bad_fields() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "apiVersion": "hepx/v1",
                "kind": "llm.chat",
                "metadata": {"name": "chat"},
                "params": {
                    "model": "tiny",
                    "messages": [{"role": "robot", "content": "x"}],
                    "max_tokens": 0,
                    "temperature": 5,
                },
                "resources": {"max_runtime": 60},
                "payment": {"max_price": 1, "claim_window": 60, "run_window": 120},
            }
        )
    text = str(info.value)
    for field in ("params.messages.0.role", "params.max_tokens", "params.temperature"):
        assert field in text
