"""Workflow files and the runner's logic: expansion, chaining, retries, skips.

The runner is driven against a scripted stand-in for the REST API (the real API and chain are
exercised by tests/e2e/test_workflow.py); here each test decides what the jobs do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from multiformats import CID as Cid
from multiformats import multihash

from hepx.chain import lapsed
from hepx.errors import ApiUnavailable, WorkflowError
from hepx.spec import canonical_json, parse_spec
from hepx.store import cid_of_bytes
from hepx.workflow import (
    POST_GRACE,
    Runner,
    expand,
    load_workflow,
    run_workflow,
)

REPO = Path(__file__).resolve().parents[2]
CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def workflow_doc(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "Workflow",
        "metadata": {"name": "wf"},
        "defaults": {
            "resources": {"max_runtime": 60},
            "payment": {"max_price": "1 gwei", "claim_window": 60, "run_window": 120},
        },
        "steps": list(steps),
    }


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def result_of(job_id: int) -> str:
    """A distinct, valid CID standing for job ``job_id``'s result."""
    digest = multihash.digest(f"result of job {job_id}".encode(), "sha2-256")
    return str(Cid("base32", 1, "raw", digest))


GEN = {"name": "gen", "kind": "hep.generate", "params": {"events": 10}, "sweep": {"seed": [1, 2]}}
ANA = {"name": "ana", "kind": "hep.analyze", "foreach": "gen"}
MERGE = {"name": "merge", "kind": "hep.merge", "inputs": [{"step": "ana"}]}


class ScriptedApi:
    """Jobs whose fate each test sets: ``fates[n]`` is the state job n reaches when polled."""

    def __init__(self, fates: dict[int, str] | None = None) -> None:
        self.posted: list[dict[str, Any]] = []
        self.batches: list[int] = []  # the size of each post_jobs call
        self.sweeps: list[bool] = []  # whether each post_jobs call asked for one sweep
        self.fates = fates or {}
        self.now = 1000.0

    def post_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        parse_spec(spec)  # the runner only ever posts valid specs
        self.posted.append(spec)
        return {"job_id": len(self.posted), "tx_hash": "0x", "spec_cid": CID}

    def post_jobs(self, specs: list[dict[str, Any]], sweep: bool = False) -> dict[str, Any]:
        # Posted one by one: a test losing the answer of "POST number n" loses it mid-batch,
        # a harder case than the real, all-or-nothing batch.
        if sweep:  # the API refuses a sweep of several prices
            assert len({parse_spec(spec).payment.max_price_wei for spec in specs}) == 1
        self.batches.append(len(specs))
        self.sweeps.append(sweep)
        return {"tx_hash": "0x", "jobs": [self.post_job(spec) for spec in specs]}

    def find_job(self, spec_cid: str) -> int | None:
        for job_id, spec in enumerate(self.posted, 1):
            if cid_of_bytes(canonical_json(parse_spec(spec))) == spec_cid:
                return job_id
        return None

    def get_job(self, job_id: int) -> dict[str, Any]:
        state = self.fates.get(job_id, "settled")
        result = result_of(job_id) if state == "settled" else None
        deadline = 1060
        return {
            "job_id": job_id,
            "state": state,
            "result_cid": result,
            "deadline": deadline,
            "lapsed": lapsed(state, deadline, self.now),  # as the API computes it
        }


def test_a_sweeps_jobs_are_posted_in_one_batch_and_a_lone_job_alone(tmp_path: Path) -> None:
    seeds = {**GEN, "sweep": {"seed": [1, 2, 3]}}
    workflow = load_workflow(write(tmp_path, workflow_doc(seeds, ANA, MERGE)))
    api = ScriptedApi()
    drive(Runner(workflow, api))
    # generate x3 in one postJobs, then analyze x3 in one, then merge by itself.
    assert api.batches == [3, 3] and len(api.posted) == 7
    assert api.sweeps == [False, False]


def test_a_step_with_lots_posts_one_sweep_per_price_and_a_step_without_a_plain_batch(
    tmp_path: Path,
) -> None:
    seeds = {**GEN, "sweep": {"seed": [1, 2, 3], "events": [10, 20]}, "lots": True}
    pricier = {**GEN, "name": "pricier", "sweep": {"seed": [4, 5]}, "lots": True,
               "payment": {"max_price": "0.02 ether"}}  # fmt: skip
    workflow = load_workflow(write(tmp_path, workflow_doc(seeds, pricier, ANA, MERGE)))
    api = ScriptedApi()
    drive(Runner(workflow, api))
    # The two steps' lots share windows but not prices: a sweep each; analyze as a batch.
    assert list(zip(api.batches, api.sweeps, strict=True)) == [(6, True), (2, True), (6, False)]


