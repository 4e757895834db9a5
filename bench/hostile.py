"""Hostile actors against honest agents on a devnet deployed as a public chain (issue 13).

Scripted dishonest workers and requesters (a made-up result, a requester disputing honest
work, a Sybil pair in a replicated job, a commitment copier, a claim-and-sit squatter, a zero
bid) act through the real contracts beside honest worker agents (real WorkerAgent loops in
threads: three verifiers that ask more than these jobs pay, so they only serve on dispute
panels, and two workers). After every scripted step the market's books are checked at one
block: its balance equals every credit, escrow, stake and unbonding plus what was burned, and
the court holds exactly the bonds of open disputes. It prints a table: per attack, whether it
profited its author (its credits and refunds minus what it paid in and what was slashed, against
an honest party's baseline), how many honest parties were slashed, and the wei they lost.

    .venv/bin/python bench/hostile.py            # every attack, ~2 minutes
    .venv/bin/python bench/hostile.py --only garbage,griefer
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from agent.policy import Policy
from agent.verification import recheck_as_requester
from agent.worker import WorkerAgent
from hepx.allowlist import merkle_proof
from hepx.anvil import Anvil, start_anvil
from hepx.chain import (
    CourtClient,
    DisputeState,
    JobState,
    MarketClient,
    PaymentDirection,
    PaymentReason,
    deploy_market,
)
from hepx.deployment import Deployment
from hepx.digest import digest_bytes32
from hepx.errors import TxReverted
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore
from hepx.terms import post_spec

ETHER = 10**18
PRICE = ETHER // 100
STAKE = ETHER // 2
# The honest workers' stake, and the Sybils' (the least a replica of these jobs locks): the
# pair holds 0.2 % of the stake that applies to a replicated job's draw.
WORKER_STAKE = 5 * ETHER
SYBIL_STAKE = PRICE
WINDOW = 8  # challenge window: also each dispute phase
DRAW_WINDOW = 4  # a replicated job's claim window: its draw closes after it
# Accounts: the honest ones, then the attackers.
REQUESTER, GRIEFER, VERIFIERS, WORKERS = 0, 1, (2, 3, 4), (5, 6)
CHEAT, SYBILS, COPIER, SQUATTER = 7, (8, 9), 10, 11


@dataclass
class Row:
    attack: str
    tried: int = 0
    profited: int = 0
    honest_slashed: int = 0
    honest_wei_lost: int = 0
    books_checked: int = 0
    books_ok: bool = True
    notes: str = ""


@dataclass
class Devnet:
    anvil: Anvil
    deployment: Deployment
    store: LocalStore
    home: Path
    agents: list[WorkerAgent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self, account: int) -> MarketClient:
        key = self.anvil.accounts[account].private_key
        return MarketClient.from_deployment(self.deployment, private_key=key)

    def address(self, account: int) -> str:
        return str(self.client(account).sender)

    def rpc(self, method: str, *params: Any) -> Any:
        return self.client(0).rpc.request(method, list(params))

    def warp(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", seconds)
        self.rpc("evm_mine")

    # ---------------------------------------------------------------- books

    def check_books(self, row: Row) -> None:
        """At one block: the market's balance is what it owes, the court's its open bonds."""
        client = self.client(0)
        w3, block = client.w3, client.block_number()
        market = client.contract
        court = CourtClient.of_market(client)
        owed = int(market.functions.burned().call(block_identifier=block))
        for account in self.anvil.accounts:
            address = w3.to_checksum_address(account.address)
            owed += int(market.functions.withdrawable(address).call(block_identifier=block))
            record = market.functions.getWorker(address).call(block_identifier=block)
            owed += int(record[1]) + int(record[4])  # stake (with locked) + unbonding
        bonds = 0
        for job_id in range(1, int(market.functions.jobCount().call(block_identifier=block)) + 1):
            owed += int(market.functions.getJob(job_id).call(block_identifier=block)[6])
            dispute = court.contract.functions.getDispute(job_id).call(block_identifier=block)
            if dispute[5] in (DisputeState.DRAWING, DisputeState.VOTING):
                bonds += int(dispute[1])
        ok = owed == w3.eth.get_balance(market.address, block) and bonds == w3.eth.get_balance(
            court.address, block
        )
        row.books_checked += 1
        row.books_ok = row.books_ok and ok

    # ---------------------------------------------------------------- money by job

    def events_of(self, job_id: int) -> list[Any]:
        """Every market event of ``job_id`` (StakeSlashed indexes the job second, so the
        node's topic filter on the job would miss it)."""
        client = self.client(0)
        return [
            ev for ev in client.events(self.deployment.deploy_block, client.block_number())
            if ev.args.get("jobId") == job_id
        ]  # fmt: skip

    def flows(self, job_id: int) -> dict[str, int]:
        """Per address, what job ``job_id`` moved to it (credits) minus what it paid in."""
        net: dict[str, int] = {}
        for ev in self.events_of(job_id):
            if ev.name == "Payment":
                payee, amount = str(ev.args["payee"]), int(ev.args["amount"])
                direction = int(ev.args["direction"])
                if direction == PaymentDirection.CREDIT:
                    net[payee] = net.get(payee, 0) + amount
                elif direction == PaymentDirection.IN:
                    net[payee] = net.get(payee, 0) - amount
            elif ev.name == "StakeSlashed":
                worker = str(ev.args["worker"])
                net[worker] = net.get(worker, 0) - int(ev.args["amount"])
        return net

    def slashed(self, job_id: int) -> dict[str, int]:
        found: dict[str, int] = {}
        for ev in self.events_of(job_id):
            if ev.name == "StakeSlashed":
                found[str(ev.args["worker"])] = int(ev.args["amount"])
        return found

    def post(self, requester: int, allowlist: list[int], **payment: Any) -> int:
        spec = parse_spec(
            {
                "apiVersion": "hepx/v1", "kind": "echo",
                "metadata": {"name": f"hostile-{secrets.token_hex(3)}"},
                "params": {"message": "the honest answer"}, "resources": {"max_runtime": 20},
                "payment": {"max_price": PRICE, "claim_window": 60, "run_window": 60,
                            "allowlist": [self.address(a) for a in allowlist], **payment},
            }
        )  # fmt: skip
        job_id, _ = post_spec(self.client(requester), self.store.add_bytes(canonical_json(spec)),
                              spec)  # fmt: skip
        self.rpc("evm_mine")  # a replicated job's draw is seeded by a block after the post
        return job_id

    def proof(self, job_allowlist: list[int], account: int) -> list[bytes]:
        return merkle_proof([self.address(a) for a in job_allowlist], self.address(account))

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.2)

    def garbage_result(self, tmp: Path) -> tuple[str, bytes]:
        outputs = tmp / secrets.token_hex(4) / "outputs"
        outputs.mkdir(parents=True)
        (outputs / "echo.txt").write_text("whatever pays\n")
        return self.store.add_dir(outputs.parent), digest_bytes32("echo", outputs)


