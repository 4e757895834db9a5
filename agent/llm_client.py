"""A small client of OpenAI-compatible chat endpoints, with the retries a paid job needs.

- connection errors, timeouts and 5xx: exponential backoff, until the job's deadline is near;
- 429: wait as long as ``Retry-After`` says (seconds or an HTTP date), if the deadline allows;
- a prompt longer than the model's context: ``ContextTooLong`` at once (retrying cannot help);
- any other 4xx: ``RequestRejected`` at once.

Errors never carry the API key: every message passes through ``redact``.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.errors import ContextTooLong, EndpointUnavailable, LlmError, RequestRejected
from agent.llm_policy import ENDPOINT_ENV, LlmPolicy
from hepx.llm import ChatMessage

# Seconds kept before the deadline: giving up cleanly beats being killed mid-request.
DEADLINE_MARGIN = 3.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0
# Retries when no deadline bounds them (a client used outside a job).
MAX_ATTEMPTS_WITHOUT_DEADLINE = 6
_CONTEXT_RE = re.compile(
    r"context (window|length)|maximum context|exceed(s|ed)? .*context|too many tokens"
    r"|prompt is too long",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    finish_reason: str
    usage: dict[str, int]
    model: str
    backend: str
    system_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "model": self.model,
            "backend": self.backend,
            "system_fingerprint": self.system_fingerprint,
        }


@dataclass
class LlmClient:
    endpoint: LlmPolicy
    api_key: str | None = None
    deadline: float | None = None  # wall-clock (time.time()) by which to have given up
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    on_retry: Callable[[str], None] = lambda _msg: None
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_env(cls, on_retry: Callable[[str], None] = lambda _m: None) -> LlmClient:
        """The client a runner gets from the agent: endpoint, key and deadline by environment."""
        raw = os.environ.get(ENDPOINT_ENV)
        if not raw:
            raise LlmError(
                f"no LLM endpoint: {ENDPOINT_ENV} is not set (the worker's policy needs an "
                "llm: section)"
            )
        endpoint = LlmPolicy.model_validate_json(raw)
        deadline = os.environ.get("HEPX_JOB_DEADLINE")
        return cls(
            endpoint, api_key_of(endpoint), float(deadline) if deadline else None,
            on_retry=on_retry,
        )  # fmt: skip

    def unavailable(self) -> str | None:
        """Why the endpoint cannot serve a job now (one quick GET /models), or None."""
        url = self.endpoint.base_url + "/models"
        try:
            resp = self._client().get("/models", timeout=3.0)
        except httpx.TransportError as exc:
            return f"{url} does not answer ({type(exc).__name__})"
        if resp.status_code != 200:
            return f"{url} answered {resp.status_code}: {self.redact(_error_detail(resp))}"
        return None

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def _client(self) -> httpx.Client:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._http = httpx.Client(
                base_url=self.endpoint.base_url, headers=headers, transport=self.transport
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float = 0,
        seed: int = 0,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatAnswer:
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "stream": False,
        }
        if json_schema is not None:
            body["response_format"] = self._response_format(json_schema)
        data = self._post("/chat/completions", body)
        try:
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return ChatAnswer(
                text=choice["message"].get("content") or "",
                finish_reason=str(choice.get("finish_reason")),
                usage={
                    k: int(usage[k])
                    for k in ("prompt_tokens", "completion_tokens", "total_tokens")
                    if k in usage
                },
                model=str(data.get("model", model)),
                backend=self.endpoint.backend,
                system_fingerprint=data.get("system_fingerprint"),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LlmError(
                f"the endpoint answered without a chat completion ({type(exc).__name__}: {exc})"
            ) from exc

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.endpoint.structured_output == "llama.cpp":
            return {"type": "json_object", "schema": schema}
        return {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.endpoint.base_url + path
        started = self.clock()
        backoff = FIRST_BACKOFF
        attempt = 0
        while True:
            attempt += 1
            timeout = self.endpoint.request_timeout
            if self.deadline is not None:
                timeout = min(timeout, self.deadline - DEADLINE_MARGIN - self.clock())
                if timeout <= 0:
                    raise EndpointUnavailable(f"no time left before the job's deadline for {url}")
            try:
                resp = self._client().post(path, json=body, timeout=timeout)
            except httpx.TransportError as exc:
                problem = f"cannot reach {url} ({type(exc).__name__}: {self.redact(str(exc))})"
                wait = backoff
            else:
                if resp.status_code == 200:
                    try:
                        return dict(resp.json())
                    except (json.JSONDecodeError, TypeError, ValueError) as exc:
                        raise LlmError(f"{url} answered 200 with a body that is not JSON") from exc
                detail = self.redact(_error_detail(resp))
                if resp.status_code == 429:
                    problem = f"rate limited by {url} (429: {detail})"
                    wait = _retry_after(resp, self.clock()) or backoff
                elif resp.status_code >= 500:
                    problem = f"{url} failed ({resp.status_code}: {detail})"
                    wait = _retry_after(resp, self.clock()) or backoff
                elif _CONTEXT_RE.search(detail):
                    raise ContextTooLong(
                        f"context too long for model {body.get('model')}: {detail}; "
                        "shorten the messages or lower max_tokens"
                    )
                elif resp.status_code == 401:
                    raise RequestRejected(f"{url} refused the worker's API key (401: {detail})")
                else:
                    raise RequestRejected(
                        f"{url} refused the request ({resp.status_code}: {detail})"
                    )
            elapsed = self.clock() - started
            if self.deadline is not None:
                if self.clock() + wait > self.deadline - DEADLINE_MARGIN:
                    raise EndpointUnavailable(
                        f"gave up after {attempt} attempts in {elapsed:.1f} s, before the job's "
                        f"deadline: {problem}"
                    )
            elif attempt >= MAX_ATTEMPTS_WITHOUT_DEADLINE:
                raise EndpointUnavailable(
                    f"gave up after {attempt} attempts in {elapsed:.1f} s: {problem}"
                )
            self.on_retry(f"{problem}; retry {attempt} in {wait:.1f} s")
            self.sleep(wait)
            backoff = min(backoff * 2, MAX_BACKOFF)


def api_key_of(endpoint: LlmPolicy) -> str | None:
    """The key from the environment variable the policy names (never from the policy)."""
    if not endpoint.api_key_env:
        return None
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise LlmError(
            f"the policy names {endpoint.api_key_env} for the API key, but it is not set"
        )
    return key


class EndpointProbe:
    """Whether a worker's LLM endpoint is up, asked at most every ``every`` seconds: while it
    is not (a server still starting, a llama.cpp build still running), llm.* jobs wait."""

    def __init__(self, endpoint: LlmPolicy, every: float = 5.0) -> None:
        self.endpoint = endpoint
        self.every = every
        self._asked = -math.inf
        self._why: str | None = None

    def unavailable(self) -> str | None:
        if time.monotonic() - self._asked >= self.every:
            self._asked = time.monotonic()
            try:
                client = LlmClient(self.endpoint, api_key_of(self.endpoint))
            except LlmError as exc:
                self._why = str(exc)
            else:
                with contextlib.closing(client):
                    self._why = client.unavailable()
        return self._why


def _error_detail(resp: httpx.Response) -> str:
    """The server's error message (OpenAI's {"error": {"message"}} or FastAPI's {"detail"})."""
    try:
        data = resp.json()
    except (json.JSONDecodeError, ValueError):
        return " ".join(resp.text.split())[:300] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            err = err.get("message", err)
        return " ".join(str(err).split())[:300]
    return " ".join(str(data).split())[:300]


def _retry_after(resp: httpx.Response, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
