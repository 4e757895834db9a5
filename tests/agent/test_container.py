"""Container jobs against a real Docker engine: the sandbox, its limits and the result record."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_helpers import BUSYBOX, build_fake_key4hep, engine, has_image

from agent.container_jobs import (
    remove_leftover_containers,
    run_container_job,
    runs_in_container,
)
from agent.executor import Execution
from agent.policy import Policy
from hepx.errors import ExecutionError
from hepx.spec import JobSpec, parse_spec
from hepx.store import LocalStore

WORKER = "0x" + "ab" * 20
POLICY = Policy.model_validate(
    {
        "kinds": {"container": {"price": 1}, "key4hep": {"price": 1}},
        "images": ["hepx/busybox", "hepx/fake-key4hep"],
    }
)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    docker = engine()
    yield docker
    docker.close()


@pytest.fixture(scope="module")
def fake_key4hep(client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_fake_key4hep(client, tmp_path_factory.mktemp("fake-key4hep"))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)


def _spec(kind: str, params: dict[str, Any], inputs: list[dict[str, str]] | None = None) -> JobSpec:
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": kind,
            "metadata": {"name": "t"},
            "params": params,
            "inputs": inputs or [],
            "resources": {"max_runtime": 60},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 120},
        }
    )


def _run(
    spec: JobSpec,
    store: LocalStore,
    tmp_path: Path,
    timeout: float = 30,
    policy: Policy = POLICY,
    job_id: int = 1,
) -> Execution:
    """Lay out the work folder as the worker does, fetch the inputs, run in the container."""
    work = tmp_path / "work"
    (work / "inputs").mkdir(parents=True)
    (work / "result" / "outputs").mkdir(parents=True)
    for ref in spec.inputs:
        store.get(ref.cid, work / "inputs" / ref.name)
    return run_container_job(spec, policy, store, work, timeout, job_id, WORKER)


def _ours(client: Any) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"org.hepx.worker={WORKER}"}))


def _result(tmp_path: Path, name: str) -> str:
    return (tmp_path / "work" / "result" / name).read_text()


def test_container_job_collects_outputs_and_records_image_id_logs_and_exit_code(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    cid = store.add_bytes(b"4 8 15 16 23 42\n")
    script = "wc -w < /inputs/numbers.txt > /outputs/count.txt; echo to-stdout; echo to-stderr >&2"
    spec = _spec(
        "container",
        {"image": BUSYBOX, "command": ["sh", "-c", script], "env": {"ANSWER": "42"}},
        [{"name": "numbers.txt", "cid": cid}],
    )
    assert runs_in_container(spec, POLICY)
    run = _run(spec, store, tmp_path)
    assert run.exit_code == 0
    assert _result(tmp_path, "outputs/count.txt").strip() == "6"
    assert _result(tmp_path, "stdout.txt") == "to-stdout\n"
    assert _result(tmp_path, "stderr.txt") == "to-stderr\n"
    record = json.loads(_result(tmp_path, "container.json"))
    assert record == run.container
    assert record["image_id"] == client.images.get(BUSYBOX).id  # the tag, pinned to its id
    assert record["command"] == ["sh", "-c", script] and record["exit_code"] == 0
    assert record["stdout_cid"] == store.add_bytes(b"to-stdout\n")
    assert record["stderr_cid"] == store.add_bytes(b"to-stderr\n")
    assert _ours(client) == []


def test_job_sees_its_env_and_runs_as_the_agent_user_in_outputs(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    script = 'echo "$ANSWER $(id -u) $(pwd)" > /outputs/env.txt'
    spec = _spec(
        "container", {"image": BUSYBOX, "command": ["sh", "-c", script], "env": {"ANSWER": "42"}}
    )
    _run(spec, store, tmp_path)
    assert _result(tmp_path, "outputs/env.txt").split() == ["42", str(os.getuid()), "/outputs"]


def test_inputs_are_mounted_read_only(client: Any, store: LocalStore, tmp_path: Path) -> None:
    cid = store.add_bytes(b"original")
    spec = _spec(
        "container",
        {"image": BUSYBOX, "command": ["sh", "-c", "echo changed > /inputs/a.txt"]},
        [{"name": "a.txt", "cid": cid}],
    )
    with pytest.raises(ExecutionError, match="exited with code"):
        _run(spec, store, tmp_path)
    assert (tmp_path / "work" / "inputs" / "a.txt").read_bytes() == b"original"
    assert "Read-only file system" in _result(tmp_path, "stderr.txt")


def test_network_is_off_unless_the_spec_asks_for_it(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    command = ["sh", "-c", "ls /sys/class/net > /outputs/net.txt"]
    _run(_spec("container", {"image": BUSYBOX, "command": command}), store, tmp_path / "off")
    assert (tmp_path / "off/work/result/outputs/net.txt").read_text().split() == ["lo"]
    on = {"image": BUSYBOX, "command": command, "network": True}
    _run(_spec("container", on), store, tmp_path / "on")
    assert "eth0" in (tmp_path / "on/work/result/outputs/net.txt").read_text().split()


def test_memory_limit_kills_a_job_that_exceeds_it(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    # dd fills a 64 MiB buffer: more than the 32 MiB the job may use (and there is no swap).
    command = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    spec = _spec("container", {"image": BUSYBOX, "command": command, "memory_mb": 32})
    with pytest.raises(ExecutionError, match="out of memory"):
        _run(spec, store, tmp_path / "small")
    roomy = _spec("container", {"image": BUSYBOX, "command": command, "memory_mb": 256})
    assert _run(roomy, store, tmp_path / "roomy").exit_code == 0
    assert _ours(client) == []


def test_wall_clock_timeout_kills_the_container_and_removes_it(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    spec = _spec("container", {"image": BUSYBOX, "command": ["sh", "-c", "echo hi; sleep 60"]})
    started = time.monotonic()
    with pytest.raises(ExecutionError, match="timed out after 2 s"):
        _run(spec, store, tmp_path, timeout=2)
    assert time.monotonic() - started < 15
    assert _result(tmp_path, "stdout.txt") == "hi\n"  # logs are kept for the failure report
    assert _ours(client) == []


def test_failing_command_reports_its_exit_code_and_last_stderr_line(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    spec = _spec(
        "container", {"image": BUSYBOX, "command": ["sh", "-c", "echo no input >&2; exit 3"]}
    )
    with pytest.raises(ExecutionError, match="exited with code 3: no input"):
        _run(spec, store, tmp_path)
    assert _ours(client) == []


def test_image_missing_from_policy_digests_is_refused_before_it_runs(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    command = ["sh", "-c", "touch /outputs/ran"]
    other_digest = Policy.model_validate(
        {"kinds": {"container": {"price": 1}}, "images": ["sha256:" + "0" * 64]}
    )
    spec = _spec("container", {"image": BUSYBOX, "command": command})
    with pytest.raises(ExecutionError, match="not in the policy's images"):
        _run(spec, store, tmp_path / "other", policy=other_digest)
    assert not (tmp_path / "other/work/result/outputs/ran").exists()
    by_id = Policy.model_validate(
        {"kinds": {"container": {"price": 1}}, "images": [client.images.get(BUSYBOX).id]}
    )
    _run(spec, store, tmp_path / "same", policy=by_id)
    assert (tmp_path / "same/work/result/outputs/ran").exists()


def test_missing_image_that_cannot_be_pulled_fails_clearly(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    policy = Policy.model_validate(
        {"kinds": {"container": {"price": 1}}, "images": ["hepx/absent"]}
    )
    spec = _spec("container", {"image": "hepx/absent:never-built", "command": ["true"]})
    with pytest.raises(ExecutionError, match="hepx/absent:never-built is not present"):
        _run(spec, store, tmp_path, policy=policy)


def test_leftover_containers_of_a_killed_agent_are_removed_at_start(client: Any) -> None:
    labels = {"org.hepx.role": "job", "org.hepx.job": "7"}
    ours = client.containers.run(
        BUSYBOX, ["sleep", "300"], detach=True, labels={**labels, "org.hepx.worker": WORKER}
    )
    someone_else = "0x" + "cd" * 20
    theirs = client.containers.run(
        BUSYBOX, ["sleep", "300"], detach=True, labels={**labels, "org.hepx.worker": someone_else}
    )
    try:
        remove_leftover_containers(POLICY, WORKER)
        assert _ours(client) == []
        theirs.reload()
        assert theirs.status == "running"
    finally:
        theirs.remove(force=True)
        if _ours(client):
            ours.remove(force=True)


# ------------------------------------------------------------------ key4hep


def _key4hep(store: LocalStore, image: str, **params: Any) -> JobSpec:
    steering = store.add_bytes(b"from Gaudi.Configuration import *\n# steering\n")
    data = store.add_bytes(b"input events")
    return _spec(
        "key4hep",
        {"image": image, "steering": {"name": "steer.py", "cid": steering}, **params},
        [{"name": "events.slcio", "cid": data}],
    )


def test_key4hep_runs_k4run_with_the_steering_file_and_collects_outputs(
    fake_key4hep: str, store: LocalStore, tmp_path: Path
) -> None:
    spec = _key4hep(store, fake_key4hep, args=["--num-events", "3"])
    run = _run(spec, store, tmp_path)
    assert _result(tmp_path, "outputs/k4run-args.txt").split() == [
        "/inputs/steer.py",
        "--num-events",
        "3",
    ]
    assert _result(tmp_path, "outputs/steering-copy.py").endswith("# steering\n")
    assert _result(tmp_path, "outputs/inputs.txt").split() == ["events.slcio", "steer.py"]
    # k4run writes where it runs: /outputs, so the EDM4hep file is part of the result.
    assert _result(tmp_path, "outputs/output.edm4hep.root") == "edm4hep-events"
    assert "cwd=/outputs" in _result(tmp_path, "outputs/k4run-env.txt")
    assert "K4_SETUP=no" in _result(tmp_path, "outputs/k4run-env.txt")  # no setup script here
    assert "k4run done: /inputs/steer.py" in _result(tmp_path, "stdout.txt")
    assert run.container["image"] == fake_key4hep


def test_key4hep_sources_the_setup_script_when_the_image_has_it(
    fake_key4hep: str, store: LocalStore, tmp_path: Path
) -> None:
    _run(_key4hep(store, fake_key4hep, setup_script="/opt/k4/setup.sh"), store, tmp_path)
    assert "K4_SETUP=sourced" in _result(tmp_path, "outputs/k4run-env.txt")


def test_key4hep_setup_script_that_fails_stops_the_job_with_a_clear_error(
    fake_key4hep: str, store: LocalStore, tmp_path: Path
) -> None:
    spec = _key4hep(store, fake_key4hep, setup_script="/opt/k4/setup.sh", env={"FAIL_SETUP": "1"})
    with pytest.raises(ExecutionError, match="code 97: error: sourcing /opt/k4/setup.sh failed"):
        _run(spec, store, tmp_path)
    assert not (tmp_path / "work/result/outputs/k4run-args.txt").exists()


def test_key4hep_job_with_steering_missing_from_the_store_fails_before_running(
    fake_key4hep: str, store: LocalStore, tmp_path: Path
) -> None:
    elsewhere = LocalStore(tmp_path / "elsewhere", fsync=False)
    spec = _key4hep(elsewhere, fake_key4hep)
    with pytest.raises(Exception, match="not in the store"):
        _run(spec, store, tmp_path)


def test_real_key4hep_image_runs_a_gaudi_job(
    client: Any, store: LocalStore, tmp_path: Path
) -> None:
    image = os.environ.get("HEPX_KEY4HEP_IMAGE")
    if not image or not has_image(client, image):
        pytest.skip(
            "set HEPX_KEY4HEP_IMAGE to a Key4hep image present locally "
            "(docker pull ghcr.io/key4hep/key4hep-images/alma9:latest) to run this"
        )
    steering = Path(__file__).resolve().parents[2] / "examples" / "key4hep" / "steering.py"
    spec = _spec(
        "key4hep",
        {
            "image": image,
            "steering": {"name": "steering.py", "cid": store.add_file(steering)},
            "memory_mb": 4096,
        },
    )
    policy = Policy.model_validate({"kinds": {"key4hep": {"price": 1}}, "images": [image]})
    run = _run(spec, store, tmp_path, timeout=600, policy=policy)
    assert run.exit_code == 0
    assert "ApplicationMgr" in _result(tmp_path, "job.log")
