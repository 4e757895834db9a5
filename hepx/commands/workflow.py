"""``hepx workflow check|submit``: chained jobs, sweeps and merges through the REST API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hepx.config import load_settings
from hepx.errors import WorkflowError
from hepx.workflow import (
    Runner,
    WorkflowRun,
    expand,
    load_workflow,
    run_workflow,
)
from hepx.workflow_api import HttpJobsApi
from hepx.workflow_spec import Workflow

app = typer.Typer(
    help="Run workflows: steps of jobs chained by their results.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)

FileArg = Annotated[Path, typer.Argument(help="Workflow file (YAML)", exists=True, dir_okay=False)]


def _load(path: Path) -> Workflow:
    try:
        return load_workflow(path)
    except WorkflowError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command("check")
def check(file: FileArg) -> None:
    """Validate a workflow file and list the jobs it would post."""
    workflow = _load(file)
    table = Table(title=f"workflow {workflow.metadata.name}")
    for column in ("job", "kind", "params", "inputs from"):
        table.add_column(column)
    for task in expand(workflow):
        sources = [p.task.key if p.task else f"job {p.job_id}" for p in task.parents]
        sources += [i["cid"] for i in task.spec["inputs"]]
        table.add_row(
            task.key, task.spec["kind"], json.dumps(task.spec["params"]), ", ".join(sources)
        )
    Console().print(table)


@app.command("submit")
def submit(
    file: FileArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Run the whole workflow: chain, retry, merge")
    ] = False,
    api: Annotated[str | None, typer.Option(help="API URL (default HEPX_API_URL)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds")] = 21600,
    state: Annotated[
        Path | None,
        typer.Option(
            help="The run's state file: an unfinished run saved there is resumed "
            "(default <HEPX_HOME>/workflows/<name>.json)",
            dir_okay=False,
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new run even if one is unfinished")
    ] = False,
) -> None:
    """Submit a workflow. Without --wait only jobs that need no other job's result are posted.

    The run is recorded in a state file as it goes: run the same command again after a crash
    or Ctrl-C and it carries on where it was, posting no job twice."""
    workflow = _load(file)
    settings = load_settings()
    jobs_api = HttpJobsApi(api or settings.api_url, headers=settings.api_headers())
    state = state or settings.home / "workflows" / f"{workflow.metadata.name}.json"
    if fresh and state.exists():
        state.replace(state.with_name(f"{state.stem}.{int(time.time())}.abandoned.json"))
        console.print(f"started anew; the unfinished run's record was kept beside {state}")
    try:
        if not wait:
            runner = Runner(workflow, jobs_api, notify=console.print, state=state)
            runner.step()
            _finish(runner.run, as_json, complete=False)
            return
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            bars = {
                s.name: progress.add_task(s.name, total=None, status="waiting")
                for s in workflow.steps
            }

            def show(run: WorkflowRun) -> None:
                for step, bar in bars.items():
                    tasks = run.step_tasks(step)
                    counts = {s: sum(t.state == s for t in tasks) for s in _STATES}
                    retries = sum(max(0, len(t.jobs) - 1) for t in tasks)
                    status = ", ".join(
                        f"{n} {s}" for s, n in counts.items() if n and s != "settled"
                    )
                    if retries:
                        status += f" ({retries} retried)"
                    progress.update(
                        bar, total=len(tasks), completed=counts["settled"], status=status or "done"
                    )

            run = run_workflow(
                workflow,
                jobs_api,
                notify=progress.console.print,
                on_round=show,
                timeout=timeout,
                state=state,
            )
    except WorkflowError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    _finish(run, as_json, complete=True)
    if not run.ok:
        raise typer.Exit(1)


_STATES = ("waiting", "running", "settled", "failed", "skipped")


def _finish(run: WorkflowRun, as_json: bool, complete: bool) -> None:
    if as_json:
        typer.echo(json.dumps(run.to_json(), indent=2))
        return
    table = Table(title=f"workflow {run.workflow.metadata.name}")
    for column in ("job", "state", "on-chain jobs", "result"):
        table.add_column(column)
    for task in run.tasks:
        result = task.result_cid or task.error or ""
        table.add_row(task.key, task.state, ", ".join(map(str, task.jobs)), result)
    Console().print(table)
    if not complete:
        console.print(
            "posted the jobs that need no other job's result; run with --wait to chain the rest"
        )
    elif run.ok:
        last = run.workflow.steps[-1].name
        cids = " ".join(str(t.result_cid) for t in run.step_tasks(last))
        typer.echo(f"workflow {run.workflow.metadata.name} done: {last} result {cids}")
