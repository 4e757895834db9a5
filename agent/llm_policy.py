"""The ``llm:`` section of a worker's policy: its OpenAI-compatible endpoint and token prices.

Example (in ``policy.yaml``)::

    kinds: {llm.chat: {price: "1 gwei"}, llm.batch: {price: "1 gwei"}}
    llm:
      base_url: http://127.0.0.1:8080/v1   # OpenAI, Ollama, vLLM, llama.cpp's server
      api_key_env: OPENAI_API_KEY          # the NAME of the variable holding the key
      backend: llama.cpp
      models: [smollm2-135m-instruct]
      price_per_input_token: "10 gwei"
      price_per_output_token: "20 gwei"
      max_context: 2048

The key itself never appears here: the agent's runner reads it from its environment, so it
cannot reach the chain, the store or a log by way of the policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hepx.llm import LlmBatchParams, LlmChatParams, largest_request_tokens, worst_case_tokens
from hepx.spec import JobSpec
from hepx.units import format_wei, parse_wei

Wei = Annotated[int, BeforeValidator(parse_wei)]
ENDPOINT_ENV = "HEPX_LLM_ENDPOINT"
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class LlmPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(description="OpenAI-compatible API root, e.g. http://host:8080/v1")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key"
    )
    backend: str = Field(
        default="openai-compatible", max_length=100, description="Label stored with each answer"
    )
    models: list[str] = Field(min_length=1, description="Model names this endpoint serves")
    price_per_input_token: Wei = Field(ge=0)
    price_per_output_token: Wei = Field(ge=0)
    max_context: int = Field(gt=0, description="Context window of the models, in tokens")
    request_timeout: float = Field(default=300, gt=0, description="Seconds per HTTP request")
    structured_output: Literal["openai", "llama.cpp"] = Field(
        default="openai",
        description="How json_schema is sent: OpenAI's response_format json_schema, or "
        "llama.cpp's json_object with a schema",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_inline_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "api_key: do not write the key into the policy; export it in an environment "
                "variable and name that variable in api_key_env"
            )
        return data

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1")
        return url.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        return name


@dataclass(frozen=True)
class LlmVerdict:
    accept: bool
    reason: str
    price: int = 0


def llm_verdict(llm: LlmPolicy | None, spec: JobSpec, escrow: int, base_price: int) -> LlmVerdict:
    """Claim an LLM job only if the model is served, it fits the context and the escrow
    covers the worst case: the kind's base price plus every token the spec allows."""
    params = spec.params
    if not isinstance(params, LlmChatParams | LlmBatchParams):
        raise TypeError(f"{spec.kind} is not an LLM kind")
    if llm is None:
        return LlmVerdict(False, "policy has no llm endpoint")
    if params.model not in llm.models:
        return LlmVerdict(False, f"model {params.model} not served ({', '.join(llm.models)})")
    needed = largest_request_tokens(params)
    if needed > llm.max_context:
        return LlmVerdict(
            False,
            f"context too long: a request needs ~{needed} tokens (prompt estimate + max_tokens), "
            f"the model holds {llm.max_context}",
        )
    tokens_in, tokens_out = worst_case_tokens(params)
    price = (
        base_price + tokens_in * llm.price_per_input_token + tokens_out * llm.price_per_output_token
    )
    if escrow < price:
        return LlmVerdict(
            False,
            f"max price {format_wei(escrow)} below worst case {format_wei(price)} "
            f"({tokens_in} input + {tokens_out} output tokens)",
        )
    return LlmVerdict(True, "accepted", price)


def endpoint_env(llm: LlmPolicy | None) -> dict[str, str]:
    """What an LLM runner needs to find its endpoint (no key: only the key's variable name)."""
    return {} if llm is None else {ENDPOINT_ENV: json.dumps(llm.model_dump(mode="json"))}


def runner_env(llm: LlmPolicy | None, checkpoint: Path, deadline: float) -> dict[str, str]:
    """Extra environment of a job's runner: its endpoint, the wall-clock time by which it must
    have given up (so retries end cleanly before the executor kills it), and a checkpoint
    folder that outlives a restart of the agent (llm.batch keeps its partial answers there,
    and makes it: made for every job, it cost each no-op job two mkdirs and an rmtree)."""
    return {
        **endpoint_env(llm),
        "HEPX_JOB_DEADLINE": f"{deadline:.3f}",
        "HEPX_JOB_CHECKPOINT": str(checkpoint),
    }
