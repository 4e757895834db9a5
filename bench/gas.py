"""Gas used by each JobMarket call and per job, from real receipts on a fresh anvil.

    .venv/bin/python bench/gas.py            # table
    .venv/bin/python bench/gas.py --json
    .venv/bin/python bench/gas.py --write    # rewrite bench/gas-snapshot.txt
    .venv/bin/python bench/gas.py --check    # exit 1 and print a diff if gas changed

Scenarios: the fast path (postJob, claim mode, one replica, ETH) three times: job 1 brings a new
requester and a new worker (each gets its account slot), job 2 settles by finalize for the same
parties, job 3 by accept after both withdrew all their credit; then BATCH (100) of them for the
same parties, posted in one postJobs, claimed in one claimJobs, submitted in one
submitResults and settled in one finalizeJobs (a worker's next submitResults can carry the
settlements instead, saving that transaction's base cost); BATCH again as one sweep (postSweep,
one claimLot, one submitLot, settleLots; ISweepCalls); the same job through
postJobWithTerms; an auction with 3 bids; a 3-of-3 replicated job with commit-reveal and staked
workers; the fast path twice from requests the requester signed, relayed by another account
(RequestDesk; the deposit is paid once, before); and the fast path twice more on a market
deployed as on a public chain (stake-free limit 0), where the worker locks a stake of its price
at the claim, and a sweep of BATCH there (its lot locks every job's stake); then on that
market two disputed jobs (a panel of 3 verifiers: one upholds the
worker, one refutes it).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from hepx.anvil import start_anvil
from hepx.artifacts import load_artifact
from hepx.chain.desk import JobRequest, sign_request
from hepx.chain.types import Terms

CHALLENGE_WINDOW = 3600
SPEC_CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"  # CIDv1 raw sha2-256
RESULT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
RESULT_DIGEST = Web3.keccak(text="hepx bench result")  # a digest has no zero bytes to spare
ESCROW = 10**18
PRICE = 6 * 10**17
STAKE = 10**17
# The market the scenarios run on takes every job without a stake (a devnet's shape); the
# "staked" scenarios run on one deployed as on a public chain, where every paid job is staked.
NO_STAKE_LIMIT = 2**256 - 1
ZERO = "0x" + "00" * 20
SNAPSHOT = Path(__file__).with_name("gas-snapshot.txt")
BATCH = 100  # jobs in the batched and sweep scenarios
SWEEP_PRICE = 10**15  # a staked sweep's price: the worker's stake covers a lot of BATCH


def terms(mode: int = 0, replicas: int = 1, quorum: int = 1, min_stake: int = 0) -> tuple[Any, ...]:
    reveal = 900 if replicas > 1 else 0
    return (
        mode,
        replicas,
        quorum,
        ZERO,
        ESCROW,
        min_stake,
        600,
        1800,
        reveal,
        b"\0" * 32,
        b"\0" * 32,
    )


def run() -> list[tuple[str, int]]:
    """(step, gas used) for deploy, each call of every scenario, and the withdrawals."""
    artifact = load_artifact("JobMarket")
    with start_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        accounts = [Web3.to_checksum_address(a.address) for a in node.accounts]
        deployer, requester, worker, keeper = accounts[:4]
        bidders = accounts[4:7]
        rows: list[tuple[str, int]] = []

        def mine(label: str, call: Any, sender: str, value: int = 0) -> Any:
            tx_hash = call.transact({"from": sender, "value": value})
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                raise RuntimeError(f"{label} reverted (tx {tx_hash.hex()})")
            rows.append((label, int(receipt["gasUsed"])))
            return receipt

        def mine_all(label: str, calls: list[Any], sender: str, value: int = 0) -> None:
            """One row for several transactions: their gas summed."""
            for call in calls:
                mine(label, call, sender, value)
            mined = [used for _, used in rows[-len(calls) :]]
            del rows[-len(calls) :]
            rows.append((label, sum(mined)))

        def wait(seconds: int) -> None:
            w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])

        def sweep(sweeps: Any, label: str, sweep_id: int, price: int, worker: str) -> None:
            """BATCH jobs posted as a sweep, claimed as one lot, submitted, settled."""
            mine(f"{label} postSweep", sweeps.postSweep([SPEC_CID] * BATCH, price, 600, 1800),
                 requester, price * BATCH)  # fmt: skip
            mine(f"{label} claimLot", sweeps.claimLot(sweep_id, sweep_id, BATCH), worker)
            mine(f"{label} submitLot", sweeps.submitLot(sweep_id, [RESULT_CID] * BATCH,
                 [RESULT_DIGEST] * BATCH, []), worker)  # fmt: skip
            wait(CHALLENGE_WINDOW + 1)
            mine(f"{label} settleLots", sweeps.settleLots([sweep_id]), keeper)

        calls_artifact = load_artifact("MarketCalls")

        def deploy(stake_free_limit: int, label: str) -> tuple[Any, Any]:
            """The functions of a new market and of its sweeps (MarketCalls' ABI, at the
            market's address: they reach its fallback)."""
            code = w3.eth.contract(abi=calls_artifact.abi, bytecode=calls_artifact.bytecode)
            calls = mine(
                f"deploy MarketCalls{label}",
                code.constructor(CHALLENGE_WINDOW, stake_free_limit),
                deployer,
            )
            factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
            args = (CHALLENGE_WINDOW, stake_free_limit, calls["contractAddress"])
            address = mine(f"deploy JobMarket{label}", factory.constructor(*args), deployer)[
                "contractAddress"
            ]
            return (
                w3.eth.contract(address=address, abi=artifact.abi).functions,
                w3.eth.contract(address=address, abi=calls_artifact.abi).functions,
            )

        fns, sweeps = deploy(NO_STAKE_LIMIT, "")
        count: Callable[[], int] = lambda: int(fns.jobCount().call())  # noqa: E731

        for n, settle in ((1, "accept"), (2, "finalize"), (3, "accept")):
            label = f"fast job {n}"
            if n == 3:
                mine("withdraw (worker)", fns.withdraw(), worker)
                mine("withdraw (requester)", fns.withdraw(), requester)
            mine(f"{label} postJob", fns.postJob(SPEC_CID, 600, 1800), requester, ESCROW)
            job_id = count()
            mine(f"{label} claim", fns.claim(job_id, PRICE), worker)
            mine(
                f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), worker
            )
            if settle == "accept":
                mine(f"{label} accept", fns.accept(job_id), requester)
            else:
                wait(CHALLENGE_WINDOW + 1)
                mine(f"{label} finalize", fns.finalize(job_id), keeper)

        # The same parties, BATCH jobs, each step one transaction.
        label = f"batch of {BATCH} fast jobs"
        first = count() + 1
        ids = list(range(first, first + BATCH))
        mine(f"{label} postJobs", fns.postJobs([SPEC_CID] * BATCH, [ESCROW] * BATCH, 600, 1800),
             requester, ESCROW * BATCH)  # fmt: skip
        mine(f"{label} claimJobs", fns.claimJobs(ids, [PRICE] * BATCH), worker)
        mine(f"{label} submitResults", fns.submitResults(ids, [RESULT_CID] * BATCH,
             [RESULT_DIGEST] * BATCH, []), worker)  # fmt: skip
        wait(CHALLENGE_WINDOW + 1)
        mine(f"{label} finalizeJobs", fns.finalizeJobs(ids), keeper)

        # The same jobs as one sweep: one record, taken as one lot, paid per lot.
        sweep(sweeps, f"sweep of {BATCH} fast jobs", count() + 1, PRICE, worker)

        label = "terms claim job"
        mine(f"{label} postJobWithTerms", fns.postJobWithTerms(SPEC_CID, terms()), requester,
             ESCROW)  # fmt: skip
        job_id = count()
        mine(f"{label} claim", fns.claim(job_id, PRICE), worker)
        mine(f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), worker)
        mine(f"{label} accept", fns.accept(job_id), requester)

        for who in bidders:
            mine(f"register {who[:6]}", fns.register([]), who, 3 * STAKE)
        label = "auction job"
        mine(f"{label} postJobWithTerms", fns.postJobWithTerms(SPEC_CID, terms(mode=1)),
             requester, ESCROW)  # fmt: skip
        job_id = count()
        for i, (who, price) in enumerate(
            zip(bidders, (PRICE, PRICE // 2, PRICE // 4), strict=True)
        ):
            mine(f"{label} bid {i + 1}", fns.bid(job_id, price, []), who)
        wait(601)
        mine(f"{label} award", fns.award(job_id), keeper)
        mine(
            f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), bidders[2]
        )
        mine(f"{label} accept", fns.accept(job_id), requester)

        label = "replicated 3-of-3 job"
        mine(f"{label} postJobWithTerms",
             fns.postJobWithTerms(SPEC_CID, terms(replicas=3, quorum=3, min_stake=STAKE)),
             requester, 3 * ESCROW)  # fmt: skip
        job_id = count()
        digest = Web3.keccak(text="result")
        salts = [bytes([i + 1]) * 32 for i in range(3)]
        wait(0)  # the draw is seeded by a block after the post's (a node simulates in the last)
        for i, who in enumerate(bidders):  # each applies to the draw; the first seeds it
            mine(f"{label} claim {i + 1}", fns.claim(job_id, PRICE), who)
        wait(601)
        mine(f"{label} award", fns.award(job_id), keeper)
        for i, who in enumerate(bidders):
            commitment = fns.commitmentOf(job_id, who, digest, salts[i]).call()
            mine(f"{label} commitResult {i + 1}", fns.commitResult(job_id, commitment), who)
        for i, who in enumerate(bidders):
            reveal = fns.revealResult(job_id, digest, salts[i], RESULT_CID)
            mine(f"{label} revealResult {i + 1}", reveal, who)
        mine(f"{label} finalize", fns.finalize(job_id), keeper)

        # Signed requests: the requester deposits once; a relayer (the API) posts each job
        # from a request the requester signed; the rest of the job is the fast path's.
        desk_artifact = load_artifact("RequestDesk")
        desk = w3.eth.contract(address=fns.requestDesk().call(), abi=desk_artifact.abi)
        mine("deposit (requester)", desk.functions.deposit(), requester, 2 * ESCROW)
        for n in (1, 2):
            label = f"signed fast job {n}"
            request = JobRequest(requester, SPEC_CID, Terms(ESCROW, 600, 1800), n, 2**40)
            signature = sign_request(
                request, w3.eth.chain_id, desk.address, node.accounts[1].private_key
            )
            mine(
                f"{label} relay",
                desk.functions.relay(request.as_tuple(), bytes.fromhex(signature[2:])),
                keeper,
            )
            job_id = count()
            mine(f"{label} claim", fns.claim(job_id, PRICE), worker)
            mine(
                f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), worker
            )
            mine(f"{label} accept", fns.accept(job_id), requester)

        # As on a public chain (stake-free limit 0): the worker locks a stake of its price at
        # the claim and gets it back at settlement. Job 1 touches every slot first.
        fns, sweeps = deploy(0, " (public)")
        mine("staked register", fns.register([]), worker, 2 * PRICE)
        for n in (1, 2):
            label = f"staked fast job {n}"
            mine(f"{label} postJob", fns.postJob(SPEC_CID, 600, 1800), requester, ESCROW)
            job_id = count()
            mine(f"{label} claim", fns.claim(job_id, PRICE), worker)
            mine(
                f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), worker
            )
            wait(CHALLENGE_WINDOW + 1)
            mine(f"{label} finalize", fns.finalize(job_id), keeper)
        # A staked sweep: its lot locks every job's stake at once.
        sweep(sweeps, f"staked sweep of {BATCH} fast jobs", count() + 1, SWEEP_PRICE, worker)

        # Disputes on the public market: a panel of 3 staked verifiers re-runs the job and
        # upholds the worker (the bond pays them) or refutes it (its stake pays them).
        court_artifact = load_artifact("DisputeCourt")
        court = w3.eth.contract(address=fns.disputeCourt().call(), abi=court_artifact.abi).functions
        for who in bidders:
            mine(f"verifier register {who[:6]}", fns.register([]), who, 3 * PRICE)
        wait(1)  # stake counts for disputes opened after it
        for label, verdict in (
            ("disputed job, upheld", RESULT_DIGEST),
            ("disputed job, refuted", Web3.keccak(text="x")),
        ):
            mine(f"{label} postJob", fns.postJob(SPEC_CID, 600, 1800), requester, ESCROW)
            job_id = count()
            mine(f"{label} claim", fns.claim(job_id, PRICE), worker)
            mine(
                f"{label} submitResult", fns.submitResult(job_id, RESULT_CID, RESULT_DIGEST), worker
            )
            mine(f"{label} dispute", court.dispute(job_id, 3), requester, 3 * PRICE)
            wait(1)  # the seed is a later block's randomness (gas is estimated at the latest)
            for i, who in enumerate(bidders):
                mine(f"{label} volunteer {i + 1}", court.volunteer(job_id), who)
            wait(CHALLENGE_WINDOW + 1)
            salt = b"\x01" * 32
            for i, who in enumerate(bidders):
                commitment = court.commitmentOf(job_id, who, verdict, salt).call()
                mine(f"{label} commitVote {i + 1}", court.commitVote(job_id, commitment), who)
            for i, who in enumerate(bidders):
                mine(f"{label} revealVote {i + 1}", court.revealVote(job_id, verdict, salt), who)
            mine(f"{label} resolve", court.resolve(job_id), keeper)

        return rows


