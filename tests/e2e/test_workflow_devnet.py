"""The dijet example workflow through a real devnet (anvil, API, two workers), with the physics
checks of issue 6: merged cross section vs a bare Pythia8 run, errors shrinking with seeds,
a falling jet spectrum from the generator cut, provenance, same-seed digests and retries."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.kinds import runner_command
from agent.kinds.hep_common import start_pythia
from agent.kinds.hep_generate import generate_settings
from hepx.anvil import free_port
from hepx.chain import MarketClient
from hepx.devnet import Devnet, start_devnet
from hepx.kinds.hep_generate import GenerateParams
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

pytest.importorskip("pythia8mc")
pytest.importorskip("pyhepmc")
pytest.importorskip("ROOT")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
EVENTS = 50


@dataclass
class Done:
    devnet: Devnet
    store: LocalStore
    run: dict[str, Any]  # `hepx workflow submit --json` output
    workflow: dict[str, Any]

    def results(self, step: str) -> list[str]:
        return [str(t["result_cid"]) for t in self.run["steps"][step]]

    def json(self, cid: str, path: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.store.read_bytes(self.store.resolve(cid, path)))
        return data


def workflow_doc() -> dict[str, Any]:
    """The example with fewer events, a same-seed replica chain and a job that always fails."""
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / "dijet-workflow.yaml").read_text())
    generate, analyze, merge = doc["steps"]
    generate["params"]["events"] = EVENTS
    generate["lots"] = True  # its seeds go out as one sweep, which the workers take in lots
    replica = {**generate, "name": "replica", "sweep": {"seed": [1]}}
    replica_analyze = {**analyze, "name": "replica-analyze", "foreach": "replica"}
    flaky = {
        "name": "flaky",
        "kind": "echo",
        "params": {"fail": "on purpose"},
        "max_retries": 1,
        "resources": {"max_runtime": 2},
        "payment": {"claim_window": 60, "run_window": 3},
    }
    doc["steps"] = [flaky, generate, replica, analyze, replica_analyze, merge]
    return doc


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Done]:
    home = tmp_path_factory.mktemp("hepx-wf")
    net = start_devnet(
        home,
        workers=2,
        anvil_port=free_port(),
        api_port=free_port(),
        challenge_window=1,
        policy=REPO / "examples" / "hep-policy.yaml",
    )
    try:
        workflow = workflow_doc()
        path = home / "workflow.yaml"
        path.write_text(yaml.safe_dump(workflow))
        out = subprocess.run(
            [sys.executable, "-m", "hepx", "workflow", "submit", str(path), "--wait", "--json"],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "HEPX_API_URL": net.api_url, "HEPX_HOME": str(home)},
        )
        assert out.returncode == 1, out.stderr[-3000:]  # the flaky step fails on purpose
        run = json.loads(out.stdout)
        yield Done(net, LocalStore(home / "store"), run, workflow)
    finally:
        net.stop()


def test_every_physics_step_settles_and_chains_results_as_inputs(done: Done) -> None:
    for step in ("generate", "replica", "analyze", "replica-analyze", "merge"):
        assert {t["state"] for t in done.run["steps"][step]} == {"settled"}, step
    generated = done.results("generate")
    for cid, analysis in zip(generated, done.results("analyze"), strict=True):
        assert done.json(analysis, "provenance.json")["inputs"] == {"generate": cid}
    merge_inputs = done.json(done.results("merge")[0], "provenance.json")["inputs"]
    assert merge_inputs == {f"analyze-{i}": cid for i, cid in enumerate(done.results("analyze"))}


def test_the_step_with_lots_went_out_as_one_sweep_taken_in_lots(done: Done) -> None:
    client = MarketClient(done.devnet.anvil.url, done.devnet.deployment.job_market, None)
    events = client.events(done.devnet.deployment.deploy_block, client.block_number())
    (sweep,) = [e for e in events if e.name == "SweepPosted"]
    first_jobs = [t["jobs"][0] for t in done.run["steps"]["generate"]]
    assert first_jobs == [int(sweep.args["sweepId"]) + i for i in range(4)]
    lots = {e.name for e in events if e.name.startswith("Lot")}
    assert {"LotClaimed", "LotSubmitted", "LotSettled"} <= lots


def test_failed_job_is_retried_as_a_new_on_chain_job_then_reported(done: Done) -> None:
    (flaky,) = done.run["steps"]["flaky"]
    assert flaky["state"] == "failed" and len(flaky["jobs"]) == 2
    for job_id in flaky["jobs"]:
        job = httpx.get(f"{done.devnet.api_url}/jobs/{job_id}", timeout=10).json()
        assert job["state"] == "expired"  # escrow refunded to the requester
        assert job["requester"].lower() == done.devnet.requester.address.lower()


def _bare_pythia_sigma(seed: int, events: int) -> tuple[float, float]:
    params = GenerateParams(seed=seed, events=events, pt_hat_min=50)
    pythia = start_pythia(generate_settings(params, []), "reference")
    for _ in range(events):
        assert pythia.next()
    info = pythia.infoPython()
    return float(info.sigmaGen()), float(info.sigmaErr())


def test_merged_cross_section_agrees_with_pythia_within_its_error(done: Done) -> None:
    merged = done.json(done.results("merge")[0], "outputs/summary.json")
    assert merged["events"] == 4 * EVENTS and merged["seeds"] == [1, 2, 3, 4]
    sigma, err = _bare_pythia_sigma(seed=99, events=4 * EVENTS)
    # Both are Monte Carlo estimates with stated errors: they agree to within 3 combined sigma.
    combined = math.hypot(err, merged["sigma_err_mb"])
    assert abs(merged["sigma_mb"] - sigma) < 3 * combined, (merged["sigma_mb"], sigma, combined)


def _merge_locally(done: Done, analyses: list[str], folder: Path) -> dict[str, Any]:
    names = [f"a{i}" for i in range(len(analyses))]
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1",
            "kind": "hep.merge",
            "metadata": {"name": "subset"},
            "inputs": [{"name": n, "cid": c} for n, c in zip(names, analyses, strict=True)],
            "resources": {"max_runtime": 120},
            "payment": {"max_price": 1, "claim_window": 60, "run_window": 120},
        }
    )
    (folder / "inputs").mkdir(parents=True)
    (folder / "outputs").mkdir()
    (folder / "spec.json").write_bytes(canonical_json(spec))
    for name, cid in zip(names, analyses, strict=True):
        done.store.get(cid, folder / "inputs" / name)
    cmd = runner_command("hep.merge", folder / "spec.json", folder / "inputs", folder / "outputs")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    result: dict[str, Any] = json.loads((folder / "outputs" / "summary.json").read_text())
    return result


def test_statistical_error_shrinks_as_seeds_are_added(done: Done, tmp_path: Path) -> None:
    analyses = done.results("analyze")
    one = _merge_locally(done, analyses[:1], tmp_path / "one")
    two = _merge_locally(done, analyses[:2], tmp_path / "two")
    four = done.json(done.results("merge")[0], "outputs/summary.json")
    assert one["sigma_err_mb"] > two["sigma_err_mb"] > four["sigma_err_mb"]
    assert one["events"] < two["events"] < four["events"]


def test_jet_pt_spectrum_falls_and_starts_at_the_generator_cut(done: Done) -> None:
    generated = done.json(done.results("generate")[0], "outputs/summary.json")
    merged = done.json(done.results("merge")[0], "outputs/summary.json")
    hist = merged["histograms"]["jet_pt"]
    assert hist["edges"][0] == generated["pt_hat_min"] == 50
    values = hist["values"]
    assert values[0] == max(values) > 0
    groups = [sum(values[i : i + 5]) for i in range(0, len(values), 5)]
    assert all(a >= b for a, b in zip(groups, groups[1:], strict=False)), groups
    assert groups[0] > 10 * groups[-1]
    assert hist["underflow"] == 0


def test_provenance_records_spec_inputs_versions_seed_worker_and_txs(done: Done) -> None:
    workers = {w.address.lower() for w in done.devnet.workers}
    for cid, task in zip(done.results("generate"), done.run["steps"]["generate"], strict=True):
        prov = done.json(cid, "provenance.json")
        assert prov["kind"] == "hep.generate" and prov["job_id"] == task["jobs"][-1]
        assert prov["seed"] == task["params"]["seed"]
        assert prov["worker"].lower() in workers
        assert prov["claim_tx"].startswith("0x") and len(prov["claim_tx"]) == 66
        assert prov["runner_software"]["pythia8mc"] == "8.317.2"
        assert prov["spec_cid"] and prov["digest"]["method"] == "bytes"
        job = httpx.get(f"{done.devnet.api_url}/jobs/{task['jobs'][-1]}", timeout=10).json()
        assert job["spec_cid"] == prov["spec_cid"]
        assert job["worker"].lower() == prov["worker"].lower()


def test_same_seed_gives_equal_digests_in_the_market_other_seeds_do_not(done: Done) -> None:
    def digest(cid: str) -> str:
        return str(done.json(cid, "provenance.json")["digest"]["value"])

    (replica,) = done.results("replica")
    generated = done.results("generate")
    assert digest(replica) == digest(generated[0])  # seed 1, run twice
    assert len({digest(cid) for cid in generated}) == 4
    (replica_analysis,) = done.results("replica-analyze")
    analyses = done.results("analyze")
    assert digest(replica_analysis) == digest(analyses[0])
    assert digest(analyses[1]) != digest(analyses[0])
