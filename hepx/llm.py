"""Parameters of the LLM job kinds (``llm.chat``, ``llm.batch``) and their token arithmetic.

The worst case in tokens is what a worker prices before it claims (DESIGN.md principle 1):
``worst_case_tokens`` gives (input, output) from the spec alone, so the decision needs no
network and no tokenizer. Prompt tokens are *estimated* (see ``estimate_prompt_tokens``);
the backend reports the true counts in the result's ``usage``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Bytes per token assumed by the estimate: BPE vocabularies average ~4 bytes per English
# token; 3 leaves room for code, digits and other languages.
BYTES_PER_TOKEN = 3
# Tokens a chat template adds around each message (role markers) and to open the reply.
TEMPLATE_TOKENS_PER_MESSAGE = 8
MAX_TOKENS_LIMIT = 32_768
MAX_SCHEMA_BYTES = 65_536


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(_Strict):
    """One turn of the conversation, as in OpenAI's chat API."""

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks")
    content: str = Field(max_length=1_000_000, description="What is said (plain text)")


def _check_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(f"json_schema is {size} bytes; at most {MAX_SCHEMA_BYTES} are allowed")
    if "type" not in schema and "properties" not in schema and "$ref" not in schema:
        raise ValueError(
            "json_schema must be a JSON Schema object, e.g. "
            '{"type": "object", "properties": {"answer": {"type": "string"}}}'
        )
    return schema


class _Sampling(_Strict):
    temperature: float = Field(
        default=0, ge=0, le=2, description="Sampling temperature; 0 = greedy (reproducible)"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Sampling seed")
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="If set, the answer must be JSON matching this JSON Schema "
        "(structured output, where the backend supports it)",
    )

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_schema(schema)


class LlmChatParams(_Sampling):
    """One chat completion from an OpenAI-compatible endpoint."""

    model: str = Field(
        min_length=1, max_length=200, description="Model name, as the worker's endpoint serves it"
    )
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    max_tokens: int = Field(
        gt=0, le=MAX_TOKENS_LIMIT, description="Most tokens the answer may have (priced)"
    )


class BatchRequest(_Sampling):
    """One line of a batch's requests file (JSONL)."""

    id: str | None = Field(
        default=None, max_length=200, description="Caller's id, copied to the answer"
    )
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    max_tokens: int | None = Field(
        default=None, gt=0, le=MAX_TOKENS_LIMIT, description="At most params.max_tokens"
    )


class LlmBatchParams(_Sampling):
    """Many chat completions: a JSONL file of requests in, a JSONL file of answers out.

    ``max_requests`` and ``max_prompt_tokens`` bound the batch so a worker can price its
    worst case from the spec alone; requests past either bound fail individually.
    """

    model: str = Field(min_length=1, max_length=200, description="Model for every request")
    requests: str = Field(
        default="requests.jsonl", description="Name of the input file with one request per line"
    )
    max_requests: int = Field(gt=0, le=100_000, description="Most requests the file holds")
    max_prompt_tokens: int = Field(
        gt=0, le=1_000_000, description="Most (estimated) prompt tokens of any one request"
    )
    max_tokens: int = Field(
        gt=0, le=MAX_TOKENS_LIMIT, description="Most answer tokens per request (and the default)"
    )


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """A generous estimate of the prompt's tokens (no tokenizer needed)."""
    return TEMPLATE_TOKENS_PER_MESSAGE + sum(
        math.ceil(len(m.content.encode()) / BYTES_PER_TOKEN) + TEMPLATE_TOKENS_PER_MESSAGE
        for m in messages
    )


def worst_case_tokens(params: LlmChatParams | LlmBatchParams) -> tuple[int, int]:
    """(input, output) tokens the job may use at most, by its spec."""
    if isinstance(params, LlmChatParams):
        return estimate_prompt_tokens(params.messages), params.max_tokens
    return (
        params.max_requests * params.max_prompt_tokens,
        params.max_requests * params.max_tokens,
    )


def largest_request_tokens(params: LlmChatParams | LlmBatchParams) -> int:
    """Context one request needs at most (prompt + answer): compare with a model's window."""
    if isinstance(params, LlmChatParams):
        return estimate_prompt_tokens(params.messages) + params.max_tokens
    return params.max_prompt_tokens + params.max_tokens