def drive(runner: Runner, rounds: int = 10) -> None:
    for _ in range(rounds):
        runner.step()
        if runner.run.done:
            return


def test_example_workflow_expands_to_generate_analyze_merge() -> None:
    workflow = load_workflow(REPO / "examples" / "dijet-workflow.yaml")
    tasks = expand(workflow)
    assert [t.key for t in tasks] == [
        *(f"generate[{i}]" for i in range(4)),
        *(f"analyze[{i}]" for i in range(4)),
        "merge[0]",
    ]
    assert [t.spec["params"]["seed"] for t in tasks[:4]] == [1, 2, 3, 4]
    assert [p.task.key for p in tasks[4].parents if p.task] == ["generate[0]"]
    assert [p.input_name for p in tasks[-1].parents] == [f"analyze-{i}" for i in range(4)]


def test_sweep_is_the_product_of_its_lists(tmp_path: Path) -> None:
    step = {**GEN, "sweep": {"seed": [1, 2, 3], "pt_hat_min": [20, 50]}}
    tasks = expand(load_workflow(write(tmp_path, workflow_doc(step))))
    points = {(t.spec["params"]["seed"], t.spec["params"]["pt_hat_min"]) for t in tasks}
    assert points == {(s, p) for s in (1, 2, 3) for p in (20, 50)}
    assert len({t.spec["metadata"]["name"] for t in tasks}) == 6


def test_parent_results_become_inputs_and_merge_waits_for_all(tmp_path: Path) -> None:
    api = ScriptedApi()
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(GEN, ANA, MERGE))), api)
    runner.step()
    assert [s["kind"] for s in api.posted] == ["hep.generate", "hep.generate"]
    drive(runner)
    assert runner.run.ok
    analyze = [s for s in api.posted if s["kind"] == "hep.analyze"]
    assert [s["inputs"] for s in analyze] == [
        [{"name": "gen", "cid": result_of(1)}],
        [{"name": "gen", "cid": result_of(2)}],
    ]
    merge = api.posted[-1]
    assert merge["kind"] == "hep.merge"
    assert sorted(i["name"] for i in merge["inputs"]) == ["ana-0", "ana-1"]


def test_failed_job_is_resubmitted_up_to_max_retries_then_dependents_are_skipped(
    tmp_path: Path,
) -> None:
    gen = {**GEN, "sweep": {"seed": [1]}, "max_retries": 2}
    api = ScriptedApi(fates={1: "expired", 2: "cancelled", 3: "expired"})
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(gen, ANA))), api)
    drive(runner)
    generate, analyze = runner.run.tasks
    assert generate.state == "failed" and generate.jobs == [1, 2, 3]
    assert "job 3 expired" in str(generate.error)
    assert analyze.state == "skipped" and analyze.jobs == []
    assert len(api.posted) == 3 and not runner.run.ok


def test_retry_that_settles_lets_the_chain_go_on(tmp_path: Path) -> None:
    gen = {**GEN, "sweep": {"seed": [1]}, "max_retries": 1}
    api = ScriptedApi(fates={1: "expired"})
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(gen, ANA))), api)
    drive(runner)
    assert runner.run.ok
    assert runner.run.tasks[0].jobs == [1, 2]
    assert api.posted[-1]["inputs"] == [{"name": "gen", "cid": result_of(2)}]


def test_job_left_unclaimed_past_its_deadline_counts_as_failed(tmp_path: Path) -> None:
    api = ScriptedApi(fates={1: "open"})
    gen = {**GEN, "sweep": {"seed": [1]}, "max_retries": 1}
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(gen))), api, clock=lambda: api.now)
    runner.step()
    runner.step()
    assert runner.run.tasks[0].jobs == [1]  # still inside its claim window
    api.now = 1070.0
    runner.step()
    assert runner.run.tasks[0].jobs == [1, 2]


