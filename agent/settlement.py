"""The worker sends its results and settles its own jobs, a round's worth per transaction:
its ready results in one submitResults, which also settles its matured results. With no
result to send, matured results wait for the next one while jobs run (one is due soon), at
most RIDE_WAIT, and are otherwise settled in one finalizeJobs. Failed jobs are expired once
their run deadline has passed. Jobs of a lot (a sweep's) go with their lot: agent/sweeps.py."""

from __future__ import annotations

import logging

from agent.host import JobBook
from agent.phases import Phase
from agent.recovery import Recovery
from hepx.chain import SETTLE_GAS, STATE_AFTER_EVENT, JobState, MarketClient, MarketEvent, TxResult
from hepx.errors import TxDropped, TxReverted

log = logging.getLogger("hepx.agent")

# Seconds past its challenge window a matured result may wait to settle with the worker's
# next submission (a transaction saved) before it is settled in one of its own.
RIDE_WAIT = 30.0


def submit_and_settle(
    client: MarketClient, book: JobBook, recovery: Recovery, running: bool = False
) -> None:
    """Send the ready results and settle the matured ones, in one transaction; expire our
    failed jobs; book the ended ones as done. ``running``: jobs of ours are running, so a
    result to carry the settlements is due soon."""
    now = client.chain_now()  # the next block's time, not the last one's
    due = _matured(client, book, recovery, now)
    ready = [j for j in book.in_phase(Phase.READY) if book.lot(j) is None]
    if ready:
        _submit(client, book, recovery, ready, list(due))
    elif due and (not running or now > min(due.values()) + RIDE_WAIT):
        _finalize(client, book, list(due))


def _matured(client: MarketClient, book: JobBook, recovery: Recovery, now: float) -> dict[int, int]:
    """Our submitted jobs whose challenge window has passed, with its end; failed ones past
    their run deadline are expired on the way, and ended ones booked as done."""
    due: dict[int, int] = {}
    for job_id in book.in_phase(Phase.SUBMITTED, Phase.FAILED):
        if book.lot(job_id) is not None:
            continue  # a lot's: agent/sweeps.py settles or expires the lot
        rec = book.jobs[job_id]
        end = int(rec.get("challenge_end", -1))
        if now <= end:
            continue  # in its challenge window, and no event (heard()) moved it on
        if rec.get("matured"):
            # Read once past its window, and waiting to ride with a submission: rounds read
            # it again only after an event about it or a skip on chain (every round did).
            due[job_id] = end
            continue
        job = client.job(job_id)
        try:
            if book.phase(job_id) == Phase.SUBMITTED and recovery.reorged(job):
                continue
            # No second of margin, as expire() needs below: finalizeJobs and submitResults
            # skip a job not matured yet instead of reverting, and ``now`` is the next
            # block's time, so the margin only held every result a second longer.
            if job.state == JobState.SUBMITTED and now > job.deadline:
                due[job_id] = job.deadline
                book.set(job_id, challenge_end=job.deadline, matured=True)
                continue
            if job.state == JobState.CLAIMED and now > job.deadline + 1:
                tx = client.expire(job_id, gas=SETTLE_GAS)
                log.info("event=expired job=%d tx=%s", job_id, tx.tx_hash)
                _done(book, job_id, client.job(job_id).state, tx.block_number)
                continue
        except TxReverted as exc:
            log.info("event=settle_refused job=%d error=%s", job_id, exc)
            continue
        if job.state.final:
            _done(book, job_id, job.state, client.block_number())
    return due


def heard(book: JobBook, event: MarketEvent) -> None:
    """An event that moved a submitted job of ours on (a dispute, the requester's accept, a
    verdict) has the next round read the job, not wait out its challenge window: rounds read
    a submitted job only once the window is over (a call per job per round before)."""
    job_id, state = event.job_id, STATE_AFTER_EVENT.get(event.name)
    moved = state is not None and (state.final or state == JobState.DISPUTED)  # not our claim's
    if moved and job_id is not None and book.phase(job_id) == Phase.SUBMITTED:
        _read_again(book, job_id)