@contextmanager
def devnet() -> Iterator[Devnet]:
    with tempfile.TemporaryDirectory(prefix="hepx-hostile-") as tmp:
        home = Path(tmp)
        anvil = start_anvil(accounts=12, workdir=home / "anvil")
        try:
            deployment = deploy_market(anvil.url, anvil.accounts[0].private_key, WINDOW,
                                       stake_free_limit=0)  # fmt: skip
            net = Devnet(anvil, deployment, LocalStore(home / "store", fsync=False), home)
            verifier = Policy.model_validate({"kinds": {"echo": {"price": ETHER}}, "stake": STAKE})
            worker = Policy.model_validate(
                {"kinds": {"echo": {"price": PRICE}}, "stake": WORKER_STAKE}
            )
            for i, (account, policy) in enumerate(
                [*((a, verifier) for a in VERIFIERS), *((a, worker) for a in WORKERS)]
            ):
                agent = WorkerAgent(net.client(account), net.store, policy, home / f"agent{i}",
                                    deployment.deploy_block, poll_interval=0.1,
                                    submit_margin=1)  # fmt: skip
                net.agents.append(agent)
                thread = threading.Thread(target=agent.run, args=(net.stop,), daemon=True)
                thread.start()
                net.threads.append(thread)
            for account in (CHEAT, COPIER, SQUATTER):
                net.client(account).register(["echo"], STAKE)
            for account in SYBILS:
                net.client(account).register(["echo"], SYBIL_STAKE)
            net.wait("the agents' stakes", lambda: all(
                net.client(0).worker(a.address).stake >= (a.policy.stake or 0)
                for a in net.agents))  # fmt: skip
            net.warp(2)  # stakes predate whatever comes next
            yield net
        finally:
            if "net" in locals():
                net.stop.set()
                for thread in net.threads:
                    thread.join(timeout=30)
            anvil.stop()


