"""Faults on a real devnet (bench/chaos.py, short sizes): nothing is lost, nothing done twice.

Each test is one row of the table ``python bench/chaos.py`` prints: a fresh devnet, a load
through the REST API, the fault, then an audit of the chain (every job settled or refunded,
at most one result per job, no wei created or lost, the market's books equal its balance).
"""

from __future__ import annotations

import re

import pytest
from chaos import SCENARIOS, Row

pytestmark = pytest.mark.e2e


def _run(name: str) -> Row:
    row = SCENARIOS[name](True)
    print(f"\n{row.fault}: {row.notes}")
    for line in row.details:
        print(f"  {line}")
    return row


def _assert_clean(row: Row) -> None:
    assert row.lost == 0, row.notes
    assert row.twice == 0, row.notes
    assert row.wei_lost == 0, row.notes
    assert row.books, row.notes


@pytest.mark.timeout(1200)
def test_agents_killed_at_random_lose_no_job_and_finish_none_twice() -> None:
    row = _run("kills")
    assert row.injected >= 6 and row.jobs >= 20
    _assert_clean(row)
    assert "workflow ok" in row.notes


@pytest.mark.timeout(900)
def test_a_killed_workflow_runner_resumes_posting_no_job_twice_with_the_same_result() -> None:
    row = _run("runner")
    assert row.injected >= 1, "the runner finished before it could be killed"
    _assert_clean(row)
    assert "identical to an uninterrupted run" in row.notes


@pytest.mark.timeout(900)
def test_a_30_s_chain_outage_is_ridden_out_and_said_once_lost_once_back() -> None:
    row = _run("outage")
    _assert_clean(row)
    assert "workflow ok" in row.notes
    said = re.findall(r"(\S+) (\d+)/(\d+)", row.notes.split("lost/back lines: ")[1])
    assert {name for name, _, _ in said} >= {"api", "worker-1", "worker-2", "runner"}
    for name, lost, back in said:
        assert (lost, back) == ("1", "1"), f"{name} said lost {lost}x, back {back}x"


@pytest.mark.timeout(900)
def test_a_dead_worker_host_s_jobs_are_refunded_by_their_deadline() -> None:
    row = _run("host")
    _assert_clean(row)
    held = int(re.search(r"(\d+) held by the dead host", row.notes).group(1))  # type: ignore[union-attr]
    assert held >= 1


@pytest.mark.timeout(600)
def test_bad_data_gets_its_specific_error_and_leaves_the_store_clean() -> None:
    row = _run("bad-data")
    _assert_clean(row)
    assert "store verify clean" in row.notes


@pytest.mark.timeout(900)
def test_reorgs_under_followers_with_0_and_2_confirmations_cause_no_wrong_action() -> None:
    row = _run("reorgs")
    assert row.injected >= 6
    _assert_clean(row)
    assert "wrong actions 0" in row.notes, row.details
    rolled_back = re.search(r"index rolled back (\d+)x", row.notes)
    assert rolled_back is not None and int(rolled_back.group(1)) >= 1