def _read_again(book: JobBook, job_id: int) -> None:
    """Have the next round read the submitted job from the chain before settling it."""
    book.drop_field(job_id, "challenge_end")
    book.drop_field(job_id, "matured")


def _submit(
    client: MarketClient, book: JobBook, recovery: Recovery, ready: list[int], due: list[int]
) -> None:
    results = {}
    for job_id in ready:
        rec = book.jobs[job_id]
        results[job_id] = (str(rec["result_cid"]), bytes.fromhex(str(rec["digest"])[2:]))
    try:
        submitted, settled, tx = client.submit_results(results, due)
    except TxDropped as exc:  # a reorg took its block: the results stay ready, next round
        log.warning("event=submit_dropped jobs=%s error=%s", ready, exc)
        return
    except TxReverted as exc:  # out of gas, say: a refusal, not an outage
        log.warning("event=submit_refused jobs=%s error=%s", ready, exc)
        for job_id in ready:
            book.set(job_id, phase=Phase.FAILED, error=str(exc))
        return
    ends = {int(e.args["jobId"]): int(e.args["challengeEnd"]) for e in tx.events
            if e.name == "ResultSubmitted"}  # fmt: skip
    for job_id in submitted:
        rec = book.jobs[job_id]
        book.set(job_id, phase=Phase.SUBMITTED, submit_tx=tx.tx_hash, challenge_end=ends[job_id])
        log.info(
            "event=submitted job=%d tx=%s result=%s seconds=%.1f",
            job_id,
            tx.tx_hash,
            rec["result_cid"],
            float(rec.get("run_seconds", 0.0)),
        )
    for job_id in ready:
        if job_id not in submitted:
            _not_submitted(client, book, recovery, job_id)
    _settled(book, due, settled, tx)


def _not_submitted(client: MarketClient, book: JobBook, recovery: Recovery, job_id: int) -> None:
    """A ready result the chain skipped: act on what the chain says of the job now."""
    job = client.job(job_id)
    ours = job.worker == client.sender
    if ours and job.state == JobState.SUBMITTED:
        book.set(job_id, phase=Phase.SUBMITTED)  # an earlier send, whose answer was lost
    elif ours and job.state == JobState.CLAIMED:
        log.error("event=failed job=%d error=result not sent before the run deadline", job_id)
        book.set(job_id, phase=Phase.FAILED, error="result not sent before the run deadline")
    elif job.state == JobState.OPEN:  # a reorg took our claim away
        log.warning("event=claim_orphaned job=%d state=open result_not_sent", job_id)
        recovery.consider_again(job_id)
    else:
        log.warning("event=claim_orphaned job=%d state=%s", job_id, job.state.label)
        book.set(job_id, phase=Phase.DONE, note=f"result not sent: job {job.state.label}")


def _finalize(client: MarketClient, book: JobBook, due: list[int]) -> None:
    # A job skipped on chain (a reorg moved its deadline, say) stays submitted: next round.
    try:
        settled, tx = client.finalize_jobs(due)
    except TxReverted as exc:  # out of gas, say: a refusal to retry, not an outage
        log.warning("event=settle_refused jobs=%s error=%s", due, exc)
        return
    _settled(book, due, settled, tx)


def _settled(book: JobBook, due: list[int], settled: list[int], tx: TxResult) -> None:
    for job_id in settled:
        log.info("event=finalized job=%d tx=%s", job_id, tx.tx_hash)
        _done(book, job_id, JobState.SETTLED, tx.block_number)
    for job_id in set(due) - set(settled):
        _read_again(book, job_id)  # skipped on chain (a reorg moved it, say): what now?


def _done(book: JobBook, job_id: int, state: JobState, block: int) -> None:
    book.set(job_id, phase=Phase.DONE, final_state=state.label, done_block=block)
