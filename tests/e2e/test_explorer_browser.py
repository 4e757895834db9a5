"""The web explorer in real headless Chromium against a running devnet (anvil, API, one worker).

A physics job is posted after the pages are open; the test watches it reach `settled` through
Server-Sent Events (the page must not reload: a marker on `window` survives), then follows the
links to the settling transaction and to the result's histogram. Screenshots go to
test-artifacts/explorer/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hepx.anvil import free_port
from hepx.devnet import Devnet, start_devnet

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "explorer"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


def _require_chromium() -> str:
    """Chromium's path; skip without it, unless CI demands it (HEPX_REQUIRE_CHROMIUM)."""
    if CHROMIUM is None:
        message = "chromium is not installed: run scripts/chromium.sh (CI does)"
        if os.environ.get("HEPX_REQUIRE_CHROMIUM"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    home = tmp_path_factory.mktemp("hepx-explorer")
    net = start_devnet(
        home, workers=1, anvil_port=free_port(), api_port=free_port(), challenge_window=2
    )
    yield net
    net.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _small_pythia_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((REPO / "examples" / "pythia-dijet.yaml").read_text())
    spec["params"]["events"] = 200  # a few seconds: enough jets for a histogram
    spec["metadata"]["name"] = "explorer-test"
    return spec


def test_explorer_follows_a_job_live_to_settled_and_shows_its_tx_and_plot(
    browser: Any, devnet: Devnet
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{devnet.api_url}/")
    page.wait_for_selector("text=live", timeout=10_000)
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.evaluate("window.__noReload = 'still here'")

    posted = httpx.post(f"{devnet.api_url}/jobs", json=_small_pythia_spec(), timeout=60)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]

    # The new row appears and walks to settled in place: SSE + fragment refresh, no reload.
    row = f"#job-{job_id} .job-state"
    page.wait_for_selector(row, timeout=30_000)
    page.wait_for_function(
        f"document.querySelector('{row}')?.textContent.trim() === 'settled'", timeout=240_000
    )
    assert page.evaluate("window.__noReload") == "still here"
    assert int(page.evaluate("document.getElementById('live').dataset.refreshed")) >= 1
    assert "JobSettled" in page.inner_text("#feed")
    page.screenshot(path=str(ARTIFACTS / "jobs.png"), full_page=True)

    # The job's timeline: every transition with its tx, block and gas, and the money.
    page.click(f"#job-{job_id} a[href='/job/{job_id}']")
    page.wait_for_selector("#timeline")
    events = page.eval_on_selector_all(
        "#timeline tr.transition", "rows => rows.map(r => r.dataset.event)"
    )
    assert events == ["JobPosted", "JobClaimed", "ResultSubmitted", "JobSettled"]
    assert page.inner_text("#job-state").strip() == "settled"
    assert "worker payment" in page.inner_text("#payments")
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)

    # The settling transaction, decoded: the call and the JobSettled event's arguments.
    page.click("#timeline tr[data-event='JobSettled'] a[href^='/tx/']")
    page.wait_for_selector("#logs")
    settling = ("finalize(uint256)", "finalizeJobs(uint256[])", "accept(uint256)")
    assert page.inner_text("#call-signature") in settling
    settled = page.inner_text("#logs tr[data-event='JobSettled']")
    assert "payment" in settled and "worker" in settled
    page.screenshot(path=str(ARTIFACTS / "tx.png"), full_page=True)

    # The result page draws the ROOT file's histogram server-side.
    page.go_back()
    page.click("#result-link")
    image = page.wait_for_selector("img.root-hist", timeout=30_000)
    page.wait_for_function(
        "[...document.querySelectorAll('img.root-hist')].every(i => i.complete && "
        "i.naturalWidth > 0)",
        timeout=30_000,
    )
    assert image.get_attribute("alt") == "jet_pt"
    assert page.locator(f"main#live a[href='/job/{job_id}']").count() == 1  # whose result
    assert "sigma_mb" in page.inner_text("section[data-kind='json']")
    page.screenshot(path=str(ARTIFACTS / "result.png"), full_page=True)
    page.close()


