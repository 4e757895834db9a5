"""Jobs with terms: the guardian's extra checks, claims with proofs, auction bids and draws.

A job posted with terms may ask for an auction, several replicas, a minimum stake, a declared
kind, an ERC-20 or an allowlist. The agent checks each against its own state before sending
anything (the contract would refuse anyway, but a refused tx costs gas), then claims, bids or
applies. A replicated job's seats are drawn by stake among the workers that apply (a claim on
it) until its match deadline. Bids and applications are tracked in the job book (phase
``bid``) until the job is awarded: by this agent, the requester or anyone, once the window
has closed.
"""

from __future__ import annotations

import dataclasses
import logging

from agent.host import FlowHost
from agent.phases import Phase
from agent.policy import Policy
from hepx.allowlist import merkle_proof, merkle_root
from hepx.chain import (
    ZERO_BYTES32,
    Assignment,
    AssignmentStatus,
    Job,
    JobState,
    JobTerms,
    MarketClient,
    MatchMode,
    TxResult,
    kind_id,
)
from hepx.errors import ChainError, SpecError, TxReverted
from hepx.spec import JobSpec

log = logging.getLogger("hepx.agent")

# Gas for award/expire once matching closed (8 replicas measured at ~100k).
AWARD_GAS = 400_000
# Gas for the claim that seeds a replicated job's draw, sent unsimulated (below).
SEED_CLAIM_GAS = 400_000


def close_matching(client: MarketClient, job_id: int) -> TxResult:
    """After the match deadline (anyone may): award if enough bids or claims came in, else
    expire so the escrow goes back. Sent unsimulated: the node may simulate at an older time."""
    terms = client.terms(job_id)
    if terms.assigned >= terms.quorum:
        return client.award(job_id, gas=AWARD_GAS)
    return client.expire(job_id, gas=AWARD_GAS)


def per_replica(job: Job, terms: JobTerms) -> Job:
    """The job as one replica sees it: its escrow is what one worker can be paid."""
    if terms.replicas <= 1:
        return job
    return dataclasses.replace(job, escrow=terms.max_price)


def bid_price(policy: Policy, ask: int, max_price: int, held: list[Assignment], me: str) -> int:
    """What to bid: the ask, or (undercut) just below the best bid others hold; at least 1 wei,
    the market's smallest bid."""
    floor = max(1, policy.bidding.min_price if policy.bidding.min_price is not None else ask)
    if policy.bidding.strategy == "ask":
        return max(1, ask)
    others = [a.price for a in held if a.worker.lower() != me.lower()]
    target = min(others) - policy.bidding.step if others else max_price
    return max(floor, min(target, max_price))


def stake_shortfall(client: MarketClient, needed: int) -> str | None:
    """Why the stake a job locks is more than this worker has free (None: it has enough)."""
    available = client.worker(client.sender).available
    if available >= needed:
        return None
    return (
        f"needs a stake of {needed} wei (the job's min stake, or its price above the market's "
        f"stake-free limit); available stake {available}: raise `stake:` in the policy"
    )


def refusal(
    policy: Policy,
    spec: JobSpec,
    terms: JobTerms,
    available_stake: int | None,
    declared: bool,
    me: str,
    stake_needed: int | None = None,
) -> str | None:
    """Why this worker must not take a job with ``terms`` (None: it may). ``stake_needed`` is
    what the market locks (IJobMarket.stakeRequired), by default the terms' min stake."""
    needed = terms.min_stake if stake_needed is None else stake_needed
    if terms.token is not None and terms.token.lower() not in {t.lower() for t in policy.tokens}:
        return f"pays in token {terms.token}, not in policy tokens"
    if needed > 0 and (available_stake or 0) < needed:
        return f"min stake {needed} wei above our available stake {available_stake or 0}"
    if terms.kind != ZERO_BYTES32:
        if terms.kind != kind_id(spec.kind):
            return "the job's on-chain kind does not match its spec"
        if not declared:
            return f"kind {spec.kind} not declared in the registry"
    if terms.allowlist_root != ZERO_BYTES32:
        allowed = spec.payment.allowlist
        if not allowed or merkle_root(allowed) != terms.allowlist_root:
            return "the spec's allowlist does not match the job's allowlist root"
        if me.lower() not in allowed:
            return "not on the job's allowlist"
    return None


