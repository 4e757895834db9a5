"""Stateful property test: random protocol sequences by several requesters and workers.

A hypothesis RuleBasedStateMachine drives posts (fast path, one by one, in batches and in
sweeps taken in lots, and
with terms: claim or auction, 1 or drawn k-of-n replicas, ETH or an ERC-20, with or without a
minimum stake), claims, bids, awards, commits, reveals, submissions (one by one and batched
with settlements), accepts, finalizes, cancels, expiries, registrations, top-ups,
unbonds, stake and credit withdrawals, and time jumps, sent by any of the actors (so many are
refused); and disputes at the court by anyone (requesters disputing honest work included),
with volunteers, honest or lying votes, silent seats and early verdict calls. After every step
it checks against the chain:
- the market's ETH and token balances equal the open escrows + stakes + withdrawable credits
  (+ burned slashes for ETH); the court holds exactly the bonds of open disputes; no slash
  and no verifier reward is ever credited to the job's requester or worker;
- a job's credits (payments and refunds) plus what it still holds equal what was paid in, it
  holds nothing once final, and no payee is paid twice by one job; a final state never changes;
- a reverted call changed nothing it could have touched;
- sweeps (tests/contracts/stateful_sweeps.py) hold their untaken jobs' escrow and lots their
  unopened jobs', a final lot never changes, and a lot's job opened to a dispute goes on as
  a job of its own;
and at the end of every run that time alone lets anyone move every job to a final state.
Reads are batched raw eth_calls and only what a step touched is re-read, plus a full re-read
every few steps, so a few hundred steps stay within a minute.
"""

from __future__ import annotations

from typing import Any

import requests
from dispute_helpers import court_of, deadlines, salt_of, vote_commitment
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from market_helpers import CID, ETHER, RESULT_CID, RESULT_DIGEST, Market, State
from protocol_helpers import (
    ZERO_ADDRESS,
    Terms,
    bound_commitment,
    deploy_contract,
    transact,
)
from stateful_sweeps import SWEEP_CALLS, SweepRules
from web3.types import TxReceipt

FINAL = {State.SETTLED, State.CANCELLED, State.EXPIRED, State.NO_QUORUM, State.OVERTURNED}
PANEL = 3
VERIFIER_REWARD = 7
VOTES = [RESULT_DIGEST, b"\x03" * 32]  # the submitted digest, or another
STAKE = 10**16
SHAPES = [(1, 1), (2, 2), (3, 2), (3, 3)]
DIGESTS = [b"\x01" * 32, b"\x02" * 32]
REVEAL_WINDOW = 900
FULL_CHECK_EVERY = 10
STEPS, EXAMPLES = 100, 12  # hypothesis ends some runs early; the test asserts >= 500 steps
MIN_STEPS = 500

CREDIT_REASONS = {1, 2}  # WorkerPayment, Refund
SLASH = 4
MOVE_ON = {
    State.OPEN: ("expire", "award"),
    State.CLAIMED: ("expire",),
    State.SUBMITTED: ("finalize",),
    State.COMMITTING: ("finalize",),
    State.REVEALING: ("finalize",),
}


