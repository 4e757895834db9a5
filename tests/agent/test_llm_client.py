"""The LLM client's retry rules, against scripted HTTP answers (httpx.MockTransport).

The real server is exercised in test_llm_kinds.py; here the fake transport isolates the
retry, backoff, Retry-After and error-mapping logic, with a fake clock so no test sleeps.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable

import httpx
import pytest

from agent.errors import ContextTooLong, EndpointUnavailable, RequestRejected
from agent.llm_client import LlmClient
from agent.llm_policy import LlmPolicy
from hepx.llm import ChatMessage

KEY = "sk-test-sentinel-123"
MESSAGES = [ChatMessage(role="user", content="hi")]
OK_BODY = {
    "model": "m",
    "choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    clock: FakeClock,
    deadline: float | None = None,
    structured_output: str = "openai",
) -> LlmClient:
    endpoint = LlmPolicy.model_validate(
        {
            "base_url": "http://llm.test/v1",
            "models": ["m"],
            "price_per_input_token": 1,
            "price_per_output_token": 1,
            "max_context": 100,
            "api_key_env": "X_KEY",
            "structured_output": structured_output,
        }
    )
    return LlmClient(
        endpoint,
        api_key=KEY,
        deadline=deadline,
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock.time,
    )


def test_429_waits_as_long_as_retry_after_says_then_succeeds() -> None:
    clock = FakeClock()
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}),
            httpx.Response(200, json=OK_BODY),
        ]
    )
    answer = make_client(lambda _r: next(answers), clock).chat("m", MESSAGES, 5)
    assert answer.text == "hello"
    assert clock.sleeps == [7.0]


def test_429_retry_after_as_http_date_is_honoured() -> None:
    clock = FakeClock()
    when = email.utils.formatdate(clock.now + 12, usegmt=True)
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json=OK_BODY)]
    )
    make_client(lambda _r: next(answers), clock).chat("m", MESSAGES, 5)
    assert clock.sleeps and 11 <= clock.sleeps[0] <= 12


def test_429_whose_retry_after_passes_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    client = make_client(
        lambda _r: httpx.Response(429, headers={"Retry-After": "600"}), clock, clock.now + 60
    )
    with pytest.raises(EndpointUnavailable, match="rate limited"):
        client.chat("m", MESSAGES, 5)
    assert clock.sleeps == []


def test_endpoint_down_backs_off_exponentially_and_fails_before_the_deadline() -> None:
    clock = FakeClock()
    deadline = clock.now + 30

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EndpointUnavailable, match="cannot reach http://llm.test/v1"):
        make_client(refuse, clock, deadline).chat("m", MESSAGES, 5)
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(clock.sleeps) <= 8.0
    assert clock.now <= deadline  # gave up in time, did not sleep past it


def test_server_errors_are_retried_then_succeed() -> None:
    clock = FakeClock()
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json=OK_BODY)])
    answer = make_client(lambda _r: next(answers), clock, clock.now + 60).chat("m", MESSAGES, 5)
    assert answer.usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert clock.sleeps == [0.5, 1.0]


def test_context_overflow_fails_at_once_with_a_clear_error() -> None:
    clock = FakeClock()
    body = {"error": {"message": "Requested tokens (5000) exceed context window of 2048"}}
    client = make_client(lambda _r: httpx.Response(400, json=body), clock, clock.now + 60)
    with pytest.raises(ContextTooLong, match="exceed context window of 2048"):
        client.chat("m", MESSAGES, 5)
    assert clock.sleeps == []


def test_rejected_key_names_the_problem_but_never_the_key() -> None:
    clock = FakeClock()
    body = {"error": {"message": f"Invalid API key {KEY}"}}
    client = make_client(lambda _r: httpx.Response(401, json=body), clock)
    with pytest.raises(RequestRejected) as info:
        client.chat("m", MESSAGES, 5)
    assert "API key" in str(info.value)
    assert KEY not in str(info.value)


def test_request_carries_key_sampling_and_schema_in_the_backend_style() -> None:
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK_BODY)

    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    make_client(capture, FakeClock()).chat("m", MESSAGES, 9, 0.5, 7, schema)
    make_client(capture, FakeClock(), structured_output="llama.cpp").chat(
        "m", MESSAGES, 9, 0, 7, schema
    )
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    first, second = (json.loads(r.content) for r in seen)
    assert (first["max_tokens"], first["temperature"], first["seed"]) == (9, 0.5, 7)
    assert first["response_format"]["json_schema"]["schema"] == schema
    assert second["response_format"] == {"type": "json_object", "schema": schema}


def test_no_deadline_still_bounds_the_retries() -> None:
    clock = FakeClock()
    with pytest.raises(EndpointUnavailable, match="after 6 attempts"):
        make_client(lambda _r: httpx.Response(500), clock).chat("m", MESSAGES, 5)