JOBS = (
    "fast job 1",
    "fast job 2",
    "fast job 3",
    f"batch of {BATCH} fast jobs",
    f"sweep of {BATCH} fast jobs",
    f"staked sweep of {BATCH} fast jobs",
    "terms claim job",
    "auction job",
    "replicated 3-of-3 job",
    "signed fast job 1",
    "signed fast job 2",
    "staked fast job 1",
    "staked fast job 2",
    "disputed job, upheld",
    "disputed job, refuted",
)


def totals(rows: list[tuple[str, int]]) -> dict[str, int]:
    summed = {
        f"{job}: post -> settled": sum(v for k, v in rows if k.startswith(f"{job} "))
        for job in JOBS
    }
    for many in ("batch", "sweep", "staked sweep"):
        batch = f"{many} of {BATCH} fast jobs: post -> settled"
        summed[f"{batch}, per job"] = summed[batch] // BATCH
    return summed


def seeded(label: str) -> bool:
    """Whether a row's gas depends on a draw's random seed (a key's fixed-point log2 branches
    on its bits): the dispute volunteers' and the replicated job's claims, and their totals."""
    if "volunteer" in label or (label.startswith("replicated") and " claim " in label):
        return True
    return label.startswith(("disputed job", "replicated")) and "post -> settled" in label


