"""The SQLite event index against a real anvil and JobMarket: catch-up, filters, reorgs, rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hepx.anvil import Anvil
from hepx.chain import MarketClient, deploy_market
from hepx.deployment import Deployment
from hepx.errors import EventIndexError
from hepx.index import MarketIndex

WEI = 10**15


@pytest.fixture
def snapshot(node: Anvil, deployment: Deployment) -> Iterator[MarketClient]:
    reader = MarketClient.from_deployment(deployment)
    snap = reader.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield reader
    reader.w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def _client(node: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=node.accounts[account].private_key)


def _kinds(cid: str) -> str:
    return "echo" if cid.startswith("echo") else "hep.pythia"


def _index(tmp_path: Path, reader: MarketClient, deployment: Deployment) -> MarketIndex:
    return MarketIndex(
        tmp_path / "index.sqlite", reader, deployment.deploy_block, kind_of=_kinds, chunk=3
    )


def test_sync_follows_each_job_to_its_state_and_filters_combine(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester, other = _client(node, deployment, 1), _client(node, deployment, 2)
    worker = _client(node, deployment, 3)
    posted = [requester.post_job(f"echo-{i}", WEI, 600, 600)[0] for i in range(3)]
    posted.append(other.post_job("pythia-1", 2 * WEI, 600, 600)[0])
    worker.claim(posted[0], WEI // 2)
    worker.submit_result(posted[0], "bafyresult", bytes(32))
    requester.accept(posted[0])
    worker.claim(posted[3], WEI)
    requester.cancel(posted[1])

    index = _index(tmp_path, snapshot, deployment)
    result = index.sync()
    assert result.to_block == snapshot.block_number()
    assert index.synced_block == snapshot.block_number()

    assert {j.job_id: j.state for j in index.jobs().items} == {
        posted[0]: "settled",
        posted[1]: "cancelled",
        posted[2]: "open",
        posted[3]: "claimed",
    }
    settled = index.job(posted[0])
    assert settled is not None
    assert (settled.worker, settled.price, settled.result_cid) == (
        worker.sender,
        WEI // 2,
        "bafyresult",
    )
    assert [j.job_id for j in index.jobs(kind="echo", state="open").items] == [posted[2]]
    assert [j.job_id for j in index.jobs(requester=other.sender.lower()).items] == [posted[3]]
    assert {j.job_id for j in index.jobs(worker=worker.sender).items} == {posted[0], posted[3]}
    assert index.state_counts()["settled"] == 1
    assert [j.job_id for j in index.jobs(result_cid="bafyresult").items] == [posted[0]]

    timeline = [e.name for e in index.events(job_id=posted[0]) if e.name != "Payment"]
    assert timeline == ["JobPosted", "JobClaimed", "ResultSubmitted", "JobSettled"]
    (stats,) = index.workers()
    assert (stats.address, stats.jobs_won, stats.settled, stats.earnings) == (
        worker.sender,
        2,
        1,
        WEI // 2,
    )
    # A second sync with nothing new adds nothing.
    assert index.sync().events == 0
    assert len(index.events()) == len(snapshot.events(deployment.deploy_block, index.synced_block))


def test_pages_are_newest_first_and_count_every_match(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester = _client(node, deployment, 1)
    ids = [requester.post_job(f"echo-{i}", WEI, 600, 600)[0] for i in range(5)]
    index = _index(tmp_path, snapshot, deployment)
    index.sync()
    first, last = index.jobs(per_page=2), index.jobs(per_page=2, page=3)
    assert [j.job_id for j in first.items] == ids[::-1][:2]
    assert [j.job_id for j in last.items] == ids[:1]
    assert (first.total, first.pages) == (5, 3)


def test_reorg_drops_the_orphaned_events_and_indexes_the_new_fork(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester, worker = _client(node, deployment, 1), _client(node, deployment, 3)
    job_id, _ = requester.post_job("echo-a", WEI, 600, 600)
    index = _index(tmp_path, snapshot, deployment)
    index.sync()
    fork = snapshot.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    worker.claim(job_id, WEI)
    other_id, _ = requester.post_job("echo-b", WEI, 600, 600)
    index.sync()
    assert index.job(job_id).state == "claimed"  # type: ignore[union-attr]

    # Another history from the fork point: the claim never happened, a cancel did.
    snapshot.w3.provider.make_request("evm_revert", [fork])  # type: ignore[arg-type]
    snapshot.w3.provider.make_request("anvil_mine", [5])  # type: ignore[arg-type]
    requester.cancel(job_id)
    result = index.sync()

    assert result.rolled_back_to is not None
    assert result.rolled_back_to < snapshot.block_number()
    after = index.job(job_id)
    assert after is not None and (after.state, after.worker) == ("cancelled", None)
    assert index.job(other_id) is None  # posted only on the orphaned fork
    assert [e.name for e in index.events(job_id=job_id) if e.name != "Payment"] == [
        "JobPosted",
        "JobCancelled",
    ]
    assert index.status()["reorgs"] == 1


def test_deleted_index_is_rebuilt_identically_from_the_chain(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester, worker = _client(node, deployment, 1), _client(node, deployment, 3)
    job_id, _ = requester.post_job("echo-a", WEI, 600, 600)
    worker.claim(job_id, WEI)
    index = _index(tmp_path, snapshot, deployment)
    index.sync()
    before = ([j.to_json() for j in index.jobs().items], [e.to_json() for e in index.events()])
    index.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'index.sqlite'}{suffix}").unlink(missing_ok=True)

    fresh = _index(tmp_path, snapshot, deployment)
    assert fresh.jobs().total == 0
    fresh.sync()
    assert ([j.to_json() for j in fresh.jobs().items], [e.to_json() for e in fresh.events()]) == (
        before
    )
    assert fresh.rebuild().events == len(before[1])


def test_index_file_of_another_market_is_refused(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    _index(tmp_path, snapshot, deployment).sync()
    other = deploy_market(node.url, node.accounts[0].private_key)
    with pytest.raises(EventIndexError, match="was built for market="):
        _index(tmp_path, MarketClient.from_deployment(other), other)


def test_bad_filters_name_the_problem(
    deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    index = _index(tmp_path, snapshot, deployment)
    with pytest.raises(EventIndexError, match="unknown state 'done'"):
        index.jobs(state="done")
    with pytest.raises(EventIndexError, match="worker '0x12' is not an address"):
        index.jobs(worker="0x12")
    with pytest.raises(EventIndexError, match="page must be between 1 and"):
        index.jobs(page=0)
    # Found by schemathesis: a page past SQLite's int64 offset was a 500.
    with pytest.raises(EventIndexError, match="page must be between 1 and"):
        index.jobs(page=5030193234915530291324467019776)


def test_a_sweeps_jobs_each_get_a_row_that_follows_their_lot_and_survives_a_reorg(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester, worker = _client(node, deployment, 1), _client(node, deployment, 3)
    sweep, _ = requester.post_sweep([f"echo-{i}" for i in range(4)], WEI, 600, 600)
    lot, count, _ = worker.claim_lot(sweep, sweep, 2)
    worker.submit_lot(lot, [("bafyone", bytes(32)), ("bafytwo", bytes(32))])
    index = _index(tmp_path, snapshot, deployment)
    index.sync()
    rows = {j.job_id: j for j in index.jobs().items}
    assert {j: r.state for j, r in rows.items()} == {
        sweep: "submitted",
        sweep + 1: "submitted",
        sweep + 2: "open",
        sweep + 3: "open",
    }
    assert (rows[sweep + 1].result_cid, rows[sweep + 1].worker) == ("bafytwo", worker.sender)
    assert (rows[sweep + 2].spec_cid, rows[sweep + 2].kind, rows[sweep + 2].sweep_id) == (
        "echo-2", "echo", sweep,
    )  # fmt: skip
    assert (rows[sweep].lot_id, rows[sweep + 2].lot_id) == (lot, None)

    # A second lot, then a reorg that undoes it: its jobs are open again, the first lot's
    # untouched; the new history's refund cancels them instead.
    fork = snapshot.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    worker.claim_lot(sweep, sweep + 2, 2)
    index.sync()
    assert index.job(sweep + 3).state == "claimed"  # type: ignore[union-attr]
    snapshot.w3.provider.make_request("evm_revert", [fork])  # type: ignore[arg-type]
    snapshot.w3.provider.make_request("anvil_mine", [5])  # type: ignore[arg-type]
    requester.refund_sweep(sweep)
    assert index.sync().rolled_back_to is not None
    states = {j.job_id: j.state for j in index.jobs().items}
    assert states == {
        sweep: "submitted", sweep + 1: "submitted", sweep + 2: "cancelled",
        sweep + 3: "cancelled",
    }  # fmt: skip
    assert index.job(sweep + 3).worker is None  # type: ignore[union-attr]


def test_a_sweeps_job_opened_to_a_dispute_ends_by_its_own_events(
    node: Anvil, deployment: Deployment, snapshot: MarketClient, tmp_path: Path
) -> None:
    requester, worker = _client(node, deployment, 1), _client(node, deployment, 3)
    sweep, _ = requester.post_sweep(["echo-a", "echo-b"], WEI, 600, 600)
    lot, _, _ = worker.claim_lot(sweep, sweep, 2)
    digests = [bytes([1]) * 32, bytes([2]) * 32]
    worker.submit_lot(lot, [("bafya", digests[0]), ("bafyb", digests[1])])
    requester.open_lot_job(lot, sweep + 1, digests)
    snapshot.w3.provider.make_request("evm_increaseTime", [5])  # type: ignore[arg-type]
    snapshot.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    worker.settle_lots([lot])
    index = _index(tmp_path, snapshot, deployment)
    index.sync()
    assert {j.job_id: j.state for j in index.jobs().items} == {
        sweep: "settled",
        sweep + 1: "submitted",
    }
    worker.finalize(sweep + 1, gas=200_000)
    index.sync()
    assert index.job(sweep + 1).state == "settled"  # type: ignore[union-attr]
    assert [e.name for e in index.events(job_id=sweep + 1) if e.name != "Payment"] == [
        "LotJobOpened", "JobSettled",
    ]  # fmt: skip