# -------------------------------------------------------------------- attacks


def garbage(net: Devnet) -> Row:
    """A worker claims, submits a made-up result; the requester re-checks and disputes."""
    row = Row("made-up result, single replica", tried=1)
    job = net.post(REQUESTER, [CHEAT])
    cheat = net.client(CHEAT)
    cheat.claim_with_proof(job, PRICE, net.proof([CHEAT], CHEAT))
    net.check_books(row)
    cid, digest = net.garbage_result(net.home)
    cheat.submit_result(job, cid, digest)
    net.check_books(row)
    requester = net.client(REQUESTER)
    spec = parse_spec(net.store.read_bytes(str(requester.posted_spec_cid(job, 0))))
    own, published = recheck_as_requester(spec, net.store, cid, net.home / "recheck")
    assert own != published, "the re-check should see the made-up result"
    court = CourtClient.of_market(requester)
    court.open_dispute(job, PRICE, panel=3)
    net.check_books(row)
    _until_verdict(net, court, job, row)
    gain = _score(net, job, row, [CHEAT])
    row.notes = f"verdict {_verdict(court, job)}; cheat net {gain:+d} wei"
    return row


def griefer(net: Devnet) -> Row:
    """A requester disputes a result it knows to be honest, hoping to get the work free."""
    row = Row("requester disputes honest work", tried=1)
    worker = net.agents[len(VERIFIERS)]
    job = net.post(GRIEFER, [WORKERS[0]])
    net.wait("the honest worker's result", lambda: net.client(0).job(job).state
             == JobState.SUBMITTED)  # fmt: skip
    court = CourtClient.of_market(net.client(GRIEFER))
    court.open_dispute(job, PRICE, panel=3)
    net.check_books(row)
    _until_verdict(net, court, job, row)
    # An honest requester pays the price for the work: the griefer's gain is against that.
    gain = _score(net, job, row, [GRIEFER], honest_baseline=-PRICE)
    paid = net.flows(job).get(worker.address, 0)
    row.notes = (
        f"verdict {_verdict(court, job)}; honest worker net {paid:+d}; "
        f"griefer {gain:+d} against paying for the work"
    )
    return row


def sybils(net: Devnet) -> Row:
    """Two addresses of one party apply first to a 2-of-3 replicated job and reveal garbage."""
    row = Row("Sybil pair in a 2-of-3 replicated job", tried=1)
    allow = [*SYBILS, *WORKERS]
    job = net.post(REQUESTER, allow, replicas=3, quorum=2, reveal_window=WINDOW * 2,
                   min_stake=PRICE, claim_window=DRAW_WINDOW)  # fmt: skip
    clients = [net.client(s) for s in SYBILS]
    for sybil, client in zip(SYBILS, clients, strict=True):
        try:  # before the honest agents, in the first block that may claim
            client.claim_with_proof(job, PRICE, net.proof(allow, sybil))
        except TxReverted as exc:  # a key that cannot win a seat any more
            row.notes += f"Sybil claim refused: {exc.error}; "
    net.check_books(row)
    net.wait("the draw's award", lambda: net.client(0).job(job).state != JobState.OPEN)
    seated = [c for c in clients if c.assignment_of(job, c.sender) is not None]
    made_up = bytes(keccak(text="garbage shared by the Sybils"))
    salts = [secrets.token_bytes(32) for _ in seated]
    for client, salt in zip(seated, salts, strict=True):
        client.commit_result(job, client.commitment(job, made_up, salt))
    net.check_books(row)
    net.wait("the reveal phase", lambda: net.client(0).job(job).state == JobState.REVEALING)
    cid, _ = net.garbage_result(net.home)
    for client, salt in zip(seated, salts, strict=True):
        client.reveal_result(job, made_up, salt, cid)
    net.check_books(row)
    net.wait("the tally", lambda: net.client(0).job(job).state.final, timeout=120)
    net.check_books(row)
    gain = _score(net, job, row, list(SYBILS))
    row.notes += (
        f"{len(seated)} of 3 seats drawn for the pair (0.2 % of the stake); "
        f"job {net.client(0).job(job).state.label}; Sybils net {gain:+d} wei"
    )
    return row