def test_replicated_step_that_ends_without_quorum_is_retried_then_failed(tmp_path: Path) -> None:
    # Bug on main: the runner's own list of final states lacked no_quorum, so a replicated
    # job that ended without a quorum was neither retried nor failed: the run never ended.
    gen = {**GEN, "sweep": {"seed": [1]}, "max_retries": 1}
    api = ScriptedApi(fates={1: "no_quorum", 2: "no_quorum"})
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(gen, ANA))), api)
    drive(runner)
    assert runner.run.done and not runner.run.ok
    generate, analyze = runner.run.tasks
    assert generate.state == "failed" and generate.jobs == [1, 2]
    assert "job 2 no_quorum" in str(generate.error)
    assert analyze.state == "skipped"


def test_job_nobody_claims_is_reported_once_with_its_kind_and_price(tmp_path: Path) -> None:
    api = ScriptedApi(fates={1: "open"})
    gen = {**GEN, "sweep": {"seed": [1]}}
    said: list[str] = []
    runner = Runner(
        load_workflow(write(tmp_path, workflow_doc(gen))), api, said.append, clock=lambda: api.now
    )
    runner.step()
    api.now += 59
    runner.step()
    assert not [m for m in said if "unclaimed" in m]
    api.now += 2
    runner.step()
    runner.step()
    unclaimed = [m for m in said if "unclaimed" in m]
    assert unclaimed == [
        "gen[0]: job 1 unclaimed for 61 s: no worker's policy takes hep.generate at max price "
        "1 gwei (or no worker is running); check the workers' policy kinds and asks, or raise "
        "payment.max_price"
    ]


def test_input_from_an_on_chain_job_waits_for_it_to_settle(tmp_path: Path) -> None:
    step = {"name": "ana", "kind": "hep.analyze", "inputs": [{"name": "events", "job": 7}]}
    api = ScriptedApi(fates={7: "claimed"})
    runner = Runner(load_workflow(write(tmp_path, workflow_doc(step))), api)
    runner.step()
    assert api.posted == []
    api.fates[7] = "settled"
    runner.step()
    assert api.posted[0]["inputs"] == [{"name": "events", "cid": result_of(7)}]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((ANA,), "uses step 'gen', which is not an earlier step"),
        ((GEN, GEN), "two steps are named 'gen'"),
        (({**GEN, "kind": "hep.nope"},), "unknown kind 'hep.nope'"),
        (({**GEN, "sweep": {"seed": []}},), "sweep.seed is empty"),
        (({**GEN, "name": "Gen Step"},), "step name 'Gen Step'"),
        (
            ({"name": "a", "kind": "hep.analyze", "inputs": [{"cid": CID, "job": 1}]},),
            "exactly one of cid, job or step",
        ),
        (({**GEN, "sweep": {"seed": [1, 0]}},), "step 'gen', job 1 ({'seed': 0})"),
        (({**GEN, "params": {"events": 10, "bogus": 1}},), "params.bogus: unknown field"),
    ],
)
def test_invalid_workflow_names_the_problem(
    tmp_path: Path, steps: tuple[dict[str, Any], ...], message: str
) -> None:
    with pytest.raises(WorkflowError, match="invalid workflow|step") as info:
        load_workflow(write(tmp_path, workflow_doc(*steps)))
    assert message in str(info.value)


