"""Workflows: steps of jobs chained by their outputs, with sweeps, merges and retries.

A workflow file (YAML) declares steps; the requester-side runner expands them into jobs,
posts each through the REST API once its parents have settled, passes the parents' result
CIDs on as inputs, and resubmits a job that failed (expired, cancelled, or left unclaimed or
unsubmitted past its deadline) up to the step's ``max_retries`` times, each a new job on chain.

    apiVersion: hepx/v1
    kind: Workflow
    metadata: {name: dijet}
    defaults:                         # merged into every step's spec
      resources: {max_runtime: 600}
      payment: {max_price: "0.01 ether", claim_window: 300, run_window: 1800}
    steps:
      - name: generate
        kind: hep.generate
        params: {events: 1000, pt_hat_min: 50}
        sweep: {seed: [1, 2, 3, 4]}   # one job per point of the grid (product of the lists)
        max_retries: 2
      - name: analyze
        kind: hep.analyze
        foreach: generate             # one job per generate job; its result is input "generate"
      - name: merge
        kind: hep.merge
        inputs: [{step: analyze}]     # every analyze result: inputs analyze-0, analyze-1, ...

An input is ``{cid: ...}`` (a file or folder in the store), ``{job: J}`` (the result of job J
on chain, waited for) or ``{step: NAME}`` (the results of an earlier step's jobs).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hepx.chain.enums import FINAL_STATE_LABELS
from hepx.errors import ApiUnavailable, SpecError, WorkflowError
from hepx.spec import canonical_json, parse_spec
from hepx.store import cid_of_bytes
from hepx.workflow_api import JobsApi
from hepx.workflow_spec import Step, Workflow
from hepx.workflow_state import RunStateFile

# A valid CID that stands in for a parent's result while the spec is only being checked.
_PLACEHOLDER_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
MAX_JOBS = 1000
# Seconds a job may stay open before the runner says that no worker takes it.
UNCLAIMED_WARNING = 60.0
# Seconds the API (or the chain behind it) may stay unreachable before a run gives up; the
# run's state file lets a later `submit --wait` carry on from there.
MAX_OUTAGE = 600.0
# Seconds after which a POST /jobs the runner did not see answered can no longer land: the
# HTTP timeout, plus the API's own margin to finish the transaction it had started.
POST_GRACE = 90.0
# Jobs of one sweep posted per POST /jobs/batch (the API takes up to 200).
MAX_BATCH = 100


# ---------------------------------------------------------------- expansion into tasks


@dataclass
class Parent:
    """Where one input of a task comes from: another task's result, or an on-chain job's."""

    input_name: str
    task: Task | None = None
    job_id: int | None = None


@dataclass
class Task:
    """One job of a step (a point of its sweep, for one parent), and its attempts on chain."""

    step: str
    index: int
    spec: dict[str, Any]  # inputs from parents are added when they settle
    parents: list[Parent]
    max_retries: int
    state: str = "waiting"  # waiting -> running -> settled | failed | skipped
    jobs: list[int] = field(default_factory=list)
    result_cid: str | None = None
    error: str | None = None
    posted_at: float = 0.0  # the runner's clock when the newest job was posted
    said_unclaimed: bool = False  # whether the newest job's "unclaimed" was said
    # The spec CID of a POST /jobs sent but not answered yet, and when it was sent: after a
    # restart the runner looks it up before it posts anything again.
    posting: str | None = None
    posting_since: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.step}[{self.index}]"

    @property
    def done(self) -> bool:
        return self.state in ("settled", "failed", "skipped")


def load_workflow(path: str | Path) -> Workflow:
    """Read and validate a workflow file; every job it makes is checked as a spec too."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise WorkflowError(f"cannot read workflow file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path} is not valid YAML: {exc}") from exc
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise WorkflowError(f"{path}: invalid workflow:\n{problems}") from exc
    expand(workflow)  # raises on a step whose jobs would be invalid specs
    return workflow


def expand(workflow: Workflow) -> list[Task]:
    """All tasks of the workflow in an order where parents come first."""
    by_step: dict[str, list[Task]] = {}
    tasks: list[Task] = []
    for step in workflow.steps:
        keys = list(step.sweep)
        points = [
            dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(step.sweep[k] for k in keys))
        ]
        owners: list[Task | None] = list(by_step[step.foreach]) if step.foreach else [None]
        made: list[Task] = []
        for owner in owners:
            for point in points:
                made.append(_task(workflow, step, len(made), owner, point, by_step))
        if len(tasks) + len(made) > MAX_JOBS:
            raise WorkflowError(f"the workflow makes more than {MAX_JOBS} jobs; split it")
        by_step[step.name] = made
        tasks += made
    return tasks