def copier(net: Devnet) -> Row:
    """A replica copies an honest ResultCommitted and reveals the honest digest and salt."""
    row = Row("copied commitment in a 2-of-3 replicated job", tried=1)
    allow = [*WORKERS, COPIER]
    job = net.post(REQUESTER, allow, replicas=3, quorum=2, reveal_window=WINDOW * 2,
                   min_stake=PRICE, claim_window=DRAW_WINDOW)  # fmt: skip
    client = net.client(COPIER)
    client.claim_with_proof(job, PRICE, net.proof(allow, COPIER))
    honest = net.address(WORKERS[0])
    net.wait("an honest commitment", lambda: any(
        a.worker == honest and any(a.commitment) for a in client.assignments(job)))  # fmt: skip
    seen = next(a.commitment for a in client.assignments(job) if a.worker == honest)
    client.commit_result(job, seen)
    net.check_books(row)
    net.wait("the honest reveal", lambda: any(
        a.worker == honest and any(a.digest) for a in client.assignments(job)))  # fmt: skip
    digest = next(a.digest for a in client.assignments(job) if a.worker == honest)
    reveal = [
        ev for ev in client.events(net.deployment.deploy_block, client.block_number(), job)
        if ev.name == "ResultRevealed" and ev.args["worker"] == honest
    ][0]  # fmt: skip
    salt = _salt_from_reveal(client, reveal.tx_hash)
    try:
        client.reveal_result(job, digest, salt, str(reveal.args["resultCid"]))
        refused = "revealed (!)"
    except TxReverted as exc:
        refused = f"reveal refused: {exc.error}"
    net.wait("the tally", lambda: net.client(0).job(job).state.final, timeout=120)
    net.check_books(row)
    gain = _score(net, job, row, [COPIER])
    row.notes = f"{refused}; copier net {gain:+d} wei"
    return row


def squatter(net: Devnet) -> Row:
    """A staked worker claims and never runs the job, locking the escrow."""
    row = Row("claim and sit", tried=1)
    job = net.post(REQUESTER, [SQUATTER], run_window=30)
    client = net.client(SQUATTER)
    client.claim_with_proof(job, PRICE, net.proof([SQUATTER], SQUATTER))
    net.check_books(row)
    net.warp(32)
    net.client(REQUESTER).expire(job, gas=400_000)  # anyone may, once the run deadline passed
    net.check_books(row)
    gain = _score(net, job, row, [SQUATTER])
    row.notes = f"job {net.client(0).job(job).state.label}; squatter net {gain:+d} wei"
    return row


def zero_bid(net: Devnet) -> Row:
    """A bid of 0 in an auction, which nobody could underbid."""
    row = Row("zero bid locks an auction", tried=1)
    allow = [SQUATTER]
    job = net.post(REQUESTER, allow, mode="auction")
    try:
        net.client(SQUATTER).bid(job, 0, net.proof(allow, SQUATTER))
        row.profited, row.notes = 1, "the zero bid was accepted"
    except TxReverted as exc:
        row.notes = f"refused: {exc.error}"
    net.check_books(row)
    return row


# -------------------------------------------------------------------- helpers