def test_unreadable_workflow_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="cannot read workflow file"):
        load_workflow(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [\n")
    with pytest.raises(WorkflowError, match="not valid YAML"):
        load_workflow(bad)


class FlakyApi(ScriptedApi):
    """Unreachable for the first ``outages`` polls, then like ScriptedApi."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    def get_job(self, job_id: int) -> dict[str, Any]:
        if self.outages > 0:
            self.outages -= 1
            raise ApiUnavailable("connection refused")
        return super().get_job(job_id)


def test_run_rides_out_a_short_api_outage_but_not_a_long_one(tmp_path: Path) -> None:
    workflow = load_workflow(write(tmp_path, workflow_doc({**GEN, "sweep": {"seed": [1]}})))
    notes: list[str] = []
    run = run_workflow(workflow, FlakyApi(outages=3), notify=notes.append, poll=0)
    # One line when the API is lost and one when it is back, not one per retry.
    assert run.ok and sum("API unavailable" in n for n in notes) == 1
    assert sum("API reachable again" in n for n in notes) == 1
    with pytest.raises(ApiUnavailable):
        run_workflow(workflow, FlakyApi(outages=10**9), poll=0, max_outage=0.2)


# ---------------------------------------------------------------- the run's state file


class LostAnswerApi(ScriptedApi):
    """POST /jobs number ``lose`` (1-based) posts the job but its answer never arrives."""

    def __init__(self, lose: int, lands: bool = True) -> None:
        super().__init__()
        self.lose, self.lands, self.calls = lose, lands, 0

    def post_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.lose:
            if self.lands:
                super().post_job(spec)
            raise ApiUnavailable("read timed out")
        return super().post_job(spec)


def test_runner_started_again_resumes_its_run_and_posts_no_job_twice(tmp_path: Path) -> None:
    workflow = load_workflow(write(tmp_path, workflow_doc(GEN, ANA, MERGE)))
    api = ScriptedApi(fates={1: "claimed", 2: "claimed"})
    state = tmp_path / "run.json"
    first = Runner(workflow, api, state=state)
    first.step()  # both generate jobs posted; then the runner is "killed"
    assert len(api.posted) == 2
    api.fates = {}
    notes: list[str] = []
    second = Runner(workflow, api, notify=notes.append, state=state)
    assert second.run_id == first.run_id and "2 jobs posted" in notes[0]
    drive(second)
    assert second.run.ok
    assert len(api.posted) == 5  # 2 generate, 2 analyze, 1 merge: each once
    # The merge got the analyze results, which the second runner saw settle.
    merge = api.posted[-1]
    assert {i["name"] for i in merge["inputs"]} == {"ana-0", "ana-1"}
    # A finished run is not resumed: the same command later starts a new one.
    third = Runner(workflow, api, state=state)
    assert third.run_id != first.run_id and not any(t.jobs for t in third.run.tasks)


def test_resumed_runner_keeps_the_inputs_its_started_tasks_were_posted_with(
    tmp_path: Path,
) -> None:
    workflow = load_workflow(write(tmp_path, workflow_doc(GEN, ANA)))
    api = ScriptedApi(fates={3: "claimed", 4: "claimed"})
    state = tmp_path / "run.json"
    drive(Runner(workflow, api, state=state), rounds=3)  # analyze jobs posted, not settled
    assert len(api.posted) == 4
    api.fates = {}
    resumed = Runner(workflow, api, state=state)
    analyze = resumed.run.step_tasks("ana")
    assert [t.jobs for t in analyze] == [[3], [4]] and not analyze[0].parents
    assert analyze[0].spec["inputs"] == api.posted[2]["inputs"]
    drive(resumed)
    assert resumed.run.ok and len(api.posted) == 4


def test_a_post_whose_answer_was_lost_is_found_by_its_spec_cid_not_posted_again(
    tmp_path: Path,
) -> None:
    workflow = load_workflow(write(tmp_path, workflow_doc(GEN)))
    api = LostAnswerApi(lose=1)
    notes: list[str] = []
    run = run_workflow(workflow, api, notify=notes.append, poll=0, state=tmp_path / "s.json")
    assert run.ok and len(api.posted) == 2
    assert any("found by its spec CID" in n for n in notes)
    # Each attempt's spec is its own: run and attempt labels make the CIDs differ.
    labels = [p["metadata"]["labels"] for p in api.posted]
    assert {lab["run"] for lab in labels} == {run_labels := labels[0]["run"]} and run_labels


def test_a_post_that_never_landed_is_sent_again_once_it_can_no_longer_land(
    tmp_path: Path,
) -> None:
    workflow = load_workflow(write(tmp_path, workflow_doc({**GEN, "sweep": {"seed": [1]}})))
    api = LostAnswerApi(lose=1, lands=False)
    clock = [1000.0]
    runner = Runner(workflow, api, clock=lambda: clock[0], state=tmp_path / "s.json")
    with pytest.raises(ApiUnavailable):
        runner.step()
    runner.step()
    runner.step()
    assert api.posted == []  # not yet: the lost request might still land
    clock[0] += POST_GRACE
    drive(runner)
    assert runner.run.ok and len(api.posted) == 1


def test_state_file_of_another_version_of_the_workflow_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "run.json"
    old = load_workflow(write(tmp_path, workflow_doc(GEN)))
    Runner(old, ScriptedApi(fates={1: "claimed"}), state=state).step()
    new = load_workflow(write(tmp_path, workflow_doc({**GEN, "params": {"events": 20}})))
    with pytest.raises(WorkflowError, match="another version of this workflow.*--fresh"):
        Runner(new, ScriptedApi(), state=state)
