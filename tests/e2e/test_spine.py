"""The whole stack on a real anvil: API + two worker agents, one of which serves echo only,
run the example physics job."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml

from hepx.anvil import free_port
from hepx.chain import MarketClient, kind_id
from hepx.devnet import Devnet, start_devnet
from hepx.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    home = tmp_path_factory.mktemp("hepx-home")
    echo_only = home / "echo-only.yaml"
    echo_only.write_text("kinds: {echo: {price: '1 gwei'}}\n")
    net = start_devnet(home, workers=2, anvil_port=free_port(), api_port=free_port(),
                       challenge_window=2, worker_policies=[echo_only])  # fmt: skip
    yield net
    net.stop()


def _gas_paid_by(client: MarketClient, address: str, from_block: int, to_block: int) -> int:
    """Wei ``address`` spent on gas for every tx it sent in blocks ``from_block..to_block``."""
    total = 0
    for number in range(from_block, to_block + 1):
        block = client.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if tx["from"].lower() == address.lower():
                receipt = client.w3.eth.get_transaction_receipt(tx["hash"])
                total += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return total


def _download_tree(api: str, cid: str, dest: Path) -> None:
    """Fetch a directory through the gateway, file by file, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    listing = httpx.get(f"{api}/ipfs/{cid}", headers={"Accept": "application/json"}, timeout=30)
    listing.raise_for_status()
    for entry in listing.json()["entries"]:
        if entry["type"] == "directory":
            _download_tree(api, entry["cid"], dest / entry["name"])
        else:
            body = httpx.get(f"{api}/ipfs/{entry['cid']}", timeout=60)
            body.raise_for_status()
            (dest / entry["name"]).write_bytes(body.content)


def _wait_state(api: str, job_id: int, state: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/jobs/{job_id}", timeout=10).json()
        if job["state"] == state:
            return job
        assert job["state"] not in {"expired", "cancelled"}, job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job.get('state')} after {timeout} s")


def test_example_physics_job_settles_pays_worker_and_result_verifies(
    devnet: Devnet, tmp_path: Path
) -> None:
    client = MarketClient.from_deployment(devnet.deployment)
    requester, worker = devnet.requester.address, devnet.workers[1].address
    # Balances and gas are read at pinned blocks: the agents keep sending (registering,
    # withdrawing) while the test reads, and a "latest" read can land a block after the count.
    before_block = client.block_number()
    requester_before = client.balance(requester, before_block)
    worker_before = client.balance(worker, before_block)

    spec = yaml.safe_load((REPO / "examples" / "pythia-dijet.yaml").read_text())
    posted = httpx.post(f"{devnet.api_url}/jobs", json=spec, timeout=60)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["job_id"]

    job = _wait_state(devnet.api_url, job_id, "settled", timeout=300)
    names = [step["event"] for step in job["transitions"]]
    for expected in ("JobPosted", "JobClaimed", "ResultSubmitted", "JobSettled"):
        assert expected in names
    assert job["worker"].lower() == worker.lower()
    # The first worker runs its own policy: it registered echo alone, so the job was not its.
    registered = {
        str(e.args["worker"]).lower(): list(e.args["kinds"])
        for e in client.events(devnet.deployment.deploy_block, client.block_number())
        if e.name == "WorkerRegistered"
    }
    assert registered[devnet.workers[0].address.lower()] == [kind_id("echo")]
    assert len(registered[worker.lower()]) > 1

    # The result fetched through the gateway rehashes to the CID the worker committed on chain.
    result_cid = job["result_cid"]
    on_chain = client.events(devnet.deployment.deploy_block, client.block_number(), job_id=job_id)
    assert [e.args["resultCid"] for e in on_chain if e.name == "ResultSubmitted"] == [result_cid]
    _download_tree(devnet.api_url, result_cid, tmp_path / "result")
    assert LocalStore(tmp_path / "fresh-store").add_dir(tmp_path / "result") == result_cid
    summary = httpx.get(f"{devnet.api_url}/ipfs/{result_cid}/outputs/summary.json").json()
    assert summary["sigma_mb"] > 0

    # Money: the worker got exactly its price, the requester exactly the refund.
    chain_job = client.job(job_id)
    [escrow] = [e.args["maxPrice"] for e in on_chain if e.name == "JobPosted"]
    price = chain_job.price
    assert 0 < price <= escrow and chain_job.escrow == 0  # settled: the market holds nothing
    deadline = time.monotonic() + 30
    while client.withdrawable(worker) and time.monotonic() < deadline:
        time.sleep(0.3)  # the agent withdraws its earnings on its next loop
    assert client.withdrawable(worker) == 0
    assert client.withdrawable(requester) == escrow - price
    after_block = client.block_number()
    worker_gas = _gas_paid_by(client, worker, before_block + 1, after_block)
    assert client.balance(worker, after_block) - worker_before == price - worker_gas
    requester_gas = _gas_paid_by(client, requester, before_block + 1, after_block)
    assert requester_before - client.balance(requester, after_block) == escrow + requester_gas

    requester_client = MarketClient.from_deployment(
        devnet.deployment, private_key=devnet.requester.private_key
    )
    tx = requester_client.withdraw()
    refund_gas = _gas_paid_by(client, requester, tx.block_number, tx.block_number)
    refunded = client.balance(requester, tx.block_number)
    assert requester_before - refunded == price + requester_gas + refund_gas
