"""llm.chat and llm.batch runners against the real local server (llama.cpp + packaged SmolLM2),
run as the agent runs them: ``python -m agent.kinds`` in a subprocess, endpoint by environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.llm_policy import runner_env
from agent.policy import Policy
from hepx.anvil import free_port
from hepx.llm_build import llm_extra_missing
from hepx.llm_server import (
    MODEL_ALIAS,
    LlmServer,
    local_policy_section,
    start_llm_server,
)
from hepx.spec import canonical_json, parse_spec

pytestmark = pytest.mark.skipif(
    llm_extra_missing() is not None, reason=f"llm extra not installed: {llm_extra_missing()}"
)
KEY = "sk-hepx-kinds-test-key"
CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    logs = tmp_path_factory.mktemp("llm-server")
    srv = start_llm_server(free_port(), logs / "llm.log", api_key=KEY)
    yield srv
    srv.stop()


def policy_for(base_url: str) -> Policy:
    return Policy.model_validate(
        {"llm": local_policy_section(base_url, api_key_env="TEST_LLM_KEY")}
    )


def run_kind(
    tmp_path: Path,
    spec: dict[str, Any],
    base_url: str,
    inputs: dict[str, bytes] | None = None,
    deadline_in: float = 900,  # generous: a busy 2-core CI box runs SmolLM2 at ~3 tokens/s
    checkpoint: Path | None = None,
    wait: bool = True,
) -> tuple[subprocess.Popen[str], Path]:
    spec_path = tmp_path / "spec.json"
    spec_path.write_bytes(canonical_json(parse_spec(spec)))
    inputs_dir, outputs = tmp_path / "inputs", tmp_path / "outputs"
    inputs_dir.mkdir(exist_ok=True)
    outputs.mkdir(exist_ok=True)
    for name, data in (inputs or {}).items():
        (inputs_dir / name).write_bytes(data)
    extra = runner_env(
        policy_for(base_url).llm, checkpoint or tmp_path / "ckpt", time.time() + deadline_in
    )
    env = {**os.environ, **extra, "TEST_LLM_KEY": KEY}
    cmd = [sys.executable, "-m", "agent.kinds", spec["kind"], "--spec", str(spec_path)]
    cmd += ["--inputs", str(inputs_dir), "--outputs", str(outputs)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if wait:
        proc.wait(timeout=deadline_in + 60)
    return proc, outputs


def chat_spec(content: str, max_tokens: int = 16, **params: Any) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "llm.chat",
        "metadata": {"name": "chat"},
        "params": {
            "model": MODEL_ALIAS,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "seed": 7,
            **params,
        },
        "resources": {"max_runtime": 120},
        "payment": {"max_price": "1 ether", "claim_window": 60, "run_window": 300},
    }


def batch_spec(max_requests: int = 20) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "llm.batch",
        "metadata": {"name": "batch"},
        "params": {
            "model": MODEL_ALIAS,
            "max_requests": max_requests,
            "max_prompt_tokens": 64,
            "max_tokens": 4,
            "seed": 3,
        },
        "inputs": [{"name": "requests.jsonl", "cid": CID}],
        "resources": {"max_runtime": 300},
        "payment": {"max_price": "1 ether", "claim_window": 60, "run_window": 600},
    }


def batch_requests(count: int = 20, malformed_at: int | None = 7) -> bytes:
    lines = []
    for i in range(1, count + 1):
        if i == malformed_at:
            lines.append('{"id": "r7", "messages": [{"role": "user", "content": "oops"}')
            continue
        msg = {"role": "user", "content": f"Name the number {i} in one word."}
        lines.append(json.dumps({"id": f"r{i}", "messages": [msg]}))
    return ("\n".join(lines) + "\n").encode()


def test_chat_at_temperature_zero_repeats_its_text_and_reports_usage(
    server: LlmServer, tmp_path: Path
) -> None:
    texts = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        proc, outputs = run_kind(tmp_path / run, chat_spec("What is 2+2?"), server.base_url)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        answer = json.loads((outputs / "answer.json").read_text())
        assert answer["text"] == (outputs / "text.txt").read_text()
        assert answer["backend"] == "llama.cpp" and answer["model"] == MODEL_ALIAS
        assert answer["finish_reason"] in {"stop", "length"}
        assert 0 < answer["usage"]["completion_tokens"] <= 16
        assert answer["usage"]["prompt_tokens"] > 0
        texts.append(answer["text"])
    assert texts[0] and texts[0] == texts[1]


def test_chat_with_json_schema_answers_parseable_json(server: LlmServer, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    spec = chat_spec("What is the capital of France? Answer in JSON.", 24, json_schema=schema)
    proc, outputs = run_kind(tmp_path, spec, server.base_url)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    answer = json.loads((outputs / "answer.json").read_text())
    assert "json_error" not in answer, answer
    assert isinstance(answer["json"]["city"], str)


def test_prompt_over_the_server_context_fails_with_a_clear_error(
    server: LlmServer, tmp_path: Path
) -> None:
    proc, _ = run_kind(tmp_path, chat_spec("lorem ipsum " * 2000), server.base_url)
    assert proc.returncode == 1
    last = (proc.stderr.read() if proc.stderr else "").strip().splitlines()[-1]
    assert last.startswith("error: context too long"), last


def test_batch_of_20_records_the_malformed_line_and_answers_the_rest(
    server: LlmServer, tmp_path: Path
) -> None:
    proc, outputs = run_kind(
        tmp_path, batch_spec(), server.base_url, {"requests.jsonl": batch_requests()}
    )
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    answers = [json.loads(x) for x in (outputs / "answers.jsonl").read_text().splitlines()]
    assert [a["line"] for a in answers] == list(range(1, 21))
    errors = [a for a in answers if "error" in a]
    assert [a["line"] for a in errors] == [7]
    assert "not JSON" in errors[0]["error"]
    ok = [a for a in answers if "error" not in a]
    assert all(a["usage"]["completion_tokens"] <= 4 and a["text"] for a in ok)
    assert [a["id"] for a in ok] == [f"r{i}" for i in range(1, 21) if i != 7]
    summary = json.loads((outputs / "batch.json").read_text())
    assert (summary["requests"], summary["answered"], summary["failed"]) == (20, 19, 1)
    # The checkpoint keeps every answer until the agent has submitted the result.
    assert len((tmp_path / "ckpt" / "answers.partial.jsonl").read_text().splitlines()) == 20
    assert "progress: 20/20 requests" in (proc.stderr.read() if proc.stderr else "")


def test_batch_killed_midway_resumes_from_its_partial_answers(
    server: LlmServer, tmp_path: Path
) -> None:
    requests = {"requests.jsonl": batch_requests(8, malformed_at=None)}
    checkpoint = tmp_path / "ckpt"
    (tmp_path / "first").mkdir()
    proc, _ = run_kind(
        tmp_path / "first",
        batch_spec(8),
        server.base_url,
        requests,
        checkpoint=checkpoint,
        wait=False,
    )
    partial = checkpoint / "answers.partial.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and len(partial.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = len(partial.read_text().splitlines())
    assert 4 <= kept < 8

    (tmp_path / "second").mkdir()
    proc, outputs = run_kind(
        tmp_path / "second", batch_spec(8), server.base_url, requests, checkpoint=checkpoint
    )
    log = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, log
    assert f"resuming: {kept} of 8 requests already answered" in log
    resumed = [json.loads(x) for x in (outputs / "answers.jsonl").read_text().splitlines()]
    # Only the rest were asked again: one progress line per new answer.
    assert log.count("requests (line") == 8 - kept

    (tmp_path / "clean").mkdir()
    proc, outputs = run_kind(tmp_path / "clean", batch_spec(8), server.base_url, requests)
    clean = [json.loads(x) for x in (outputs / "answers.jsonl").read_text().splitlines()]
    assert [a["text"] for a in resumed] == [a["text"] for a in clean]


def test_endpoint_down_fails_the_job_cleanly_before_its_deadline(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    proc, outputs = run_kind(tmp_path, chat_spec("hi"), dead, deadline_in=8)
    took = time.monotonic() - started
    log = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 1
    assert "retry 1 in 0.5 s" in log
    last = log.strip().splitlines()[-1]
    assert last.startswith("error: gave up after") and "cannot reach" in last, last
    assert took < 8
    assert not any(outputs.iterdir())
