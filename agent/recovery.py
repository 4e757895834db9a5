"""What the agent does when the chain took back what it did, or never said: a claim whose
answer was lost (a kill, an RPC that dropped it), and blocks a reorg replaced (a claim, a
result or a settlement of ours orphaned, a job number handed to another post).
"""

from __future__ import annotations

import logging
from typing import Any

from agent.host import FlowHost
from agent.phases import AUCTION_PHASES, REPLICA_PHASES, Phase
from hepx.chain import AssignmentStatus, Job, JobState

log = logging.getLogger("hepx.agent")

# How far before our claim a job's post is looked for when a reorg may have renumbered it.
REORG_SEARCH_BLOCKS = 256


class Recovery:
    def __init__(self, agent: FlowHost) -> None:
        self.agent = agent

    def consider_again(self, job_id: int) -> None:
        """Our claim of an open job is gone (never made, or orphaned by a reorg): forget it
        and consider the job afresh, under the spec its post names now."""
        agent = self.agent
        rec = agent.book.jobs[job_id]
        since = int(rec.get("claim_block", 0)) - REORG_SEARCH_BLOCKS
        spec_cid = agent.client.posted_spec_cid(job_id, since) or str(rec["spec_cid"])
        agent.book.forget(job_id)
        agent.consider(job_id, spec_cid)

    def resolve_claim(self, job_id: int) -> None:
        """A claim or bid was sent and its answer lost (a kill, an RPC that dropped): carry on
        with what the chain says it did. Run from the loop, so the answer is not still due."""
        agent = self.agent
        if agent.claim_queued_for(job_id):
            return  # not sent yet: this round's batch sends it
        if agent.client.sends_pending():
            return  # it may still be mined: ask again next round
        job = agent.client.job(job_id)
        mine = agent.client.assignment_of(job_id, agent.address)
        if job.state == JobState.CLAIMED and job.worker == agent.address:
            phase = Phase.CLAIMED
        elif mine is not None and job.state == JobState.OPEN:
            phase = Phase.BID  # a held bid, or a seat in a replicated job's draw
        elif mine is not None and mine.status == AssignmentStatus.ASSIGNED:
            phase = Phase.REPLICA
        elif job.state == JobState.OPEN:
            log.info("event=claim_not_made job=%d", job_id)
            self.consider_again(job_id)
            return
        else:
            agent.book.set(job_id, phase=Phase.DONE, note=f"claim not made ({job.state.label})")
            return
        log.info("event=claim_found job=%d phase=%s", job_id, phase)
        agent.book.set(job_id, phase=phase)

    # ------------------------------------------------------------ reorgs

    def after_reorg(self, fork: int) -> None:
        """Blocks after ``fork`` were replaced, and a claim, result or settlement of ours may
        have gone with them: put every job we track back in the phase the chain says. The
        follower then reads the new blocks' events again (a JobPosted may be another job's
        now: job numbers are handed out again after an orphaned post)."""
        agent = self.agent
        for job_id, rec in list(agent.book.jobs.items()):
            phase = rec.get("phase")
            if phase == Phase.DONE and int(rec.get("done_block", fork + 1)) <= fork:
                continue  # settled before the fork: untouched
            if phase in REPLICA_PHASES or phase in AUCTION_PHASES:
                continue  # those flows read the chain again at each step
            if "lot" in rec:
                continue  # a sweep's lot: the sweep flow puts it back (SweepFlow.after_reorg)
            if phase == Phase.CLAIMING:
                self.resolve_claim(job_id)
                continue
            job = agent.client.job(job_id)
            ours = job.worker == agent.address
            if job.state == JobState.NONE:
                # The post is gone too; if its number is handed out again, the follower reads
                # that JobPosted in the new blocks.
                log.warning("event=claim_orphaned job=%d state=none", job_id)
                agent.book.forget(job_id)
            elif phase == Phase.SUBMITTED:
                self.reorged(job)
            elif job.state == JobState.OPEN:
                # One running in a slot sends no result; resume_held() considers it again after.
                if not agent.running(job_id):
                    log.warning("event=claim_orphaned job=%d state=open", job_id)
                    self.consider_again(job_id)
            elif phase == Phase.DONE and ours and job.state == JobState.CLAIMED:
                self.submit_again(job_id, rec)
            elif phase == Phase.DONE and ours and job.state == JobState.SUBMITTED:
                agent.book.set(job_id, phase=Phase.SUBMITTED)  # submit_and_settle finalizes it
            elif phase in (Phase.CLAIMED, Phase.READY) and not ours:
                log.warning("event=claim_orphaned job=%d worker=%s", job_id, job.worker)
                agent.book.set(job_id, phase=Phase.DONE, note="claim orphaned by a reorg")

    def reorged(self, job: Job) -> bool:
        """For a job we submitted: if a reorg took the submission (or the claim) away, act on
        what the chain says now and return True."""
        agent = self.agent
        # Disputed: our submission stands and a panel re-runs it; the verdict settles it.
        if job.state in (JobState.SUBMITTED, JobState.DISPUTED) or job.state.final:
            return False
        if job.state == JobState.CLAIMED and job.worker == agent.address:
            self.submit_again(job.job_id, agent.book.jobs[job.job_id])
        elif job.state == JobState.OPEN:
            log.warning("event=claim_orphaned job=%d state=open", job.job_id)
            self.consider_again(job.job_id)
        else:
            log.warning("event=claim_orphaned job=%d state=%s", job.job_id, job.state.label)
            agent.book.set(job.job_id, phase=Phase.DONE, note="claim orphaned by a reorg")
        return True

    def submit_again(self, job_id: int, rec: dict[str, Any]) -> None:
        """Our result's submission was orphaned: the stored result goes out again with the
        loop's next submitResults."""
        if "result_cid" not in rec:
            self.agent.book.set(job_id, phase=Phase.CLAIMED)  # resume_held runs it again
            return
        self.agent.book.set(job_id, phase=Phase.READY)
        log.info("event=resubmitting job=%d result=%s", job_id, rec["result_cid"])
