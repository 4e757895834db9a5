"""The book refuses a step the phase table does not allow, and keeps what it allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.host import KEEP_DONE, JobBook
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


def test_the_book_read_back_is_the_book_written_through_folds_forgets_and_a_torn_line(
    tmp_path: Path,
) -> None:
    """Changes go to a journal folded into the book once it outgrows it: a book read back at
    any point (after a kill: a torn last line) is the book in memory, up to that line."""
    path = tmp_path / "jobs.json"
    book = JobBook(path)
    steps = [Phase.CLAIMING, Phase.CLAIMED, Phase.READY, Phase.SUBMITTED, Phase.DONE]
    folded = 0
    for job_id in range(300):
        for phase in steps:
            book.set(job_id, phase=phase, note=f"{job_id}-{phase}")
            folded += not book.journal.exists()  # just folded into the book
        if job_id % 7 == 0:
            book.drop_field(job_id, "note")
        if job_id % 11 == 0:
            book.forget(job_id)
        if job_id % 50 == 0:
            again = JobBook(path)
            assert again.jobs == book.jobs
            for phase in Phase:  # the phase index agrees with the records, read back too
                scan = sorted(j for j, rec in book.jobs.items() if rec.get("phase") == phase)
                assert book.in_phase(phase) == again.in_phase(phase) == scan
    assert folded >= 2 and JobBook(path).jobs == book.jobs
    assert 0 not in book.jobs and "note" not in book.jobs[7] and book.jobs[8]["note"] == "8-done"

    before = {k: dict(v) for k, v in book.jobs.items()}
    book.set(299, phase=Phase.DONE, note="the torn one")
    with open(book.journal, "r+b") as journal:  # the kill cut the last line short
        journal.truncate(journal.seek(0, 2) - 5)
    assert JobBook(path).jobs == before


def test_settled_jobs_past_a_reorgs_reach_leave_the_book_for_its_archive(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    book = JobBook(path)
    total = KEEP_DONE + 60
    book.set_many({j: {} for j in range(1, total + 1)}, phase=Phase.CLAIMING)
    old, recent, unreleased, running = (
        range(1, total - 29),
        range(total - 29, total - 19),
        range(total - 19, total - 9),
        range(total - 9, total + 1),
    )
    book.set_many({j: {"done_block": 10} for j in old}, phase=Phase.DONE, pins_released=True)
    book.set_many({j: {"done_block": 500} for j in recent}, phase=Phase.DONE, pins_released=True)
    book.set_many({j: {"done_block": 10} for j in unreleased}, phase=Phase.DONE)
    book.set_many({j: {} for j in running}, phase=Phase.CLAIMED)
    kept_before = {j: book.jobs[j] for j in old}

    assert book.archive_done(through_block=100) == list(old)
    assert book.in_phase(Phase.DONE) == [*recent, *unreleased]
    assert book.in_phase(Phase.CLAIMED) == list(running)
    archived = [json.loads(line) for line in book.archive.read_text().splitlines()]
    assert {j: rec for j, rec in archived} == kept_before  # whole records, in order
    again = JobBook(path)
    assert again.jobs == book.jobs and again.archived == book.archived == len(old)
    # Under the threshold the book keeps its done jobs, however old.
    assert again.archive_done(through_block=10**9) == []


def test_a_book_of_few_done_jobs_archives_none(tmp_path: Path) -> None:
    book = JobBook(tmp_path / "jobs.json")
    book.set_many({j: {} for j in range(1, 11)}, phase=Phase.CLAIMING)
    book.set_many({j: {"done_block": 1} for j in range(1, 11)}, phase=Phase.DONE,
                  pins_released=True)  # fmt: skip
    assert book.archive_done(through_block=10**9) == [] and not book.archive.exists()