def _verdict(court: CourtClient, job: int) -> str:
    dispute = court.dispute(job)
    return dispute.verdict.label if dispute else "no dispute"


def _salt_from_reveal(client: MarketClient, tx_hash: str) -> bytes:
    """What a copier reads from an honest reveal's calldata: the salt."""
    tx = client.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    _, args = client.contract.decode_function_input(tx["input"])
    return bytes(args["salt"])


def _until_verdict(net: Devnet, court: CourtClient, job: int, row: Row) -> None:
    """The verifier agents do the work; the clock is moved on a phase at a time."""
    deadline = time.monotonic() + 120
    while (dispute := court.dispute(job)) is not None and dispute.state != DisputeState.RESOLVED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"dispute of job {job} not resolved: {dispute}")
        time.sleep(1.0)
        net.warp(WINDOW // 2)
        net.check_books(row)
    net.wait("the job's end", lambda: net.client(0).job(job).state.final)
    net.check_books(row)


def _score(net: Devnet, job: int, row: Row, attackers: list[int], honest_baseline: int = 0) -> int:
    """What job ``job`` gained the attackers (their credits minus what they paid in and lost
    to slashes, against what an honest party in their place would have had), recorded with
    the honest parties' losses in ``row``; returns the gain."""
    flows = net.flows(job)
    addresses = {net.address(a) for a in attackers}
    gain = sum(flows.get(a, 0) for a in addresses) - honest_baseline
    row.profited = int(gain > 0)
    _honest_losses(net, job, row, addresses)
    return gain


def _honest_losses(net: Devnet, job: int, row: Row, attackers: set[str]) -> None:
    """Honest parties' slashes, and what an honest requester paid for no honest work."""
    for worker, amount in net.slashed(job).items():
        if worker not in attackers:
            row.honest_slashed += 1
            row.honest_wei_lost += amount
    flows = net.flows(job)
    paid_to_attackers = 0
    for ev in net.events_of(job):
        if (ev.name == "Payment" and int(ev.args["reason"]) == PaymentReason.WORKER_PAYMENT
                and str(ev.args["payee"]) in attackers):  # fmt: skip
            paid_to_attackers += int(ev.args["amount"])
    requester = net.address(REQUESTER)
    if requester not in attackers and requester in flows:
        row.honest_wei_lost += paid_to_attackers


ATTACKS: dict[str, Callable[[Devnet], Row]] = {
    "garbage": garbage,
    "griefer": griefer,
    "copier": copier,
    "squatter": squatter,
    "zero_bid": zero_bid,
    "sybils": sybils,
}


def table(rows: list[Row]) -> str:
    head = ("| attack | tried | profited | honest slashed | honest wei lost | books checked |"
            " notes |\n|---|---:|---:|---:|---:|---|---|")  # fmt: skip
    lines = [
        f"| {r.attack} | {r.tried} | {r.profited} | {r.honest_slashed} | {r.honest_wei_lost} "
        f"| {r.books_checked} {'ok' if r.books_ok else 'BROKEN'} | {r.notes} |"
        for r in rows
    ]
    total = Row("total", sum(r.tried for r in rows), sum(r.profited for r in rows),
                sum(r.honest_slashed for r in rows), sum(r.honest_wei_lost for r in rows),
                sum(r.books_checked for r in rows), all(r.books_ok for r in rows))  # fmt: skip
    lines.append(f"| **total** | {total.tried} | {total.profited} | {total.honest_slashed} | "
                 f"{total.honest_wei_lost} | {total.books_checked} "
                 f"{'ok' if total.books_ok else 'BROKEN'} | |")  # fmt: skip
    return "\n".join([head, *lines])


def run(names: list[str]) -> list[Row]:
    rows = []
    with devnet() as net:
        for name in names:
            started = time.monotonic()
            row = ATTACKS[name](net)
            row.notes += f"; {time.monotonic() - started:.0f} s"
            rows.append(row)
            print(f"{name}: {row}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated attacks: " + ",".join(ATTACKS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(ATTACKS)
    print(table(run(names)))


if __name__ == "__main__":
    main()
