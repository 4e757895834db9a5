"""The agent's own errors (all ExecutionErrors: a job's run failed for this reason)."""

from __future__ import annotations

from hepx.errors import ExecutionError


class LlmError(ExecutionError):
    """An LLM request failed."""


class EndpointUnavailable(LlmError):
    """The endpoint did not answer usefully before the deadline (down, 5xx, rate limited)."""


class ContextTooLong(LlmError):
    """The prompt plus max_tokens do not fit the model's context window."""


class RequestRejected(LlmError):
    """The endpoint refused the request (bad model, bad key, bad parameters)."""