class AuctionFlow:
    """Takes jobs with terms for one agent and follows its auction bids."""

    def __init__(self, agent: FlowHost) -> None:
        self.agent = agent

    @staticmethod
    def needs_terms(terms: JobTerms) -> bool:
        """Whether the job is anything but the spine's single-replica ETH claim."""
        return (
            terms.mode != MatchMode.CLAIM
            or terms.replicas != 1
            or terms.min_stake != 0
            or terms.token is not None
            or terms.kind != ZERO_BYTES32
            or terms.allowlist_root != ZERO_BYTES32
        )

    def take(
        self,
        job_id: int,
        spec_cid: str,
        spec: JobSpec,
        job: Job,
        terms: JobTerms,
        ask: int,
        stake_needed: int,
    ) -> None:
        """Claim or bid on a job the policy accepted, if its terms allow this worker."""
        agent, client = self.agent, self.agent.client
        stake = client.worker(agent.address).available if stake_needed else None
        declared = terms.kind == ZERO_BYTES32 or client.has_kind(agent.address, spec.kind)
        reason = refusal(agent.policy, spec, terms, stake, declared, agent.address, stake_needed)
        if reason is not None:
            log.info("event=declined job=%d reason=%r", job_id, reason)
            return
        proof = self._proof(spec, terms)
        if terms.mode == MatchMode.AUCTION:
            self._bid(job_id, spec_cid, job, terms, ask, proof)
            return
        if terms.replicas > 1:
            self._apply(job_id, spec_cid, job, terms, ask, proof)
            return
        tx = agent.send_claim(
            job_id,
            "claim",
            lambda: client.claim_with_proof(job_id, ask, proof),
            spec_cid=spec_cid,
            price=ask,
        )
        if tx is None:
            return
        log.info("event=claimed job=%d tx=%s price=%d", job_id, tx.tx_hash, ask)
        agent.book.set(job_id, phase=Phase.CLAIMED, claim_tx=tx.tx_hash)
        agent.run_job(job_id, spec_cid, spec)

    def _apply(
        self, job_id: int, spec_cid: str, job: Job, terms: JobTerms, ask: int, proof: list[bytes]
    ) -> None:
        """Apply to a replicated job's draw. The send's simulation refuses a key that cannot
        win a seat (JobMarketNotDrawn), so a lost draw costs no gas."""
        agent, client = self.agent, self.agent.client
        me = client.worker(agent.address)
        if me.stake == 0 or me.stake_since >= terms.posted_block:
            why = "no stake" if me.stake == 0 else "stake bonded after the job was posted"
            log.info("event=declined job=%d reason=%r", job_id, f"drawn by stake: {why}")
            return
        # The first claim seeds the draw and must land in a block after the post's, but a node
        # simulates in the latest block, which may still be the post's (anvil mines only for a
        # transaction): that claim goes unsimulated. It cannot lose the draw (no seat is held).
        gas = SEED_CLAIM_GAS if terms.draw_seed == ZERO_BYTES32 else None
        tx = agent.send_claim(
            job_id,
            "apply",
            lambda: client.claim_with_proof(job_id, ask, proof, gas=gas),
            spec_cid=spec_cid,
            price=ask,
            bid_deadline=job.deadline,
        )
        if tx is None:
            return
        agent.book.set(job_id, phase=Phase.BID, bid_tx=tx.tx_hash)
        log.info("event=applied job=%d tx=%s price=%d", job_id, tx.tx_hash, ask)

    def _proof(self, spec: JobSpec, terms: JobTerms) -> list[bytes]:
        if terms.allowlist_root == ZERO_BYTES32:
            return []
        try:
            return merkle_proof(spec.payment.allowlist, self.agent.address)
        except SpecError as exc:  # refusal() already checked membership
            raise ChainError(f"cannot prove allowlist membership: {exc}") from exc

    def _bid(
        self,
        job_id: int,
        spec_cid: str,
        job: Job,
        terms: JobTerms,
        ask: int,
        proof: list[bytes],
    ) -> None:
        agent, client = self.agent, self.agent.client
        bids = agent.book.in_phase(Phase.BID)
        if len(bids) >= agent.policy.bidding.max_concurrent_bids:
            log.info("event=declined job=%d reason='%d bids open already'", job_id, len(bids))
            return
        held = client.assignments(job_id)
        price = bid_price(agent.policy, ask, terms.max_price, held, agent.address)
        full = terms.assigned >= terms.replicas
        worst = max((a.price for a in held), default=0)
        if full and price >= worst:
            log.info("event=declined job=%d reason='held bids beat %d'", job_id, price)
            return
        tx = agent.send_claim(
            job_id,
            "bid",
            lambda: client.bid(job_id, price, proof),
            spec_cid=spec_cid,
            price=price,
            ask=ask,
            replicas=terms.replicas,
            bid_deadline=job.deadline,
        )
        if tx is None:
            return
        agent.book.set(job_id, phase=Phase.BID, bid_tx=tx.tx_hash)
        log.info("event=bid job=%d tx=%s price=%d", job_id, tx.tx_hash, price)

    # ------------------------------------------------------------ after bidding

    def advance(self) -> None:
        """Award closed auctions and draws we are in, re-bid when outbid, run what we won."""
        for job_id in self.agent.book.in_phase(Phase.BID):
            try:
                self._advance_one(job_id)
            except TxReverted as exc:
                log.info("event=auction_step_refused job=%d error=%s", job_id, exc)

    def _advance_one(self, job_id: int) -> None:
        agent, client = self.agent, self.agent.client
        rec = agent.book.jobs[job_id]
        job = client.job(job_id)
        mine = client.assignment_of(job_id, agent.address)
        if job.state == JobState.OPEN:
            if client.chain_now() > job.deadline + 1:
                # Anyone may award; whoever comes first, the job moves on.
                tx = close_matching(client, job_id)
                log.info("event=matching_closed job=%d tx=%s", job_id, tx.tx_hash)
                job = client.job(job_id)
                mine = client.assignment_of(job_id, agent.address)
            elif mine is None and agent.client.terms(job_id).replicas > 1:
                agent.book.set(job_id, phase=Phase.DONE, note="displaced from the draw")
                log.info("event=displaced job=%d", job_id)
                return
            elif mine is None:
                self._outbid(job_id, rec)
                return
            else:
                return
        if job.state == JobState.CLAIMED and job.worker == agent.address:
            agent.book.set(job_id, phase=Phase.CLAIMED, claim_tx=rec.get("bid_tx"))
            log.info("event=won job=%d price=%d", job_id, job.price)
            agent.run_job(job_id, rec["spec_cid"])
        elif (
            job.state == JobState.COMMITTING
            and mine is not None
            and mine.status == AssignmentStatus.ASSIGNED
        ):
            agent.book.set(job_id, phase=Phase.REPLICA, claim_tx=rec.get("bid_tx"))
            log.info("event=won job=%d price=%d replica=1", job_id, mine.price)
            agent.run_replica(job_id, rec["spec_cid"])
        elif job.state != JobState.OPEN:
            agent.book.set(job_id, phase=Phase.DONE, note=f"auction lost ({job.state.label})")
            log.info("event=auction_lost job=%d state=%s", job_id, job.state.label)

    def _outbid(self, job_id: int, rec: dict[str, object]) -> None:
        """Our bid was pushed out: undercut once more if the policy says so, else give up."""
        agent = self.agent
        log.info("event=outbid job=%d", job_id)
        agent.book.set(job_id, phase=Phase.OUTBID)
        if agent.policy.bidding.strategy != "undercut":
            return
        job = agent.client.job(job_id)
        terms = agent.client.terms(job_id)
        spec_cid = str(rec["spec_cid"])
        spec = agent.specs.get(spec_cid)
        ask = int(str(rec.get("ask", rec["price"])))
        self._bid(job_id, spec_cid, job, terms, ask, self._proof(spec, terms))
