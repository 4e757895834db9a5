"""What container jobs would run, decided without an engine: image allowlist, command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import container_jobs
from agent.container_jobs import plan_for, runs_in_container
from agent.images import image_allowed, parse_ref
from agent.policy import Policy, decide
from hepx.chain import Job, JobState
from hepx.errors import SpecError
from hepx.kinds.key4hep import DEFAULT_KEY4HEP_IMAGE
from hepx.spec import JobSpec, load_spec_file, parse_spec
from hepx.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
STEERING_CID = "bafkreie7izfpncq6giep2ua6zrgykxr6cjqfvbm6ac37bf6mkdxnqhjay4"


def _spec(kind: str, params: dict[str, object]) -> JobSpec:
    return parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": kind,
            "metadata": {"name": "t"},
            "params": params,
            "resources": {"max_runtime": 60},
            "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 120},
        }
    )


def _job() -> Job:
    return Job(1, "0x" + "11" * 20, JobState.OPEN, 0, 3600, None, 0, 10**6)


@pytest.mark.parametrize(
    ("allow", "ref", "allowed"),
    [
        (["busybox"], "busybox", True),
        (["busybox"], "docker.io/library/busybox:1.36", True),  # Hub short names normalised
        (["busybox:1.36"], "busybox:1.37", False),
        (["busybox:1.36"], "busybox:1.36", True),
        (["busybox:latest"], "busybox", True),  # no tag means latest
        (["ghcr.io/key4hep/key4hep-images/alma9"], "ghcr.io/key4hep/key4hep-images/alma9:x", True),
        (["ghcr.io/key4hep/key4hep-images"], "ghcr.io/key4hep/key4hep-images/alma9", False),
        (["localhost:5000/app"], "localhost:5000/app:1", True),  # a port is not a tag
        ([DIGEST], f"busybox@{DIGEST}", True),
        ([DIGEST], "busybox", False),  # a tag cannot be checked against a digest unresolved
        ([f"busybox@{DIGEST}"], f"busybox:1@{DIGEST}", True),
        ([f"busybox@{DIGEST}"], f"alpine@{DIGEST}", False),
        ([], "busybox", False),
    ],
)
def test_image_allowlist_matches_repository_tag_or_digest(
    allow: list[str], ref: str, allowed: bool
) -> None:
    assert image_allowed(allow, ref) is allowed


def test_digest_entry_matches_the_locally_resolved_digest_of_a_tag() -> None:
    assert image_allowed([DIGEST], "busybox:1.36", resolved=(DIGEST,))
    assert not image_allowed([DIGEST], "busybox:1.36", resolved=("sha256:" + "cd" * 32,))


def test_parse_ref_separates_registry_port_tag_and_digest() -> None:
    ref = parse_ref(f"reg.example:5000/a/b:v1@{DIGEST}")
    assert (ref.repository, ref.tag, ref.digest) == ("reg.example:5000/a/b", "v1", DIGEST)


def test_policy_declines_container_job_whose_image_is_not_listed() -> None:
    policy = Policy.model_validate({"kinds": {"container": {"price": 1}}, "images": ["busybox"]})
    declined = decide(policy, _spec("container", {"image": "alpine", "command": ["true"]}), _job())
    assert not declined.accept and "image alpine not in policy images" in declined.reason
    accepted = decide(policy, _spec("container", {"image": "busybox", "command": ["x"]}), _job())
    assert accepted.accept


def test_policy_without_images_runs_no_container_job() -> None:
    policy = Policy.model_validate({"kinds": {"container": {"price": 1}}})
    spec = _spec("container", {"image": "busybox", "command": ["true"]})
    assert not decide(policy, spec, _job()).accept


def test_container_spec_rejects_bad_image_env_and_empty_command() -> None:
    with pytest.raises(SpecError) as err:
        _spec("container", {"image": "Not An Image", "command": [], "env": {"A-B": "1"}})
    text = str(err.value)
    assert "params.image" in text and "params.command" in text and "params.env" in text


def test_container_spec_defaults_to_no_network_and_bounded_resources() -> None:
    spec = _spec("container", {"image": "busybox", "command": ["true"]})
    assert spec.params.network is False  # type: ignore[attr-defined]
    assert spec.params.memory_mb == 1024 and spec.params.cpus == 1  # type: ignore[attr-defined]


def test_key4hep_spec_defaults_to_the_official_image_and_rejects_a_clashing_input() -> None:
    steering = {"name": "steer.py", "cid": STEERING_CID}
    assert _spec("key4hep", {"steering": steering}).params.image == DEFAULT_KEY4HEP_IMAGE  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match="like the steering file"):
        parse_spec(
            {
                "apiVersion": "hepx/v1",
                "kind": "key4hep",
                "metadata": {"name": "t"},
                "params": {"steering": steering},
                "inputs": [steering],
                "resources": {"max_runtime": 60},
                "payment": {"max_price": 1, "claim_window": 60, "run_window": 120},
            }
        )


def test_key4hep_plan_runs_k4run_on_the_steering_file_with_inputs_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container_jobs, "CVMFS_KEY4HEP", tmp_path / "no-cvmfs")
    spec = _spec(
        "key4hep",
        {"steering": {"name": "steer.py", "cid": STEERING_CID}, "args": ["-n", "5"]},
    )
    plan = plan_for(spec, Policy(), tmp_path, tmp_path / "inputs")
    assert plan.image == DEFAULT_KEY4HEP_IMAGE
    assert plan.command[:2] == ["/bin/sh", "-c"]
    assert plan.command[3:] == ["k4run", "/inputs/steer.py", "-n", "5"]
    assert plan.env["HEPX_K4_SETUP"] == "/cvmfs/sw.hsf.org/key4hep/setup.sh"
    assert [(m.target, m.read_only) for m in plan.mounts] == [("/inputs", True)]
    assert plan.network is False and plan.workdir == "/outputs"


def test_key4hep_plan_mounts_cvmfs_read_only_where_the_host_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sw.hsf.org").mkdir()
    monkeypatch.setattr(container_jobs, "CVMFS_KEY4HEP", tmp_path / "sw.hsf.org")
    spec = _spec("key4hep", {"steering": {"name": "s.py", "cid": STEERING_CID}})
    mounts = plan_for(spec, Policy(), tmp_path, tmp_path / "inputs").mounts
    assert ("/cvmfs", True) in [(m.target, m.read_only) for m in mounts]


def test_pythia_runs_in_a_container_only_when_the_policy_gives_it_an_image(tmp_path: Path) -> None:
    spec = _spec("hep.pythia", {"seed": 1, "events": 10})
    assert not runs_in_container(spec, Policy())
    policy = Policy.model_validate({"kinds": {"hep.pythia": {"price": 1, "image": "hepx:local"}}})
    assert runs_in_container(spec, policy)
    plan = plan_for(spec, policy, tmp_path, tmp_path / "inputs")
    assert plan.image == "hepx:local"
    assert plan.command[:4] == ["python", "-m", "agent.kinds", "hep.pythia"]
    spec_mount = next(m for m in plan.mounts if m.target == "/job/spec.json")
    assert parse_spec(spec_mount.source.read_bytes()) == spec


def test_key4hep_example_names_the_cid_of_its_steering_file(tmp_path: Path) -> None:
    spec = load_spec_file(REPO / "examples" / "key4hep-edm4hep.yaml")
    steering = REPO / "examples" / "key4hep" / "steering.py"
    cid = LocalStore(tmp_path / "s", fsync=False).add_file(steering)
    assert spec.params.steering.cid == cid  # type: ignore[attr-defined]


def test_example_container_policy_loads_and_allows_the_key4hep_example(tmp_path: Path) -> None:
    policy = Policy.load(REPO / "examples" / "container-policy.yaml")
    spec = load_spec_file(REPO / "examples" / "key4hep-edm4hep.yaml")
    paying = Job(1, "0x" + "11" * 20, JobState.OPEN, 0, 3600, None, 0, 10**16)
    decision = decide(policy, spec, paying)
    assert decision.accept, decision.reason
    assert runs_in_container(_spec("hep.pythia", {"seed": 1, "events": 1}), policy)