# An EIP-1193 provider as a wallet extension injects it, backed by one of anvil's unlocked dev
# accounts: anvil itself signs (eth_signTypedData_v4) and sends (eth_sendTransaction).
_TEST_WALLET = """
(() => {
  const RPC = %s, ACCOUNT = %s;
  let id = 0;
  window.__walletCalls = [];
  window.ethereum = {
    async request({ method, params }) {
      window.__walletCalls.push(method);
      if (method === "eth_requestAccounts" || method === "eth_accounts") { return [ACCOUNT]; }
      const reply = await fetch(RPC, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params || [] }) });
      const body = await reply.json();
      if (body.error) { throw new Error(body.error.message); }
      return body.result;
    },
  };
})();
"""


def test_a_browser_wallet_deposits_signs_and_follows_its_job_to_settled(
    browser: Any, devnet: Devnet
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    user = devnet.anvil.accounts[9]  # holds no key the devnet uses
    api_key_owner = devnet.requester.address
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.add_init_script(_TEST_WALLET % (json.dumps(devnet.anvil.url), json.dumps(user.address)))
    page.goto(f"{devnet.api_url}/wallet")
    page.click("#connect")
    page.wait_for_function("document.getElementById('account').textContent.length === 42")
    page.click("#submit")
    page.wait_for_function("document.body.dataset.jobDone !== undefined", timeout=120_000)
    steps = page.inner_text("#steps")
    assert page.evaluate("document.body.dataset.jobDone") == "settled", steps
    calls = page.evaluate("window.__walletCalls")
    assert "eth_sendTransaction" in calls and "eth_signTypedData_v4" in calls  # deposit, sign
    assert "error" not in steps
    job_id = int(page.inner_text("#job-link").split()[-1])
    job = httpx.get(f"{devnet.api_url}/jobs/{job_id}", timeout=30).json()
    assert job["requester"].lower() == user.address.lower() != api_key_owner.lower()
    assert page.inner_text("#job-result").startswith("baf")
    page.screenshot(path=str(ARTIFACTS / "wallet.png"), full_page=True)
    page.close()


def test_cli_watches_a_job_to_settled_then_lists_fetches_and_links_it(
    devnet: Devnet, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hepx.cli import app

    runner = CliRunner()
    api = ["--api", devnet.api_url]
    spec = yaml.safe_load((REPO / "examples" / "echo.yaml").read_text())
    posted = httpx.post(f"{devnet.api_url}/jobs", json=spec, timeout=60)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]

    watched = runner.invoke(app, ["job", "watch", str(job_id), "--json", *api])
    assert watched.exit_code == 0, watched.output
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    names = [e["event"] for e in events if e["event"] != "Payment"]
    assert names == ["JobPosted", "JobClaimed", "ResultSubmitted", "JobSettled"]
    assert events[0]["tx_hash"] == posted.json()["tx_hash"]

    listed = runner.invoke(app, ["job", "list", "--state", "settled", "--json", *api])
    assert listed.exit_code == 0, listed.output
    assert job_id in [j["job_id"] for j in json.loads(listed.stdout)["items"]]

    logs = runner.invoke(app, ["job", "logs", str(job_id), *api])
    assert logs.exit_code == 0, logs.output
    result_cid = httpx.get(f"{devnet.api_url}/jobs/{job_id}/result").json()["result_cid"]
    published = httpx.get(f"{devnet.api_url}/ipfs/{result_cid}/job.log").text
    assert logs.stdout == published

    fetched = runner.invoke(
        app, ["job", "result", str(job_id), "-o", str(tmp_path / "r"), "--json", *api]
    )
    assert fetched.exit_code == 0, fetched.output
    message = (tmp_path / "r" / "outputs" / "message.txt").read_text()
    assert message.strip() == spec["params"]["message"]

    workers = runner.invoke(app, ["worker", "list", "--json", *api])
    assert workers.exit_code == 0, workers.output
    (worker,) = json.loads(workers.stdout)
    assert worker["address"].lower() == devnet.workers[0].address.lower()
    assert worker["settled"] >= 1

    human = runner.invoke(app, ["job", "result", str(job_id), *api])
    assert f"{devnet.api_url}/tx/" in human.stdout and "/result/" in human.stdout
    opened = runner.invoke(app, ["explorer", "open", "--print", "--job", str(job_id), *api])
    assert opened.stdout.strip() == f"{devnet.api_url}/job/{job_id}"