def render(rows: list[tuple[str, int]], exact_only: bool = False) -> str:
    lines = [*rows, *totals(rows).items()]
    if exact_only:
        lines = [(label, used) for label, used in lines if not seeded(label)]
    width = max(len(label) for label, _ in lines)
    out = [f"{'step':<{width}} | gas used", f"{'-' * width}-+----------"]
    out += [f"{label:<{width}} | {used:>9,}" for label, used in lines]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mode.add_argument("--write", action="store_true", help=f"rewrite {SNAPSHOT.name}")
    mode.add_argument(
        "--check", action="store_true", help=f"exit 1 if gas differs from {SNAPSHOT.name}"
    )
    args = parser.parse_args(argv)
    rows = run()
    if args.json:
        print(json.dumps({"steps": dict(rows), "totals": totals(rows)}, indent=2))
        return 0
    # Deploy gas moves with the metadata hash in the bytecode (any source edit, even a
    # comment), and a volunteer's with the draw's seed (a block's prevrandao: its key's log2
    # and whether it displaces a seat), so the snapshot holds only the calls that are exact.
    table = render([row for row in rows if not row[0].startswith("deploy")], exact_only=True)
    if args.write:
        SNAPSHOT.write_text(table, encoding="utf-8")
        print(f"wrote {SNAPSHOT}")
        return 0
    if args.check:
        committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
        if committed == table:
            print(f"gas unchanged ({SNAPSHOT.name})")
            return 0
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True), table.splitlines(keepends=True),
            f"{SNAPSHOT.name} (committed)", "measured now",
        )  # fmt: skip
        sys.stdout.writelines(diff)
        print(f"gas changed: review, then run `python bench/gas.py --write` and commit {SNAPSHOT}")
        return 1
    print(render(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