class Reader:
    """Batched raw eth_calls against the market (one HTTP round trip per batch)."""

    def __init__(self, market: Market) -> None:
        self.url = market.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        self.address = market.address
        self.session = requests.Session()
        self.token = ZERO_ADDRESS
        self.fns: dict[str, tuple[bytes, list[str], list[str]]] = {}
        for entry in market.artifact.abi:
            if entry["type"] == "function":
                ins = [_type(i) for i in entry["inputs"]]
                outs = [_type(o) for o in entry["outputs"]]
                selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(ins)})")
                self.fns[entry["name"]] = (selector, ins, outs)

    def many(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        payload: list[Any] = []
        for i, (fn, args) in enumerate(calls):
            if fn == "balance":
                params: list[Any] = [args[0], "latest"]
                payload.append({"jsonrpc": "2.0", "id": i, "method": "eth_getBalance",
                                "params": params})  # fmt: skip
                continue
            if fn == "tokens":  # the market's balance of the test token
                data = "0x70a08231" + abi_encode(["address"], [self.address]).hex()
                call = {"to": self.token, "data": data}
                payload.append(
                    {"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [call, "latest"]}
                )
                continue
            selector, ins, _ = self.fns[fn]
            data = "0x" + (selector + abi_encode(ins, list(args))).hex()
            payload.append({"jsonrpc": "2.0", "id": i, "method": "eth_call",
                            "params": [{"to": self.address, "data": data}, "latest"]})  # fmt: skip
        replies = sorted(self.session.post(self.url, json=payload).json(), key=lambda r: r["id"])
        out: list[Any] = []
        for (fn, _), reply in zip(calls, replies, strict=True):
            assert "error" not in reply, reply
            if fn in ("balance", "tokens"):
                out.append(int(reply["result"], 16))
                continue
            raw = bytes.fromhex(reply["result"][2:])
            values = abi_decode(self.fns[fn][2], raw)
            out.append(values[0] if len(values) == 1 else values)
        return out


def _type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        return f"({','.join(_type(c) for c in entry['components'])}){entry['type'][5:]}"
    return str(entry["type"])


class ProtocolMachine(SweepRules, RuleBasedStateMachine):
    market: Market  # set by the test
    rules_run = 0  # over all runs, so the test can insist on enough steps
    court_calls: dict[str, int] = {}  # successful court calls over all runs, by function
    batch_calls: dict[str, int] = {}  # mined batch calls, and the results they submitted
    sweep_calls: dict[str, int] = {}  # sweep calls that went through, by function

    def __init__(self) -> None:
        super().__init__()
        market = self.market
        self.snapshot = market.rpc("evm_snapshot")
        self.reader = Reader(market)
        self.actors = list(market.accounts[1:8])
        self.requesters = self.actors[:2]
        self.token = deploy_contract(market, "TestToken", self.actors[0])
        self.reader.token = self.token.address
        for who in self.requesters:
            transact(self.token, who, "mint", who, 100 * ETHER)
            transact(self.token, who, "approve", market.address, 100 * ETHER)
        self.staked = self.actors[2:6]
        for who in self.staked:  # workers able to take stake-gated jobs from the start
            market.send(who, "register", [], value=3 * STAKE)
        self.jobs: dict[int, tuple[Any, ...]] = {}
        self.job_token: dict[int, str] = {}
        self.eth_credits = dict.fromkeys(self.actors, 0)
        self.token_credits = dict.fromkeys(self.actors, 0)
        # As the registry holds them (stakeSince is the registration's block).
        self.workers: dict[str, tuple[Any, ...]] = dict(
            zip(
                self.actors,
                self.reader.many([("getWorker", (a,)) for a in self.actors]),
                strict=True,
            )
        )
        assert all(self.workers[a][:2] == (True, 3 * STAKE) for a in self.staked)
        self.credited: dict[int, int] = {}
        self.posted: dict[int, int] = {}  # job id -> escrow paid in (JobPosted maxPrice)
        self.paid: set[tuple[int, str]] = set()
        self.secrets: dict[tuple[int, str], tuple[bytes, bytes]] = {}
        self.assigned: dict[int, set[str]] = {}
        self.steps = 0
        self.court = court_of(market)
        self.votes: dict[tuple[int, str], bytes] = {}  # committed votes, by (job, verifier)
        self.init_sweeps()

    def teardown(self) -> None:
        try:
            self.drive_every_job_to_a_final_state()
        finally:
            assert self.market.rpc("evm_revert", self.snapshot) is True

    # ------------------------------------------------------------ plumbing

    def job_id(self, pick: int, *states: State) -> int:
        """Job number ``pick`` among those in ``states`` (if any), else among all jobs plus
        one unknown id: aimed picks make progress, unaimed ones probe refusals."""
        aimed = sorted(j for j, job in self.jobs.items() if job and State(job[1]) in states)
        if aimed:
            return aimed[pick % len(aimed)]
        return 1 + pick % (len(self.jobs) + 1)

    def party(self, job_id: int, field: int, who: int) -> str:
        """The job's requester (field 0) or worker (field 4) if an actor, else actor ``who``."""
        job = self.jobs.get(job_id) or ()
        address = job[field] if job else None
        return address if address in self.actors else self.actors[who]

    def holder(self, job_id: int, pick: int) -> str:
        """An actor holding a bid or replica of the job, if any, else any actor."""
        held = sorted(self.assigned.get(job_id, set()))
        return held[pick % len(held)] if held else self.actors[pick % len(self.actors)]

    def send(self, sender: str, fn: str, *args: Any, value: int = 0) -> TxReceipt:
        receipt = self.market.try_send(sender, fn, *args, value=value)
        job_arg = args[0] if args and isinstance(args[0], int) else None
        self.after(receipt, sender, job_arg, sweep_call=fn in SWEEP_CALLS)
        if receipt["status"] == 1 and (fn in SWEEP_CALLS or fn == "openLotJob"):
            ProtocolMachine.sweep_calls[fn] = ProtocolMachine.sweep_calls.get(fn, 0) + 1
        return receipt

    def send_court(
        self, sender: str, fn: str, job_id: int, *args: Any, value: int = 0
    ) -> TxReceipt:
        """A call at the market's court; its market events (JobDisputed, the verdict's
        payments and slashes) update the books as the market's own calls do."""
        receipt = self.court.try_send(sender, fn, job_id, *args, value=value)
        self.after(receipt, sender, job_id)
        if receipt["status"] == 1:
            ProtocolMachine.court_calls[fn] = ProtocolMachine.court_calls.get(fn, 0) + 1
        return receipt

    def after(
        self, receipt: TxReceipt, sender: str, job_arg: int | None, sweep_call: bool = False
    ) -> None:
        """Update the cached books from the step's events, then check them."""
        self.steps += 1
        ProtocolMachine.rules_run += 1
        jobs, accounts, workers, sweeps = set(), {sender}, {sender}, set()
        if job_arg is not None and job_arg in self.jobs and not sweep_call:
            jobs.add(job_arg)
        if receipt["status"] == 1:
            for name, args in self.market_events(receipt):
                self.sweep_events(name, args, sweeps)
                if sweep_call and name == "Payment":  # a sweep's or a lot's, not a job's
                    accounts.add(args["payee"])
                    workers.add(args["payee"])
                    continue
                # A skipped batch item changed nothing, and may name a job never posted.
                if args.get("jobId") and name != "BatchItemSkipped" and not sweep_call:
                    jobs.add(int(args["jobId"]))
                if name == "JobPosted":
                    self.jobs.setdefault(int(args["jobId"]), ())
                    self.posted[int(args["jobId"])] = int(args["maxPrice"])
                    self.job_token.setdefault(int(args["jobId"]), ZERO_ADDRESS)
                if name in ("ReplicaDrawn", "BidPlaced"):
                    self.assigned.setdefault(int(args["jobId"]), set()).add(args["worker"])
                if name in ("BidOutbid", "ReplicaDisplaced"):
                    self.assigned[int(args["jobId"])].discard(args["worker"])
                if name == "JobTermsSet":
                    self.job_token[int(args["jobId"])] = args["token"]
                if "worker" in args:
                    workers.add(args["worker"])
                if name == "Payment":
                    accounts.add(args["payee"])
                    workers.add(args["payee"])
                    self.account_payment(args)
        before = self.books()
        self.refresh(jobs, accounts, workers, sweeps)
        if receipt["status"] == 0:
            assert self.books() == before, "a reverted call changed state"
        if self.steps % FULL_CHECK_EVERY == 0:
            tracked = self.books()
            self.refresh(set(self.jobs), set(self.actors), set(self.actors), self.every_sweep())
            assert self.books() == tracked, "a step changed state its events did not show"
        self.check_books()

    def books(self) -> tuple[dict[Any, Any], ...]:
        return (
            dict(self.jobs), dict(self.eth_credits), dict(self.token_credits), dict(self.workers),
            dict(self.sweeps), dict(self.lots),
        )  # fmt: skip

    def market_events(self, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, args)
            for name, args in (
                self.decode(log) for log in receipt["logs"] if log["address"] == self.market.address
            )
        ]

    def decode(self, log: Any) -> tuple[str, dict[str, Any]]:
        name = self.market._events[bytes(log["topics"][0])]
        event = getattr(self.market.contract.events, name)().process_log(log)
        return name, dict(event["args"])

    def account_payment(self, args: dict[str, Any]) -> None:
        job_id, payee, reason = int(args["jobId"]), args["payee"], int(args["reason"])
        if reason in (SLASH, VERIFIER_REWARD) and job_id in self.jobs:
            requester, worker = (to_checksum_address(self.jobs[job_id][i]) for i in (0, 4))
            assert payee != requester, f"job {job_id}: its requester was credited a slash"
            if reason == VERIFIER_REWARD:
                assert payee != worker, f"job {job_id}: its worker was paid to verify it"
        if job_id and reason in CREDIT_REASONS:
            self.credited[job_id] = self.credited.get(job_id, 0) + int(args["amount"])
            if reason == 1:
                assert (job_id, payee) not in self.paid, f"job {job_id} paid {payee} twice"
                self.paid.add((job_id, payee))

    def refresh(
        self, jobs: set[int], accounts: set[str], workers: set[str], sweeps: set[int]
    ) -> None:
        token = self.token.address
        calls: list[tuple[str, tuple[Any, ...]]] = [("getJob", (j,)) for j in sorted(jobs)]
        calls += [("withdrawable", (a,)) for a in sorted(accounts)]
        calls += [("tokenWithdrawable", (token, a)) for a in sorted(accounts)]
        calls += [("getWorker", (w,)) for w in sorted(workers) if w in self.workers]
        calls += self.sweep_reads(sweeps)
        results = iter(self.reader.many(calls))
        for j in sorted(jobs):
            job = tuple(to_checksum_address(v) if isinstance(v, str) else v for v in next(results))
            old = self.jobs.get(j)
            if old and State(old[1]) in FINAL:
                assert job == old, f"final job {j} changed: {old} -> {job}"
            self.jobs[j] = job
        for a in sorted(accounts):
            self.eth_credits[a] = next(results)
        for a in sorted(accounts):
            self.token_credits[a] = next(results)
        for w in sorted(workers):
            if w in self.workers:
                self.workers[w] = tuple(next(results))
        self.sweep_refresh(sweeps, results)

    def check_books(self) -> None:
        eth_escrow = token_escrow = 0
        for job_id, job in self.jobs.items():
            state, held = State(job[1]), job[6]
            final = state in FINAL
            credited = self.credited.get(job_id, 0)
            assert credited + held == self.posted[job_id] and not (final and held), (
                f"job {job_id} in {state.name}: credited {credited} and holds {held} "
                f"of escrow {self.posted[job_id]}"
            )
            if not final:
                if self.job_token[job_id] == ZERO_ADDRESS:
                    eth_escrow += held
                else:
                    token_escrow += held
        eth_escrow += self.sweep_escrow()
        stakes = sum(w[1] + w[4] for w in self.workers.values())
        eth, tokens, burned, bonds = self.reader.many(
            [("balance", (self.market.address,)), ("tokens", ()), ("burned", ()),
             ("balance", (self.court.address,))]
        )  # fmt: skip
        credits = sum(self.eth_credits.values())
        assert eth == eth_escrow + stakes + credits + burned, "ETH books"
        open_bonds = sum(
            PANEL * job[5] for job in self.jobs.values() if job and State(job[1]) == State.DISPUTED
        )
        assert bonds == open_bonds, f"the court holds {bonds}, open disputes' bonds {open_bonds}"
        assert tokens == token_escrow + sum(self.token_credits.values()), "token books"

    def drive_every_job_to_a_final_state(self) -> None:
        """Only time passes and only a keeper (no party of any job) acts."""
        keeper = self.actors[-1]
        for _ in range(3):
            self.market.advance(10**6)
            self.end_sweeps(keeper)
            for job_id in sorted(self.jobs):
                if State(self.jobs[job_id][1]) == State.DISPUTED:
                    self.send_court(keeper, "resolve", job_id)
                for fn in MOVE_ON.get(State(self.jobs[job_id][1]), ()):
                    if self.send(keeper, fn, job_id)["status"] == 1:
                        break
        stuck: dict[Any, Any] = {
            j: State(job[1]).name for j, job in self.jobs.items() if State(job[1]) not in FINAL
        }
        stuck.update(self.stuck_sweeps())
        assert not stuck, f"jobs, lots or sweeps no one could finish: {stuck}"

    # ------------------------------------------------------------ rules

    @initialize()
    def start(self) -> None:
        self.check_books()

    @rule(who=st.integers(0, 1), escrow=st.sampled_from([10**15, ETHER]))
    def post_fast(self, who: int, escrow: int) -> None:
        self.send(self.requesters[who], "postJob", CID, 600, 1800, value=escrow)

    @rule(
        who=st.integers(0, 1),
        auction=st.booleans(),
        shape=st.sampled_from(SHAPES),
        stake=st.sampled_from([0, STAKE]),
        in_token=st.booleans(),
        price=st.sampled_from([10**15, ETHER]),
    )
    def post_terms(
        self, who: int, auction: bool, shape: tuple[int, int], stake: int, in_token: bool,
        price: int,
    ) -> None:  # fmt: skip
        n, k = shape
        terms = Terms(
            mode=int(auction), replicas=n, quorum=k, max_price=price, min_stake=stake,
            token=self.token.address if in_token else ZERO_ADDRESS,
            reveal_window=REVEAL_WINDOW if n > 1 else 0,
        )  # fmt: skip
        value = 0 if in_token else terms.escrow()
        self.send(self.requesters[who], "postJobWithTerms", CID, terms.as_arg(), value=value)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans(),
          price=st.sampled_from([0, 10**14, 10**15]))  # fmt: skip
    def claim(self, who: int, pick: int, aim: bool, price: int) -> None:
        job_id = self.job_id(pick, *([State.OPEN] if aim else []))
        worker = self.staked[who % 4] if aim else self.actors[who]
        self.send(worker, "claim", job_id, price)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans(),
          price=st.integers(0, 10**15))  # fmt: skip
    def bid(self, who: int, pick: int, aim: bool, price: int) -> None:
        job_id = self.job_id(pick, *([State.OPEN] if aim else []))
        worker = self.staked[who % 4] if aim else self.actors[who]
        self.send(worker, "bid", job_id, price, [])

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans())
    def award(self, who: int, pick: int, aim: bool) -> None:
        self.send(self.actors[who], "award", self.job_id(pick, *([State.OPEN] if aim else [])))

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans(),
          digest=st.sampled_from(DIGESTS))  # fmt: skip
    def commit(self, who: int, pick: int, aim: bool, digest: bytes) -> None:
        job_id = self.job_id(pick, *([State.COMMITTING] if aim else []))
        worker = self.holder(job_id, who) if aim else self.actors[who]
        salt = bytes([who + 1]) * 32
        receipt = self.send(
            worker,
            "commitResult",
            job_id,
            bound_commitment(self.market, job_id, worker, digest, salt),
        )
        if receipt["status"] == 1:
            self.secrets[(job_id, worker)] = (digest, salt)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans(), honest=st.booleans())
    def reveal(self, who: int, pick: int, aim: bool, honest: bool) -> None:
        job_id = self.job_id(pick, *([State.COMMITTING, State.REVEALING] if aim else []))
        worker = self.holder(job_id, who) if aim else self.actors[who]
        digest, salt = self.secrets.get((job_id, worker), (DIGESTS[0], b"\x00" * 32))
        if not honest:
            salt = b"\xff" * 32
        self.send(worker, "revealResult", job_id, digest, salt, RESULT_CID)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans())
    def submit(self, who: int, pick: int, aim: bool) -> None:
        job_id = self.job_id(pick, *([State.CLAIMED] if aim else []))
        worker = self.party(job_id, 4, who) if aim else self.actors[who]
        self.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)

    # The batch rules come in only once a few jobs exist, so that the court's longer paths
    # (volunteer, commit, reveal) still come up in the runs' few hundred steps.
    @precondition(lambda self: 3 <= len(self.jobs) <= 8)
    @rule(who=st.integers(0, 1), count=st.integers(1, 3), escrow=st.sampled_from([10**15, ETHER]))
    def post_batch(self, who: int, count: int, escrow: int) -> None:
        receipt = self.send(self.requesters[who], "postJobs", [CID] * count, [escrow] * count,
                            600, 1800, value=count * escrow)  # fmt: skip
        self._count_batch("postJobs", receipt)

    @precondition(lambda self: len(self.jobs) >= 3)
    @rule(who=st.integers(0, 6), picks=st.lists(st.integers(0, 50), max_size=3),
          settle=st.lists(st.integers(0, 50), max_size=3), aim=st.booleans())  # fmt: skip
    def submit_batch(self, who: int, picks: list[int], settle: list[int], aim: bool) -> None:
        """Several results and settlements in one submitResults; others' jobs, late ones and
        ones not due are skipped (a cheat submitting for another worker changes nothing)."""
        ids = [self.job_id(p, *([State.CLAIMED] if aim else [])) for p in picks]
        due = [self.job_id(p, *([State.SUBMITTED] if aim else [])) for p in settle]
        worker = self.party(ids[0], 4, who) if aim and ids else self.actors[who]
        receipt = self.send(worker, "submitResults", ids, [RESULT_CID] * len(ids),
                            [RESULT_DIGEST] * len(ids), due)  # fmt: skip
        self._count_batch("submitResults", receipt)

    def _count_batch(self, fn: str, receipt: TxReceipt) -> None:
        if receipt["status"] != 1:
            return
        counts = ProtocolMachine.batch_calls
        counts[fn] = counts.get(fn, 0) + 1
        for name, _ in self.market_events(receipt):
            if name in ("ResultSubmitted", "JobSettled", "BatchItemSkipped"):
                counts[f"{fn} {name}"] = counts.get(f"{fn} {name}", 0) + 1

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans())
    def accept(self, who: int, pick: int, aim: bool) -> None:
        job_id = self.job_id(pick, *([State.SUBMITTED] if aim else []))
        requester = self.party(job_id, 0, who) if aim else self.actors[who]
        self.send(requester, "accept", job_id)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50))
    def finalize(self, who: int, pick: int) -> None:
        self.send(self.actors[who], "finalize", self.job_id(pick))

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans())
    def cancel(self, who: int, pick: int, aim: bool) -> None:
        job_id = self.job_id(pick, *([State.OPEN] if aim else []))
        requester = self.party(job_id, 0, who) if aim else self.actors[who]
        self.send(requester, "cancel", job_id)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50))
    def expire(self, who: int, pick: int) -> None:
        self.send(self.actors[who], "expire", self.job_id(pick))

    @rule(who=st.integers(0, 6), stake=st.sampled_from([0, STAKE, 3 * STAKE]))
    def register(self, who: int, stake: int) -> None:
        self.send(self.actors[who], "register", [], value=stake)

    @rule(who=st.integers(0, 6), amount=st.sampled_from([0, STAKE]))
    def add_stake(self, who: int, amount: int) -> None:
        self.send(self.actors[who], "addStake", value=amount)

    @rule(who=st.integers(0, 6), amount=st.sampled_from([1, STAKE, 3 * STAKE]))
    def unbond(self, who: int, amount: int) -> None:
        self.send(self.actors[who], "unbond", amount)

    @rule(who=st.integers(0, 6))
    def withdraw_stake(self, who: int) -> None:
        self.send(self.actors[who], "withdrawStake")

    @rule(who=st.integers(0, 6))
    def withdraw(self, who: int) -> None:
        self.send(self.actors[who], "withdraw")

    @rule(who=st.integers(0, 6))
    def withdraw_token(self, who: int) -> None:
        self.send(self.actors[who], "withdrawToken", self.token.address)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans(),
          bond_ok=st.booleans())  # fmt: skip
    def dispute(self, who: int, pick: int, aim: bool, bond_ok: bool) -> None:
        """Anyone disputes, the job's own requester (honest work or not) included."""
        job_id = self.job_id(pick, *([State.SUBMITTED] if aim else []))
        job = self.jobs.get(job_id) or ()
        price = int(job[5]) if job else 1
        self.send_court(self.actors[who], "dispute", job_id, PANEL,
                        value=PANEL * price + (0 if bond_ok else 1))  # fmt: skip

    @rule(who=st.integers(0, 1), worker=st.integers(0, 3), disputer=st.integers(0, 6))
    def disputed_job(self, who: int, worker: int, disputer: int) -> None:
        """A job posted, claimed and submitted, then disputed a second later (random single
        rules rarely line these up inside one challenge window)."""
        receipt = self.send(self.requesters[who], "postJob", CID, 600, 1800, value=10**15)
        job_id = int(self.market.events(receipt)[0][1]["jobId"])
        self.send(self.staked[worker], "claim", job_id, 10**14)
        self.send(self.staked[worker], "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
        self.market.advance(1)  # stake bonded in the dispute's second would not count
        self.send_court(self.actors[disputer], "dispute", job_id, PANEL, value=PANEL * 10**14)

    @rule(
        pick=st.integers(0, 50),
        votes=st.lists(st.sampled_from(VOTES), min_size=4, max_size=4),
        silent=st.integers(0, 4),
        lie=st.integers(0, 4),
    )
    def panel_votes(self, pick: int, votes: list[bytes], silent: int, lie: int) -> None:
        """Every staked actor volunteers for a disputed job; those seated commit their vote
        (seat ``silent`` never does), then reveal it (seat ``lie`` reveals another vote, which
        must be refused)."""
        job_id = self.job_id(pick, State.DISPUTED)
        if not self._disputed(job_id):
            return
        for verifier in self.staked:
            self.send_court(verifier, "volunteer", job_id)
        self._pass(job_id, "drawDeadline")
        seated = [s[0] for s in self.court.contract.functions.getSeats(job_id).call()]
        for i, verifier in enumerate(seated):
            if i != silent:
                self._commit_vote(job_id, verifier, votes[i])
        self._pass(job_id, "commitDeadline")
        for i, verifier in enumerate(seated):
            self._reveal_vote(job_id, verifier, honest=i != lie)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), aim=st.booleans())
    def volunteer(self, who: int, pick: int, aim: bool) -> None:
        job_id = self.job_id(pick, *([State.DISPUTED] if aim else []))
        self.send_court(self.staked[who % 4] if aim else self.actors[who], "volunteer", job_id)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), vote=st.sampled_from(VOTES))
    def commit_vote(self, who: int, pick: int, vote: bytes) -> None:
        self._commit_vote(self.job_id(pick, State.DISPUTED), self.actors[who], vote)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50), honest=st.booleans())
    def reveal_vote(self, who: int, pick: int, honest: bool) -> None:
        self._reveal_vote(self.job_id(pick, State.DISPUTED), self.actors[who], honest)

    @rule(who=st.integers(0, 6), pick=st.integers(0, 50))
    def resolve(self, who: int, pick: int) -> None:
        job_id = self.job_id(pick, State.DISPUTED)
        if self.send_court(self.actors[who], "resolve", job_id)["status"] == 1:
            assert State(self.jobs[job_id][1]) in (State.SETTLED, State.OVERTURNED)

    @rule(pick=st.integers(0, 50), phase=st.sampled_from(["drawDeadline", "commitDeadline"]))
    def pass_dispute_phase(self, pick: int, phase: str) -> None:
        job_id = self.job_id(pick, State.DISPUTED)
        if self._disputed(job_id):
            self._pass(job_id, phase)
            ProtocolMachine.rules_run += 1

    def _disputed(self, job_id: int) -> bool:
        job = self.jobs.get(job_id)
        return bool(job) and State(job[1]) == State.DISPUTED

    def _pass(self, job_id: int, phase: str) -> None:
        self.market.at(max(deadlines(self.court, job_id)[phase], self.market.now()) + 1)
        self.market.rpc("evm_mine")

    def _commit_vote(self, job_id: int, verifier: str, vote: bytes) -> None:
        commitment = vote_commitment(self.court, job_id, verifier, vote)
        if self.send_court(verifier, "commitVote", job_id, commitment)["status"] == 1:
            self.votes[(job_id, verifier)] = vote

    def _reveal_vote(self, job_id: int, verifier: str, honest: bool) -> None:
        """Reveal what was committed, or (dishonest) another vote, which must be refused."""
        vote = self.votes.get((job_id, verifier), VOTES[0])
        if not honest:
            vote = VOTES[1] if vote == VOTES[0] else VOTES[0]
        receipt = self.send_court(verifier, "revealVote", job_id, vote, salt_of(verifier))
        if not honest:
            assert receipt["status"] == 0, "a vote other than the committed one was revealed"

    @rule(seconds=st.sampled_from([1, 120, 601, 1801, 3601]))
    def wait(self, seconds: int) -> None:
        self.market.advance(seconds)
        ProtocolMachine.rules_run += 1


