"""The JobMarket (which is also the worker registry: it inherits WorkerRegistry)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from hepx.chain.contract import ContractClient
from hepx.chain.enums import AssignmentStatus, JobState, MatchMode
from hepx.chain.events import Skip, block_ranges
from hepx.chain.sweeps import SweepCalls
from hepx.chain.types import (
    CLAIM_ITEM_GAS,
    FINALIZE_ITEM_GAS,
    SETTLE_GAS,
    SUBMIT_ITEM_GAS,
    ZERO_ADDRESS,
    Assignment,
    Job,
    JobTerms,
    MarketEvent,
    Terms,
    TxResult,
    WorkerRecord,
    commitment_of,
    kind_id,
)
from hepx.deployment import Deployment


def as_posted(posted: MarketEvent, terms_set: MarketEvent | None) -> tuple[Job, JobTerms]:
    """A job and its terms as ``getJob`` and ``getTerms`` answer right after its post, from
    its JobPosted event and, for a job posted with terms, the JobTermsSet of the same call."""
    args = posted.args
    job_id = int(args["jobId"])
    job = Job(job_id=job_id, requester=str(args["requester"]), state=JobState.OPEN,
              deadline=int(args["claimDeadline"]), run_window=int(args["runWindow"]),
              worker=None, price=0, escrow=int(args["maxPrice"]))  # fmt: skip
    zero = bytes(32)
    if terms_set is None:  # a plain job: the contract's defaults
        return job, JobTerms(MatchMode.CLAIM, 1, 1, 0, 0, 0, 0, None, job.escrow, 0, 0, zero,
                             zero, zero)  # fmt: skip
    t = terms_set.args
    token = None if t["token"] == ZERO_ADDRESS else str(t["token"])
    terms = JobTerms(MatchMode(int(t["mode"])), int(t["replicas"]), int(t["quorum"]), 0, 0, 0,
                     int(t["revealWindow"]), token, int(t["maxPrice"]), int(t["minStake"]),
                     terms_set.block_number, bytes(t["kind"]), bytes(t["allowlistRoot"]),
                     zero)  # fmt: skip
    return job, terms


class MarketClient(SweepCalls, ContractClient):
    """Calls the JobMarket at ``address`` over ``rpc_url``, signing with ``private_key``
    (its sweep calls: :class:`~hepx.chain.sweeps.SweepCalls`)."""

    ARTIFACT = "JobMarket"

    @classmethod
    def from_deployment(
        cls, deployment: Deployment, rpc_url: str | None = None, private_key: str | None = None
    ) -> MarketClient:
        return cls(rpc_url or deployment.rpc_url, deployment.job_market, private_key)

    # ------------------------------------------------------------ reads

    def job(self, job_id: int) -> Job:
        requester, state, deadline, run_window, worker, price, escrow = self.read("getJob", job_id)
        return Job(
            job_id=job_id,
            requester=str(requester),
            state=JobState(state),
            deadline=int(deadline),
            run_window=int(run_window),
            worker=None if worker == ZERO_ADDRESS else str(worker),
            price=int(price),
            escrow=int(escrow),
        )

    def job_count(self) -> int:
        return int(self.read("jobCount"))

    def withdrawable(self, address: str) -> int:
        return int(self.read("withdrawable", to_checksum_address(address)))

    def challenge_window(self) -> int:
        return int(self.read("challengeWindow"))

    def stake_required(self, min_stake: int, price: int) -> int:
        """The stake this market locks for taking a job with ``min_stake`` at ``price``."""
        return int(self.read("stakeRequired", min_stake, price))

    def events(
        self, from_block: int, to_block: int, job_id: int | None = None, chunk: int = 5000
    ) -> list[MarketEvent]:
        """Decoded market events in ``[from_block, to_block]``, oldest first."""
        return list(self.iter_events(from_block, to_block, job_id, chunk))

    def iter_events(
        self,
        from_block: int,
        to_block: int,
        job_id: int | None = None,
        chunk: int = 5000,
        skip: Skip | None = None,
    ) -> Iterator[MarketEvent]:
        for start, end in block_ranges(from_block, to_block, chunk):
            params: dict[str, Any] = {
                "address": self.contract.address,
                "fromBlock": start,
                "toBlock": end,
            }
            if job_id is not None:
                params["topics"] = [None, "0x" + job_id.to_bytes(32, "big").hex()]
            for raw in self.rpc.logs(params):
                if (ev := self.decode_log(raw, skip)) is not None:
                    yield ev

    def latest_events(
        self, job_id: int, from_block: int, names: tuple[str, ...], to_block: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """The arguments of the last event of each of ``names`` for ``job_id`` in
        ``[from_block, to_block]`` (after a reorg a job number may name another job than it
        did: the last post is the one that holds), by name; missing names are left out."""
        end = self.block_number() if to_block is None else to_block
        return {
            e.name: dict(e.args)
            for e in self.iter_events(max(0, from_block), end, job_id=job_id)
            if e.name in names
        }

    def posted_spec_cid(self, job_id: int, from_block: int) -> str | None:
        """The spec CID the chain's JobPosted for ``job_id`` names now, if it is at or after
        ``from_block``."""
        posted = self.latest_events(job_id, from_block, ("JobPosted",)).get("JobPosted")
        return str(posted["specCid"]) if posted else None

    # ------------------------------------------------------------ writes

    def post_job(
        self, spec_cid: str, max_price: int, claim_window: int, run_window: int
    ) -> tuple[int, TxResult]:
        fn = self.contract.functions.postJob(spec_cid, claim_window, run_window)
        result = self.transact("postJob", fn, value=max_price)
        return int(result.event("JobPosted").args["jobId"]), result

    def post_jobs(
        self, jobs: Sequence[tuple[str, int]], claim_window: int, run_window: int
    ) -> tuple[list[int], TxResult]:
        """Post a sweep of fast-path jobs, each (spec CID, max price), in one ``postJobs``
        transaction; their ids, in order."""
        cids, escrows = [cid for cid, _ in jobs], [price for _, price in jobs]
        fn = self.contract.functions.postJobs(cids, escrows, claim_window, run_window)
        result = self.transact(f"postJobs x{len(jobs)}", fn, value=sum(escrows))
        return [int(e.args["jobId"]) for e in result.events if e.name == "JobPosted"], result

    def claim(self, job_id: int, price: int) -> TxResult:
        return self.transact(f"claim job {job_id}", self.contract.functions.claim(job_id, price))

    def claim_jobs(self, prices: Mapping[int, int]) -> tuple[list[int], TxResult | None]:
        """Claim each job (id -> price) in one ``claimJobs`` transaction: the ids now held, and
        the transaction. A job another worker took meanwhile is skipped on chain, not
        reverted; when the simulation already holds none, nothing is sent (None)."""
        ids, amounts = list(prices), [prices[i] for i in prices]
        fn = self.contract.functions.claimJobs(ids, amounts)
        what = f"claimJobs {ids}"
        # The call is the simulation (a refusal raises here, before a nonce is taken); the
        # transaction then goes without a second one, with gas for every item.
        if self.simulate(what, "claimJobs", ids, amounts) == 0:
            return [], None
        tx = self.transact(what, fn, gas=CLAIM_ITEM_GAS * len(ids))
        return [int(e.args["jobId"]) for e in tx.events if e.name == "JobClaimed"], tx

    def submit_result(self, job_id: int, result_cid: str, digest: bytes) -> TxResult:
        """Submit the result's CID and canonical digest (what a dispute's verifiers check)."""
        fn = self.contract.functions.submitResult(job_id, result_cid, digest)
        return self.transact(f"submitResult job {job_id}", fn)

    def submit_results(
        self, results: Mapping[int, tuple[str, bytes]], matured: Sequence[int] = ()
    ) -> tuple[list[int], list[int], TxResult]:
        """Submit results (job id -> (result CID, digest)) and settle the ``matured`` jobs in
        one ``submitResults`` transaction; the ids submitted and the ids settled. A job no
        longer ours is skipped on chain. Sent unsimulated, with gas for every item."""
        ids = list(results)
        fn = self.contract.functions.submitResults(
            ids, [results[i][0] for i in ids], [results[i][1] for i in ids], list(matured)
        )
        gas = SETTLE_GAS + SUBMIT_ITEM_GAS * len(ids) + FINALIZE_ITEM_GAS * len(matured)
        tx = self.transact(f"submitResults {ids} settling {list(matured)}", fn, gas=gas)
        submitted = [int(e.args["jobId"]) for e in tx.events if e.name == "ResultSubmitted"]
        return submitted, [int(e.args["jobId"]) for e in tx.events if e.name == "JobSettled"], tx

    def accept(self, job_id: int) -> TxResult:
        return self.transact(f"accept job {job_id}", self.contract.functions.accept(job_id))

    def finalize(self, job_id: int, gas: int | None = None) -> TxResult:
        return self.transact(
            f"finalize job {job_id}", self.contract.functions.finalize(job_id), gas=gas
        )

    def finalize_jobs(self, job_ids: Sequence[int]) -> tuple[list[int], TxResult]:
        """Finalize in one ``finalizeJobs`` transaction each job whose challenge window has
        passed (the others are skipped on chain); the ids it settled. Sent unsimulated, as
        ``finalize`` is, with gas for every item."""
        fn = self.contract.functions.finalizeJobs(list(job_ids))
        gas = SETTLE_GAS + FINALIZE_ITEM_GAS * (len(job_ids) - 1)
        tx = self.transact(f"finalizeJobs {list(job_ids)}", fn, gas=gas)
        return [int(e.args["jobId"]) for e in tx.events if e.name == "JobSettled"], tx

    def cancel(self, job_id: int) -> TxResult:
        return self.transact(f"cancel job {job_id}", self.contract.functions.cancel(job_id))

    def expire(self, job_id: int, gas: int | None = None) -> TxResult:
        return self.transact(
            f"expire job {job_id}", self.contract.functions.expire(job_id), gas=gas
        )

    def withdraw(self) -> TxResult:
        return self.transact("withdraw", self.contract.functions.withdraw())

    # ------------------------------------------------------------ terms, auctions, replicas

    def post_job_with_terms(self, spec_cid: str, terms: Terms) -> tuple[int, TxResult]:
        """Post with terms; ETH jobs send the escrow, ERC-20 jobs need an approval first."""
        fn = self.contract.functions.postJobWithTerms(spec_cid, terms.as_tuple())
        value = 0 if terms.token else terms.escrow
        result = self.transact("postJobWithTerms", fn, value=value)
        return int(result.event("JobPosted").args["jobId"]), result

    def claim_with_proof(
        self, job_id: int, price: int, proof: list[bytes], gas: int | None = None
    ) -> TxResult:
        return self.transact(
            f"claim job {job_id}",
            self.contract.functions.claimWithProof(job_id, price, proof),
            gas=gas,
        )

    def bid(self, job_id: int, price: int, proof: list[bytes] | None = None) -> TxResult:
        return self.transact(
            f"bid on job {job_id}", self.contract.functions.bid(job_id, price, proof or [])
        )

    def award(self, job_id: int, gas: int | None = None) -> TxResult:
        return self.transact(f"award job {job_id}", self.contract.functions.award(job_id), gas=gas)

    def commitment(self, job_id: int, digest: bytes, salt: bytes) -> bytes:
        """The commitment this client's account sends for ``job_id`` (see commitment_of)."""
        return commitment_of(self.chain_id(), self.address, job_id, self.sender, digest, salt)

    def burned(self) -> int:
        """Wei of slashed stake burned (no honest party to pay it to)."""
        return int(self.read("burned"))

    def commit_result(self, job_id: int, commitment: bytes) -> TxResult:
        return self.transact(
            f"commitResult job {job_id}", self.contract.functions.commitResult(job_id, commitment)
        )

    def reveal_result(
        self, job_id: int, digest: bytes, salt: bytes, result_cid: str, gas: int | None = None
    ) -> TxResult:
        return self.transact(
            f"revealResult job {job_id}",
            self.contract.functions.revealResult(job_id, digest, salt, result_cid),
            gas=gas,
        )

    def withdraw_token(self, token: str) -> TxResult:
        return self.transact(
            f"withdrawToken {token}",
            self.contract.functions.withdrawToken(to_checksum_address(token)),
        )

    def terms(self, job_id: int) -> JobTerms:
        raw = self.read("getTerms", job_id)
        (mode, replicas, quorum, assigned, committed, revealed, reveal_window, token) = raw[:8]
        max_price, min_stake, posted_block, kind, root, seed = raw[8:]
        return JobTerms(
            mode=MatchMode(mode),
            replicas=int(replicas),
            quorum=int(quorum),
            assigned=int(assigned),
            committed=int(committed),
            revealed=int(revealed),
            reveal_window=int(reveal_window),
            token=None if token == ZERO_ADDRESS else str(token),
            max_price=int(max_price),
            min_stake=int(min_stake),
            posted_block=int(posted_block),
            kind=bytes(kind),
            allowlist_root=bytes(root),
            draw_seed=bytes(seed),
        )

    def assignments(self, job_id: int) -> list[Assignment]:
        return [
            Assignment(str(w), int(p), AssignmentStatus(st), bytes(c), bytes(d), int(key))
            for (w, p, st, c, d, key) in self.read("getAssignments", job_id)
        ]

    def assignment_of(self, job_id: int, worker: str) -> Assignment | None:
        """``worker``'s held bid or replica of the job, if it has one."""
        for item in self.assignments(job_id):
            if item.worker.lower() == worker.lower():
                return item
        return None

    def token_withdrawable(self, token: str, account: str) -> int:
        return int(
            self.read("tokenWithdrawable", to_checksum_address(token), to_checksum_address(account))
        )

    # ------------------------------------------------------------ worker registry

    def register(self, kinds: list[str], stake: int = 0) -> TxResult:
        ids = [kind_id(k) for k in kinds]
        return self.transact("register", self.contract.functions.register(ids), value=stake)

    def add_stake(self, amount: int) -> TxResult:
        return self.transact("addStake", self.contract.functions.addStake(), value=amount)

    def set_kinds(self, kinds: list[str], supported: bool = True) -> TxResult:
        ids = [kind_id(k) for k in kinds]
        return self.transact("setKinds", self.contract.functions.setKinds(ids, supported))

    def unbond(self, amount: int) -> TxResult:
        return self.transact(f"unbond {amount}", self.contract.functions.unbond(amount))

    def withdraw_stake(self, gas: int | None = None) -> TxResult:
        return self.transact("withdrawStake", self.contract.functions.withdrawStake(), gas=gas)

    def worker(self, address: str) -> WorkerRecord:
        checksum = to_checksum_address(address)
        registered, stake, locked, unbond_end, unbonding, stake_since = self.read(
            "getWorker", checksum
        )
        return WorkerRecord(
            address=checksum,
            registered=bool(registered),
            stake=int(stake),
            locked=int(locked),
            unbond_end=int(unbond_end),
            unbonding=int(unbonding),
            stake_since=int(stake_since),
        )

    def has_kind(self, address: str, kind: str) -> bool:
        return bool(self.read("hasKind", to_checksum_address(address), kind_id(kind)))

    def unbond_delay(self) -> int:
        return int(self.read("unbondDelay"))
