"""Kind ``llm.chat``: one chat completion from the worker's OpenAI-compatible endpoint.

Outputs: ``answer.json`` (text, finish reason, token usage, model and backend as reported,
and ``digest``, the sha256 of the text) and ``text.txt`` (the text alone). At temperature 0
with a fixed seed the text is the canonical digest for replication (README: determinism).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.llm_client import ChatAnswer, LlmClient
from hepx.errors import ExecutionError
from hepx.llm import LlmChatParams
from hepx.spec import JobSpec


def answer_record(answer: ChatAnswer, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The stored form of one answer: reported fields, digest, and the parsed JSON if asked."""
    record = answer.to_json()
    record["digest"] = "sha256:" + hashlib.sha256(answer.text.encode()).hexdigest()
    if json_schema is not None:
        try:
            record["json"] = json.loads(answer.text)
        except json.JSONDecodeError as exc:
            record["json_error"] = f"the answer is not JSON: {exc}"
    return record


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    params = spec.params
    if not isinstance(params, LlmChatParams):
        raise ExecutionError(f"the llm.chat runner cannot run a {spec.kind!r} job")
    client = LlmClient.from_env(on_retry=progress)
    if params.model not in client.endpoint.models:
        raise ExecutionError(
            f"model {params.model!r} is not served here ({', '.join(client.endpoint.models)})"
        )
    progress(f"asking {client.endpoint.backend} for {params.model}, max {params.max_tokens} tokens")
    try:
        answer = client.chat(
            params.model,
            params.messages,
            params.max_tokens,
            params.temperature,
            params.seed,
            params.json_schema,
        )
    finally:
        client.close()
    record = answer_record(answer, params.json_schema)
    (outputs_dir / "text.txt").write_text(answer.text, encoding="utf-8")
    (outputs_dir / "answer.json").write_text(
        json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    progress(
        f"answered: {answer.usage.get('completion_tokens', '?')} tokens, "
        f"finish {answer.finish_reason}"
    )
