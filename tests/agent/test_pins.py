"""A worker's pins: kept while the job is open, released with a retention once it is done."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.host import JobBook
from agent.pins import pin_job, pin_result, release_settled
from hepx.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store", fsync=False)


def test_open_jobs_data_survives_gc_and_settled_jobs_data_goes_after_retention(
    store: LocalStore, tmp_path: Path
) -> None:
    spec, data, result = (store.add_bytes(b) for b in (b"spec", b"input", b"result"))
    other_spec = store.add_bytes(b"spec of a job still running")
    unrelated = store.add_bytes(b"nobody pinned this")
    book = JobBook(tmp_path / "jobs.json")
    pin_job(store, 1, spec, [data])
    pin_result(store, 1, result)
    pin_job(store, 2, other_spec, [])
    for phase in ("claiming", "claimed", "submitted"):
        book.set(1, phase=phase)
    book.set(2, phase="claiming")
    book.set(2, phase="claimed")

    assert release_settled(store, book, retention=100.0, now=1000.0) == []
    store.gc(now=10_000.0)
    assert all(store.has(c) for c in (spec, data, result, other_spec))
    assert not store.has(unrelated)

    book.set(1, phase="done")
    assert release_settled(store, book, retention=100.0, now=1000.0) == [1]
    assert release_settled(store, book, retention=100.0, now=5000.0) == []  # once per job
    assert {p.name: p.expires_at for p in store.pins.list()} == {
        "job-1-input-0": 1100.0,
        "job-1-result": 1100.0,
        "job-1-spec": 1100.0,
        "job-2-spec": None,
    }
    store.gc(now=1099.0)
    assert store.has(result)
    store.gc(now=1100.0)
    assert not any(store.has(c) for c in (spec, data, result))
    assert store.has(other_spec)
    assert JobBook(tmp_path / "jobs.json").jobs[1]["pins_released"] is True


def test_job_ten_is_not_released_with_job_one(store: LocalStore, tmp_path: Path) -> None:
    one, ten = store.add_bytes(b"1"), store.add_bytes(b"10")
    pin_result(store, 1, one)
    pin_result(store, 10, ten)
    book = JobBook(tmp_path / "jobs.json")
    book.set(1, phase="claiming")
    book.set(1, phase="done")
    release_settled(store, book, retention=0.0, now=50.0)
    assert {p.name: p.expires_at for p in store.pins.list()} == {
        "job-1-result": 50.0,
        "job-10-result": None,
    }


def test_pin_failures_are_logged_not_raised(
    store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    pin_job(store, 3, "not-a-cid", [])
    assert "pin_failed job=3" in caplog.text
    assert store.pins.list() == []
