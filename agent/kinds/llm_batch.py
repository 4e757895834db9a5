"""Kind ``llm.batch``: a JSONL file of chat requests in, ``answers.jsonl`` out.

Each non-blank line of the requests file is one ``BatchRequest``; its answer line has the
line number, the request's id and either the answer (as llm.chat stores it) or ``error``: a
malformed or refused request fails alone, not the batch. Only an endpoint that stays down
fails the batch.

Answers are appended to a partial file as they arrive (flushed and fsynced). The agent keeps
that file in the job's checkpoint folder (``HEPX_JOB_CHECKPOINT``), which survives a restart:
a rerun of the same job skips the requests already answered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.errors import ContextTooLong, RequestRejected
from agent.kinds.llm_chat import answer_record
from agent.llm_client import LlmClient
from hepx.errors import ExecutionError
from hepx.llm import BatchRequest, LlmBatchParams, estimate_prompt_tokens
from hepx.spec import JobSpec

PARTIAL_NAME = "answers.partial.jsonl"


def load_partial(path: Path) -> dict[int, dict[str, Any]]:
    """Answers saved by an earlier run, by line; a torn last line (a kill mid-write) is dropped."""
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(raw)
            done[int(record["line"])] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return done


def _error(line: int, request_id: object, message: str) -> dict[str, Any]:
    return {"line": line, "id": request_id, "error": message}


def _answer_line(
    client: LlmClient, params: LlmBatchParams, line: int, raw: str, count: int
) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return _error(line, None, f"line {line} is not JSON: {exc}")
    request_id = data.get("id") if isinstance(data, dict) else None
    if count > params.max_requests:
        return _error(line, request_id, f"beyond params.max_requests ({params.max_requests})")
    try:
        request = BatchRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        return _error(line, request_id, f"invalid request: {problems}")
    max_tokens = request.max_tokens or params.max_tokens
    if max_tokens > params.max_tokens:
        return _error(line, request_id, f"max_tokens {max_tokens} above params.max_tokens")
    prompt = estimate_prompt_tokens(request.messages)
    if prompt > params.max_prompt_tokens:
        return _error(
            line,
            request_id,
            f"prompt of ~{prompt} tokens above params.max_prompt_tokens "
            f"({params.max_prompt_tokens}), which the price was computed from",
        )
    schema = request.json_schema if request.json_schema is not None else params.json_schema
    try:
        answer = client.chat(
            params.model,
            request.messages,
            max_tokens,
            request.temperature if "temperature" in data else params.temperature,
            request.seed if "seed" in data else params.seed,
            schema,
        )
    except (ContextTooLong, RequestRejected) as exc:
        return _error(line, request_id, str(exc))
    return {"line": line, "id": request_id, **answer_record(answer, schema)}


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    params = spec.params
    if not isinstance(params, LlmBatchParams):
        raise ExecutionError(f"the llm.batch runner cannot run a {spec.kind!r} job")
    source = inputs_dir / params.requests
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExecutionError(f"cannot read the requests file {params.requests}: {exc}") from exc
    numbered = [(n, raw) for n, raw in enumerate(lines, start=1) if raw.strip()]
    checkpoint = Path(os.environ.get("HEPX_JOB_CHECKPOINT") or outputs_dir)
    checkpoint.mkdir(parents=True, exist_ok=True)
    partial_path = checkpoint / PARTIAL_NAME
    done = load_partial(partial_path)
    if done:
        progress(f"resuming: {len(done)} of {len(numbered)} requests already answered")
    client = LlmClient.from_env(on_retry=progress)
    if params.model not in client.endpoint.models:
        raise ExecutionError(
            f"model {params.model!r} is not served here ({', '.join(client.endpoint.models)})"
        )
    try:
        with open(partial_path, "a", encoding="utf-8") as partial:
            for count, (line, raw) in enumerate(numbered, start=1):
                if line in done:
                    continue
                record = _answer_line(client, params, line, raw, count)
                partial.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
                partial.flush()
                os.fsync(partial.fileno())
                done[line] = record
                status = "error" if "error" in record else "ok"
                progress(f"{len(done)}/{len(numbered)} requests (line {line}: {status})")
    finally:
        client.close()
    answers = [done[line] for line, _ in numbered]
    with open(outputs_dir / "answers.jsonl", "w", encoding="utf-8") as out:
        for record in answers:
            out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    failed = sum(1 for r in answers if "error" in r)
    usage = {
        key: sum(r.get("usage", {}).get(key, 0) for r in answers)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    summary = {
        "requests": len(answers),
        "answered": len(answers) - failed,
        "failed": failed,
        "usage": usage,
        "model": params.model,
        "backend": client.endpoint.backend,
    }
    (outputs_dir / "batch.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if checkpoint == outputs_dir:
        # Without the agent's checkpoint folder the partial file sat among the outputs.
        partial_path.unlink()
    progress(f"done: {len(answers) - failed} answered, {failed} failed")
