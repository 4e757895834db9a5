"""Hostile actors beside honest agents (bench/hostile.py): no attack profits, no honest party
is slashed or loses wei, and the books balance at every checked step.

One devnet runs every attack once (a module fixture); each test reads its rows.
"""

from __future__ import annotations

import pytest
from hostile import ATTACKS, Row, run, table

pytestmark = pytest.mark.e2e

ATTACKERS_LOSE = ("garbage", "griefer", "copier", "squatter", "zero_bid", "sybils")


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    found = dict(zip(ATTACKS, run(list(ATTACKS)), strict=True))
    print("\n" + table(list(found.values())))
    return found


@pytest.mark.timeout(900)
def test_every_attack_ran_and_the_books_balanced_after_every_checked_step(
    rows: dict[str, Row],
) -> None:
    for name, row in rows.items():
        assert row.tried == 1, name
        assert row.books_checked > 0 and row.books_ok, f"{name}: {row}"


@pytest.mark.parametrize("name", ATTACKERS_LOSE)
def test_the_attack_costs_its_author_and_no_honest_party(rows: dict[str, Row], name: str) -> None:
    row = rows[name]
    assert (row.profited, row.honest_slashed, row.honest_wei_lost) == (0, 0, 0), row


def test_a_made_up_result_is_refuted_and_honest_work_upheld(rows: dict[str, Row]) -> None:
    assert "verdict worker_refuted" in rows["garbage"].notes
    assert "verdict worker_upheld" in rows["griefer"].notes
    assert "reveal refused: JobMarketCommitmentMismatch" in rows["copier"].notes


def test_a_sybil_pair_with_little_stake_is_not_drawn_into_a_majority(
    rows: dict[str, Row],
) -> None:
    assert "of 3 seats drawn for the pair" in rows["sybils"].notes
    assert "job settled" in rows["sybils"].notes, rows["sybils"]
