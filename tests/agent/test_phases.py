"""The book refuses a step the phase table does not allow, and keeps what it allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.host import JobBook
from agent.phases import NEXT, Phase, PhaseError


def test_every_phase_is_reachable_from_a_new_job_and_every_phase_has_its_next_steps() -> None:
    reached, frontier = set(), {None}
    while frontier:
        here = frontier.pop()
        for there in NEXT[here]:
            if there not in reached:
                reached.add(there)
                frontier.add(there)
    assert reached == set(Phase)
    assert set(NEXT) == {None, *Phase}


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], Phase.CLAIMED),  # a job is booked as claiming before its claim is sent
        ([Phase.CLAIMING, Phase.CLAIMED], Phase.BID),
        ([Phase.CLAIMING, Phase.CLAIMED, Phase.FAILED], Phase.SUBMITTED),
        ([Phase.CLAIMING, Phase.REPLICA], Phase.REVEALED),  # no reveal without a commit
    ],
)
def test_a_step_off_the_table_is_refused_and_the_record_kept(
    tmp_path: Path, path: list[Phase], bad: Phase
) -> None:
    book = JobBook(tmp_path / "jobs.json")
    for phase in path:
        book.set(3, phase=phase)
    with pytest.raises(PhaseError, match=f"to {bad}"):
        book.set(3, phase=bad, note="wrong")
    assert book.phase(3) == (path[-1] if path else None)
    assert "note" not in book.jobs.get(3, {})


def test_a_book_read_back_goes_on_from_the_phase_it_saved(tmp_path: Path) -> None:
    book = JobBook(tmp_path / "jobs.json")
    book.set(1, phase=Phase.CLAIMING, spec_cid="bafy")
    book.set(1, phase=Phase.CLAIMED)
    again = JobBook(tmp_path / "jobs.json")
    assert again.phase(1) is Phase.CLAIMED and again.jobs[1]["spec_cid"] == "bafy"
    again.set(1, phase=Phase.SUBMITTED)
    with pytest.raises(PhaseError):
        again.set(1, phase=Phase.CLAIMING)
