"""The runner dispatcher and the echo kind, run as the agent runs them: in a subprocess."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.kinds import RUNNERS, runner_command
from hepx.errors import SpecError
from hepx.kinds import CONTAINER_KINDS, REGISTRY
from hepx.spec import canonical_json, parse_spec

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def echo_spec(params: dict[str, Any], inputs: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "echo",
        "metadata": {"name": "echo-test"},
        "params": params,
        "inputs": [{"name": name, "cid": CID} for name in inputs],
        "resources": {"max_runtime": 30},
        "payment": {"max_price": 1000, "claim_window": 60, "run_window": 60},
    }


def run_job(
    tmp_path: Path, spec: dict[str, Any], kind: str | None = None, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Write the spec like the agent does and run the dispatcher; return the result and outputs."""
    spec_path = tmp_path / "spec.json"
    spec_path.write_bytes(canonical_json(parse_spec(spec)))
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    inputs.mkdir(exist_ok=True)
    outputs.mkdir(exist_ok=True)
    cmd = runner_command(kind or spec["kind"], spec_path, inputs, outputs)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return done, outputs


def test_every_registered_kind_has_a_runner_module_with_run() -> None:
    # Container kinds run in their image through agent.container_jobs, not this dispatcher.
    assert set(RUNNERS) | CONTAINER_KINDS == set(REGISTRY)
    assert not set(RUNNERS) & CONTAINER_KINDS
    for kind, module in RUNNERS.items():
        assert callable(importlib.import_module(module).run), kind


def test_runner_command_uses_this_interpreter_and_the_dispatcher(tmp_path: Path) -> None:
    cmd = runner_command("echo", tmp_path / "s.json", tmp_path / "in", tmp_path / "out")
    assert cmd[:4] == [sys.executable, "-m", "agent.kinds", "echo"]
    assert cmd[cmd.index("--spec") + 1] == str(tmp_path / "s.json")
    assert cmd[cmd.index("--outputs") + 1] == str(tmp_path / "out")


def test_runner_command_rejects_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no runner for kind 'hep.madgraph'"):
        runner_command("hep.madgraph", tmp_path, tmp_path, tmp_path)


def test_echo_writes_message_and_copies_inputs(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.txt").write_bytes(b"alpha\n")
    (tmp_path / "inputs" / "b.bin").write_bytes(bytes(range(256)))
    done, outputs = run_job(tmp_path, echo_spec({"message": "héllo"}, ["a.txt", "b.bin"]))
    assert done.returncode == 0, done.stderr
    assert (outputs / "message.txt").read_text(encoding="utf-8") == "héllo"
    assert (outputs / "a.txt").read_bytes() == b"alpha\n"
    assert (outputs / "b.bin").read_bytes() == bytes(range(256))
    assert "progress: copied b.bin (2/2)" in done.stderr


def test_echo_without_message_writes_only_the_inputs(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.txt").write_bytes(b"x")
    done, outputs = run_job(tmp_path, echo_spec({}, ["a.txt"]))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in outputs.iterdir()) == ["a.txt"]


def test_echo_copies_a_folder_input_such_as_another_job_s_result(tmp_path: Path) -> None:
    part = tmp_path / "inputs" / "part-0" / "outputs"
    part.mkdir(parents=True)
    (part / "message.txt").write_text("part 0")
    done, outputs = run_job(tmp_path, echo_spec({}, ["part-0"]))
    assert done.returncode == 0, done.stderr
    assert (outputs / "part-0" / "outputs" / "message.txt").read_text() == "part 0"


def test_echo_with_missing_input_fails_with_one_clear_line(tmp_path: Path) -> None:
    done, outputs = run_job(tmp_path, echo_spec({}, ["absent.txt"]))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: input 'absent.txt' ({CID}) is missing from {tmp_path / 'inputs'}"
    )


def test_echo_fail_param_makes_the_job_fail(tmp_path: Path) -> None:
    done, _ = run_job(tmp_path, echo_spec({"fail": "as asked"}))
    assert done.returncode == 1
    assert done.stderr.strip() == "error: echo job failed on request: as asked"


def test_echo_sleep_outlasts_a_short_timeout(tmp_path: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_job(tmp_path, echo_spec({"sleep_seconds": 30}), timeout=2)


def test_dispatcher_rejects_a_spec_of_another_kind(tmp_path: Path) -> None:
    done, _ = run_job(tmp_path, echo_spec({}), kind="hep.pythia")
    assert done.returncode == 1
    assert "is of kind 'echo', not 'hep.pythia'" in done.stderr.strip().splitlines()[-1]


def test_dispatcher_reports_an_invalid_spec_file_on_one_line(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text('{"apiVersion": "hepx/v1", "kind": "echo"}')
    cmd = runner_command("echo", spec_path, tmp_path, tmp_path)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {spec_path}: invalid job spec:")
    assert "metadata: required field is missing" in lines[0]


def test_dispatcher_requires_an_existing_outputs_folder(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_bytes(canonical_json(parse_spec(echo_spec({}))))
    cmd = runner_command("echo", spec_path, tmp_path, tmp_path / "nope")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: outputs folder {tmp_path / 'nope'} does not exist"
