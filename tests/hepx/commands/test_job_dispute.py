"""`hepx job dispute ID [--recheck]` against a real node and JobMarket: the re-check re-runs
the echo job here with the agent's executor and disputes only a result that differs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent.executor import execute
from hepx.anvil import Anvil
from hepx.chain import CourtClient, JobState, MarketClient, deploy_market
from hepx.cli import app
from hepx.deployment import Deployment
from hepx.digest import digest_bytes32
from hepx.spec import canonical_json, load_spec_file, parse_spec
from hepx.store import LocalStore

PRICE = 10**15
RESULT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
WINDOW = 60


@pytest.fixture
def deployment(node: Anvil, tmp_path: Path) -> Deployment:
    deployed = deploy_market(node.url, node.accounts[0].private_key, WINDOW)
    deployed.save(tmp_path / "deployment.json")
    return deployed


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)  # HEPX_HOME/store: the CLI's store


def _cli(tmp_path: Path, node: Anvil, account: int, *args: str) -> Result:
    env = {
        "HEPX_HOME": str(tmp_path),
        "HEPX_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "HEPX_PRIVATE_KEY": node.accounts[account].private_key,
    }
    return CliRunner().invoke(app, list(args), env=env)


def _submitted(
    node: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path, honest: bool
) -> int:
    """An echo job claimed by account 5, whose result is the honest run's or a made-up one."""
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "checked"},
            "params": {"message": "checked here"}, "resources": {"max_runtime": 20},
            "payment": {"max_price": PRICE, "claim_window": 60, "run_window": 60},
        }
    )  # fmt: skip
    requester = MarketClient.from_deployment(deployment, private_key=node.accounts[0].private_key)
    worker = MarketClient.from_deployment(deployment, private_key=node.accounts[5].private_key)
    job_id, _ = requester.post_job(store.add_bytes(canonical_json(spec)), PRICE, 60, 60)
    worker.claim(job_id, PRICE)
    result = tmp_path / "worker" / "result"
    outputs = result / "outputs"
    outputs.mkdir(parents=True)
    if honest:
        spec_path = tmp_path / "worker" / "spec.json"
        spec_path.write_bytes(canonical_json(spec))
        (tmp_path / "worker" / "inputs").mkdir()
        execute("echo", spec_path, tmp_path / "worker" / "inputs", outputs,
                tmp_path / "worker" / "job.log", 20, job_id)  # fmt: skip
    else:
        (outputs / "echo.txt").write_text("made up\n")
    worker.submit_result(job_id, store.add_dir(result), digest_bytes32("echo", outputs))
    return job_id


def test_dispute_with_recheck_leaves_a_result_that_checks_out_alone(
    node: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    job_id = _submitted(node, deployment, store, tmp_path, honest=True)
    done = _cli(tmp_path, node, 0, "job", "dispute", str(job_id), "--recheck")
    assert done.exit_code == 0, done.output
    assert "checks out here; not disputed" in done.stdout
    client = MarketClient.from_deployment(deployment)
    assert client.job(job_id).state == JobState.SUBMITTED


def test_dispute_with_recheck_disputes_a_made_up_result_with_its_bond(
    node: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    job_id = _submitted(node, deployment, store, tmp_path, honest=False)
    done = _cli(tmp_path, node, 0, "job", "dispute", str(job_id), "--recheck", "--panel", "5")
    assert done.exit_code == 0, done.output
    assert f"job {job_id} disputed" in done.stdout
    client = MarketClient.from_deployment(deployment)
    assert client.job(job_id).state == JobState.DISPUTED
    opened = CourtClient.of_market(client).dispute(job_id)
    assert opened is not None and (opened.panel, opened.bond) == (5, 5 * PRICE)


def test_dispute_of_a_result_not_submitted_or_with_a_bad_panel_says_why(
    node: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    requester = MarketClient.from_deployment(deployment, private_key=node.accounts[0].private_key)
    open_job, _ = requester.post_job("bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4",
                                     PRICE, 60, 60)  # fmt: skip
    done = _cli(tmp_path, node, 0, "job", "dispute", str(open_job))
    assert done.exit_code == 1
    assert "is open: only a submitted result can be disputed" in done.output
    job_id = _submitted(node, deployment, store, tmp_path, honest=False)
    done = _cli(tmp_path, node, 0, "job", "dispute", str(job_id), "--panel", "4")
    assert done.exit_code == 1
    assert "CourtInvalidPanel" in done.output


def test_an_llm_result_is_not_disputable_and_the_cli_says_why(
    node: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    spec = load_spec_file(Path(__file__).parents[3] / "examples" / "llm-chat.yaml")
    requester = MarketClient.from_deployment(deployment, private_key=node.accounts[0].private_key)
    worker = MarketClient.from_deployment(deployment, private_key=node.accounts[5].private_key)
    job_id, _ = requester.post_job(store.add_bytes(canonical_json(spec)), PRICE, 60, 60)
    worker.claim(job_id, PRICE)
    worker.submit_result(job_id, RESULT_CID, bytes(32))
    done = _cli(tmp_path, node, 0, "job", "dispute", str(job_id))
    assert done.exit_code == 1
    assert f"job {job_id} (llm.chat) is not disputable: an LLM's answer depends" in done.output
    assert requester.job(job_id).state == JobState.SUBMITTED
