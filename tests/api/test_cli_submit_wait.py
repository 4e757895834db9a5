"""`hepx job submit --wait` against a real API: it ends when the job can no longer progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from api_helpers import echo_spec
from typer.testing import CliRunner

from hepx.anvil import Anvil
from hepx.cli import app as cli_app
from hepx.commands.job import app as job_cli


def _rpc(node: Anvil, method: str, params: list[Any]) -> None:
    httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_wait_stops_with_a_reason_when_nobody_claims_before_the_deadline(
    live_url: str, node: Anvil, tmp_path: Path
) -> None:
    # No worker runs here: before, --wait sat out claim + run window + an hour on a job that
    # could only be expired. The devnet's clock runs 15 minutes ahead of the wall clock (as
    # after other tests' time warps): the deadline is the chain's, so is the lapse.
    _rpc(node, "evm_increaseTime", [900])
    _rpc(node, "evm_mine", [])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(echo_spec(claim_window=2)))
    result = CliRunner().invoke(job_cli, ["submit", str(spec), "--wait", "--api", live_url])
    assert result.exit_code == 3, result.output
    assert "is open and will not end by itself" in result.output
    assert "nobody claimed it before its claim deadline" in result.output
    job_id = int(result.output.split("job ", 1)[1].split(" ", 1)[0])
    assert f"hepx job expire {job_id}" in result.output


def test_submit_with_an_account_posts_from_the_requesters_own_key(
    live_url: str, node: Anvil, deployment_file: Path, tmp_path: Path
) -> None:
    env = {"HEPX_HOME": str(tmp_path), "HEPX_PRIVATE_KEY": "", "PW": "pw of own",
           "OWN_KEY": node.accounts[7].private_key}  # fmt: skip
    imported = CliRunner().invoke(
        cli_app, ["account", "import", "own", "--key-env", "OWN_KEY", "--password-env", "PW"],
        env=env,
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(echo_spec()))
    result = CliRunner().invoke(
        job_cli,
        ["submit", str(spec), "--json", "--api", live_url, "--account", "own",
         "--deployment", str(deployment_file)],
        env={**env, "HEPX_PASSWORD_ENV": "PW"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    posted = json.loads(result.stdout)
    job = httpx.get(f"{live_url}/jobs/{posted['job_id']}", timeout=10).json()
    assert job["requester"].lower() == node.accounts[7].address.lower()  # not the API's key
    assert job["spec_cid"] == posted["spec_cid"]
    assert httpx.get(f"{live_url}/ipfs/{posted['spec_cid']}", timeout=10).status_code == 200