def _task(
    workflow: Workflow,
    step: Step,
    index: int,
    owner: Task | None,
    point: dict[str, Any],
    by_step: dict[str, list[Task]],
) -> Task:
    fixed: list[dict[str, Any]] = []
    parents: list[Parent] = []
    if owner is not None:
        parents.append(Parent(owner.step, task=owner))
    for ref in step.inputs:
        if ref.cid is not None:
            fixed.append({"name": ref.name, "cid": ref.cid})
        elif ref.job is not None:
            parents.append(Parent(str(ref.name), job_id=ref.job))
        else:
            assert ref.step is not None
            sources = by_step[ref.step]
            base = ref.name or ref.step
            for i, source in enumerate(sources):
                parents.append(Parent(base if len(sources) == 1 else f"{base}-{i}", task=source))
    labels = {"workflow": workflow.metadata.name, "step": step.name, "index": str(index)}
    if point:
        labels["sweep"] = json.dumps(point, sort_keys=True)[:256]
    spec = {
        "apiVersion": "hepx/v1",
        "kind": step.kind,
        "metadata": {
            "name": f"{workflow.metadata.name}-{step.name}-{index}"[:63],
            "labels": labels,
        },
        "params": {**step.params, **point},
        "inputs": fixed,
        "resources": {**workflow.defaults.resources, **(step.resources or {})},
        "payment": {**workflow.defaults.payment, **(step.payment or {})},
    }
    task = Task(step.name, index, spec, parents, step.max_retries)
    try:
        parse_spec(_with_inputs(task, {p.input_name: _PLACEHOLDER_CID for p in parents}))
    except SpecError as exc:
        raise WorkflowError(
            f"step {step.name!r}, job {index} ({point or 'no sweep'}): {exc}"
        ) from exc
    return task


def _with_inputs(task: Task, resolved: dict[str, str]) -> dict[str, Any]:
    inputs = [*task.spec["inputs"], *({"name": n, "cid": c} for n, c in resolved.items())]
    return {**task.spec, "inputs": inputs}


# ---------------------------------------------------------------- running


@dataclass
class WorkflowRun:
    workflow: Workflow
    tasks: list[Task]
    log: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tasks)

    @property
    def ok(self) -> bool:
        return all(t.state == "settled" for t in self.tasks)

    def step_tasks(self, step: str) -> list[Task]:
        return [t for t in self.tasks if t.step == step]

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow.metadata.name,
            "ok": self.ok,
            "steps": {
                s.name: [
                    {
                        "index": t.index,
                        "state": t.state,
                        "jobs": t.jobs,
                        "result_cid": t.result_cid,
                        "params": t.spec["params"],
                        "error": t.error,
                    }
                    for t in self.step_tasks(s.name)
                ]
                for s in self.workflow.steps
            },
        }