def test_random_protocol_runs_keep_books_exact_and_never_strand_a_job(
    deployed_market: Market,
) -> None:
    ProtocolMachine.market = deployed_market
    ProtocolMachine.rules_run = 0
    ProtocolMachine.court_calls = {}
    ProtocolMachine.batch_calls = {}
    ProtocolMachine.sweep_calls = {}
    run_state_machine_as_test(
        ProtocolMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            # No shrinking: each step is a real transaction and shrinking takes minutes; the
            # failing run prints its steps as they are.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert ProtocolMachine.rules_run >= MIN_STEPS
    calls = ProtocolMachine.court_calls
    print(f"court calls that went through: {calls}")
    for fn in ("dispute", "volunteer", "commitVote", "revealVote", "resolve"):
        assert calls.get(fn, 0) >= 1, f"no {fn} went through: {calls}"
    batches = ProtocolMachine.batch_calls
    print(f"batch calls mined: {batches}")
    for fn in ("postJobs", "submitResults", "submitResults BatchItemSkipped"):
        assert batches.get(fn, 0) >= 1, f"no {fn}: {batches}"
    sweeps = ProtocolMachine.sweep_calls
    print(f"sweep calls that went through: {sweeps}")
    # (expireLot and refundSweep have their own tests in test_sweeps.py; here they come up
    # when a run leaves a lot or a sweep to time.)
    for fn in ("postSweep", "claimLot", "submitLot", "settleLots", "openLotJob"):
        assert sweeps.get(fn, 0) >= 1, f"no {fn} went through: {sweeps}"
