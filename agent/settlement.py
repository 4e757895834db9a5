"""The worker settles its own jobs: its matured results in one finalizeJobs transaction a
round, its failed jobs expired once their run deadline has passed."""

from __future__ import annotations

import logging

from agent.host import JobBook
from agent.phases import Phase
from agent.recovery import Recovery
from hepx.chain import SETTLE_GAS, JobState, MarketClient
from hepx.errors import TxReverted

log = logging.getLogger("hepx.agent")


def settle_submitted(client: MarketClient, book: JobBook, recovery: Recovery) -> None:
    """Finalize our results whose challenge window passed, all in one transaction; expire our
    failed jobs; book the ended ones as done."""
    pending = book.in_phase(Phase.SUBMITTED, Phase.FAILED)
    if not pending:
        return
    now = client.chain_now()  # the next block's time, not the last one's
    due: list[int] = []
    for job_id in pending:
        job = client.job(job_id)
        try:
            if book.phase(job_id) == Phase.SUBMITTED and recovery.reorged(job):
                continue
            if job.state == JobState.SUBMITTED and now > job.deadline + 1:
                due.append(job_id)
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
    if not due:
        return
    # A job skipped on chain (a reorg moved its deadline, say) stays submitted: next round.
    try:
        settled, tx = client.finalize_jobs(due)
    except TxReverted as exc:  # out of gas, say: a refusal to retry, not an outage
        log.warning("event=settle_refused jobs=%s error=%s", due, exc)
        return
    for job_id in settled:
        log.info("event=finalized job=%d tx=%s", job_id, tx.tx_hash)
        _done(book, job_id, JobState.SETTLED, tx.block_number)


def _done(book: JobBook, job_id: int, state: JobState, block: int) -> None:
    book.set(job_id, phase=Phase.DONE, final_state=state.label, done_block=block)