def fingerprint(workflow: Workflow) -> str:
    """What a state file must match to be resumed: the workflow as validated."""
    text = json.dumps(workflow.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Runner:
    """Drives a workflow's tasks through the API; ``step()`` does one round of work.

    With a ``state`` file the run is resumed from it if it holds an unfinished run of the same
    workflow. Every job is posted with labels ``run`` and ``attempt``, so each attempt's spec
    (and so its CID) is unique: a POST whose answer was lost is found by its spec CID.
    """

    def __init__(
        self,
        workflow: Workflow,
        api: JobsApi,
        notify: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
        state: Path | None = None,
    ) -> None:
        self.run = WorkflowRun(workflow, expand(workflow))
        self._lots = {step.name: step.lots for step in workflow.steps}
        self.api = api
        self.notify = notify
        self.clock = clock
        self._external: dict[int, dict[str, Any]] = {}
        self.state = RunStateFile(state, fingerprint(workflow)) if state else None
        self.run_id = uuid.uuid4().hex[:16]
        saved = self.state.load() if self.state else None
        if saved is not None:
            self._restore(saved)

    def _restore(self, saved: dict[str, Any]) -> None:
        self.run_id = str(saved["run_id"])
        for task in self.run.tasks:
            rec = saved["tasks"].get(task.key)
            if rec is None:
                continue
            task.state, task.jobs = rec["state"], list(rec["jobs"])
            task.result_cid, task.error = rec["result_cid"], rec["error"]
            task.posting, task.posting_since = rec["posting"], float(rec["posting_since"])
            if rec["resolved"]:
                task.spec = {**task.spec, "inputs": rec["inputs"]}
                task.parents = []
            task.posted_at = self.clock()
        settled = sum(t.state == "settled" for t in self.run.tasks)
        self._say(
            f"resuming run {self.run_id} from {self.state.path if self.state else '?'}: "
            f"{saved['jobs_posted']} jobs posted, {settled}/{len(self.run.tasks)} settled"
        )

    def _say(self, message: str) -> None:
        self.run.log.append(message)
        self.notify(message)

    def _save(self) -> None:
        if self.state is None:
            return
        tasks = {
            t.key: {
                "state": t.state,
                "jobs": t.jobs,
                "result_cid": t.result_cid,
                "error": t.error,
                "resolved": not t.parents,
                "inputs": t.spec["inputs"] if not t.parents else None,
                "posting": t.posting,
                "posting_since": t.posting_since,
            }
            for t in self.run.tasks
        }
        jobs_posted = sum(len(t.jobs) for t in self.run.tasks)
        name = self.run.workflow.metadata.name
        self.state.save(self.run_id, name, self.run.done, jobs_posted, tasks)

    def step(self, submit: bool = True) -> None:
        ready: list[Task] = []
        for task in self.run.tasks:
            if task.posting is not None:
                self._find_posted(task)
            elif task.state == "waiting" and submit and self._resolved(task):
                ready.append(task)
            elif task.state == "running":
                self._check(task)
        # A sweep's fast-path jobs sharing their windows go out in one POST /jobs/batch (one
        # postJobs transaction), or as one sweep record per price for a step with lots; any
        # other job alone.
        batches: dict[tuple[int, int, int | None], list[Task]] = {}
        for task in ready:
            payment = parse_spec(task.spec).payment
            if payment.uses_terms:
                self._submit(task)
            else:
                price = payment.max_price_wei if self._lots[task.step] else None
                key = (payment.claim_window, payment.run_window, price)
                batches.setdefault(key, []).append(task)
        for (_, _, price), tasks in batches.items():
            for start in range(0, len(tasks), MAX_BATCH):
                self._submit_batch(tasks[start : start + MAX_BATCH], sweep=price is not None)
        self._save()

    def _resolved(self, task: Task) -> bool:
        """Whether the task can be posted now: its parents' results are in its spec (False:
        not yet, or never: then it is skipped)."""
        resolved: dict[str, str] = {}
        for parent in task.parents:
            cid, failure = self._parent_result(parent)
            if failure is not None:
                task.state, task.error = "skipped", failure
                self._say(f"{task.key} skipped: {failure}")
                return False
            if cid is None:
                return False  # not yet
            resolved[parent.input_name] = cid
        task.spec = _with_inputs(task, resolved)
        task.parents = []
        return True

    def _parent_result(self, parent: Parent) -> tuple[str | None, str | None]:
        if parent.task is not None:
            if parent.task.state == "settled":
                return parent.task.result_cid, None
            if parent.task.state in ("failed", "skipped"):
                return None, f"parent {parent.task.key} {parent.task.state}"
            return None, None
        assert parent.job_id is not None
        job = self._external.get(parent.job_id)
        if job is None or job["state"] not in FINAL_STATE_LABELS:
            job = self.api.get_job(parent.job_id)
            self._external[parent.job_id] = job
        if job["state"] == "settled":
            return str(job["result_cid"]), None
        if job["state"] in FINAL_STATE_LABELS:
            return None, f"input job {parent.job_id} ended {job['state']}"
        return None, None

    def _attempt_spec(self, task: Task) -> dict[str, Any]:
        metadata = task.spec["metadata"]
        labels = {**metadata["labels"], "run": self.run_id, "attempt": str(len(task.jobs))}
        return {**task.spec, "metadata": {**metadata, "labels": labels}}

    def _submit(self, task: Task) -> None:
        if (posted := self._post([task], lambda specs: [self.api.post_job(specs[0])])) is not None:
            self._posted(task, int(posted[0]["job_id"]))

    def _submit_batch(self, tasks: list[Task], sweep: bool) -> None:
        if len(tasks) == 1:
            self._submit(tasks[0])
        elif posted := self._post(tasks, lambda specs: self.api.post_jobs(specs, sweep)["jobs"]):
            for task, item in zip(tasks, posted, strict=True):
                self._posted(task, int(item["job_id"]))

    def _post(
        self, tasks: list[Task], send: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> list[dict[str, Any]] | None:
        """Send the tasks' specs with ``send``; its answers (one per task)."""
        specs = [self._attempt_spec(task) for task in tasks]
        # Recorded before the request: if its answer is lost (a timeout, a kill), the job it
        # may have posted is found by this CID instead of being posted again.
        for task, spec in zip(tasks, specs, strict=True):
            task.posting = cid_of_bytes(canonical_json(parse_spec(spec)))
            task.posting_since = self.clock()
        self._save()
        try:
            return send(specs)
        except ApiUnavailable:
            raise  # it may have landed: _find_posted() looks next round
        except WorkflowError:
            for task in tasks:
                task.posting = None  # refused (4xx): nothing was posted
            self._save()
            raise

    def _find_posted(self, task: Task) -> None:
        assert task.posting is not None
        job_id = self.api.find_job(task.posting)
        if job_id is not None:
            self._posted(task, job_id, lost_answer=True)
        elif self.clock() - task.posting_since >= POST_GRACE:
            task.posting = None
            self._say(f"{task.key}: its unanswered POST /jobs posted nothing; posting it again")
            self._submit(task)

    def _posted(self, task: Task, job_id: int, lost_answer: bool = False) -> None:
        task.jobs.append(job_id)
        task.state, task.posting = "running", None
        task.posted_at, task.said_unclaimed = self.clock(), False
        self._save()
        attempt = f" (retry {len(task.jobs) - 1}/{task.max_retries})" if len(task.jobs) > 1 else ""
        found = " (found by its spec CID: the answer to its POST was lost)" if lost_answer else ""
        self._say(f"{task.key} posted as job {job_id}{attempt}{found}")

    def _check(self, task: Task) -> None:
        job_id = task.jobs[-1]
        job = self.api.get_job(job_id)
        state = job["state"]
        if state == "settled":
            task.state, task.result_cid = "settled", job["result_cid"]
            self._say(f"{task.key} settled: job {job_id} result {task.result_cid}")
            return
        waited = self.clock() - task.posted_at
        if state == "open" and waited >= UNCLAIMED_WARNING and not task.said_unclaimed:
            task.said_unclaimed = True
            kind = task.spec.get("kind", "?")
            price = task.spec.get("payment", {}).get("max_price", "?")
            self._say(
                f"{task.key}: job {job_id} unclaimed for {waited:.0f} s: no worker's policy "
                f"takes {kind} at max price {price} (or no worker is running); check the "
                "workers' policy kinds and asks, or raise payment.max_price"
            )
        overdue = job.get("lapsed")  # on the chain's clock, which a devnet may have moved
        if state not in FINAL_STATE_LABELS and not overdue:
            return
        why = f"job {job_id} {state}" + (f": {overdue}" if overdue else "")
        if len(task.jobs) <= task.max_retries:
            self._say(f"{task.key} failed ({why}); resubmitting")
            self._submit(task)
        else:
            task.state, task.error = "failed", why
            tries = len(task.jobs)
            self._say(f"{task.key} failed ({why}) after {tries} attempt{'s' * (tries > 1)}")


def run_workflow(
    workflow: Workflow,
    api: JobsApi,
    notify: Callable[[str], None] = lambda _: None,
    on_round: Callable[[WorkflowRun], None] = lambda _: None,
    poll: float = 0.5,
    timeout: float = 6 * 3600,
    state: Path | None = None,
    max_outage: float = MAX_OUTAGE,
) -> WorkflowRun:
    """Run every task to settled, failed or skipped (resuming the run saved in ``state``);
    raise WorkflowError on ``timeout``, on a refused request, or when the API stays
    unreachable for ``max_outage`` seconds."""
    runner = Runner(workflow, api, notify, state=state)
    started = time.monotonic()
    outage_since: float | None = None
    while True:
        try:
            runner.step()
            if outage_since is not None:
                notify(f"API reachable again after {time.monotonic() - outage_since:.0f} s")
                outage_since = None
        except ApiUnavailable as exc:
            # A long workflow rides out an API or chain restart; its state lives on chain.
            if outage_since is None:
                outage_since = time.monotonic()
                notify(f"API unavailable ({exc}); retrying for up to {max_outage:.0f} s")
            elif time.monotonic() - outage_since > max_outage:
                raise
        on_round(runner.run)
        if runner.run.done:
            return runner.run
        if time.monotonic() - started > timeout:
            raise WorkflowError(
                f"workflow {workflow.metadata.name} not done after {timeout:.0f} s; its jobs "
                "go on: follow them with `hepx job get`"
            )
        time.sleep(poll)
