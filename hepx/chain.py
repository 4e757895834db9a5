"""The chain client: JobMarket calls, signed transactions, decoded events and errors.

Every transaction is simulated first (gas estimation runs it), so a call the contract would
refuse raises :class:`TxReverted` with the contract's custom error before anything is sent.
Connection failures are retried with backoff, then raised as :class:`ChainUnavailable`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

import requests
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import TxReceipt

from hepx.artifacts import load_artifact
from hepx.deployment import Deployment
from hepx.errors import ChainError, ChainUnavailable, ConfigError, HepxError, TxReverted

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobState(IntEnum):
    """Mirror of ``IJobMarket.JobState``."""

    NONE = 0
    OPEN = 1
    CLAIMED = 2
    SUBMITTED = 3
    SETTLED = 4
    CANCELLED = 5
    EXPIRED = 6
    COMMITTING = 7
    REVEALING = 8
    NO_QUORUM = 9

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def final(self) -> bool:
        return self in (JobState.SETTLED, JobState.CANCELLED, JobState.EXPIRED, JobState.NO_QUORUM)


class MatchMode(IntEnum):
    """Mirror of ``IJobMarket.MatchMode``."""

    CLAIM = 0
    AUCTION = 1

    @property
    def label(self) -> str:
        return self.name.lower()


class AssignmentStatus(IntEnum):
    """Mirror of ``IJobMarket.AssignmentStatus``: how far one replica's worker got."""

    NONE = 0
    BID = 1
    ASSIGNED = 2
    COMMITTED = 3
    REVEALED = 4
    PAID = 5
    SLASHED = 6
    RELEASED = 7

    @property
    def label(self) -> str:
        return self.name.lower()


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = b"\x00" * 32


def kind_id(kind: str) -> bytes:
    """The on-chain id of a job kind: ``keccak256(bytes(kind))``."""
    return bytes(keccak(text=kind))


def commitment_of(digest: bytes, salt: bytes) -> bytes:
    """``keccak256(abi.encode(digest, salt))``, what a replica commits before revealing."""
    if len(digest) != 32 or len(salt) != 32:
        raise ChainError("a commitment takes a 32-byte digest and a 32-byte salt")
    return bytes(keccak(digest + salt))


@dataclass(frozen=True)
class Terms:
    """What ``postJobWithTerms`` takes beyond the spec CID (``IJobMarket.Terms``)."""

    max_price: int  # per replica, in wei or token units
    match_window: int
    run_window: int
    mode: MatchMode = MatchMode.CLAIM
    replicas: int = 1
    quorum: int = 1
    token: str | None = None  # None = ETH
    min_stake: int = 0
    reveal_window: int = 0
    kind: bytes = ZERO_BYTES32
    allowlist_root: bytes = ZERO_BYTES32

    @property
    def escrow(self) -> int:
        return self.max_price * self.replicas

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            int(self.mode),
            self.replicas,
            self.quorum,
            to_checksum_address(self.token) if self.token else ZERO_ADDRESS,
            self.max_price,
            self.min_stake,
            self.match_window,
            self.run_window,
            self.reveal_window,
            self.kind,
            self.allowlist_root,
        )


@dataclass(frozen=True)
class JobTerms:
    """A job's stored terms (``getTerms``), with its replica counters."""

    mode: MatchMode
    replicas: int
    quorum: int
    assigned: int
    committed: int
    revealed: int
    reveal_window: int
    token: str | None  # None = ETH
    max_price: int
    min_stake: int
    kind: bytes
    allowlist_root: bytes


@dataclass(frozen=True)
class Assignment:
    """One held bid or replica of a job (``getAssignments``)."""

    worker: str
    price: int
    status: AssignmentStatus
    commitment: bytes
    digest: bytes


@dataclass(frozen=True)
class WorkerRecord:
    """A worker's stake in the registry (``getWorker``)."""

    address: str
    registered: bool
    stake: int  # bonded, including locked
    locked: int
    unbond_end: int
    unbonding: int

    @property
    def available(self) -> int:
        return self.stake - self.locked


@dataclass(frozen=True)
class Job:
    """A job as the contract's ``getJob`` reports it."""

    job_id: int
    requester: str
    state: JobState
    deadline: int
    run_window: int
    worker: str | None
    price: int
    # What the market holds for the job now: the max price while open, the worker's price once
    # one worker is assigned (the rest is refunded then), 0 once final. The max price a job was
    # posted with is in its JobPosted event.
    escrow: int


@dataclass(frozen=True)
class MarketEvent:
    """A decoded JobMarket log."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int
    # Lets an index notice a reorg: the same block number under another hash.
    block_hash: str = ""

    @property
    def job_id(self) -> int | None:
        value = self.args.get("jobId")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    events: list[MarketEvent] = field(default_factory=list)
    gas_price: int = 0  # effective wei per gas, so gas spent = gas_used * gas_price

    def event(self, name: str) -> MarketEvent:
        for ev in self.events:
            if ev.name == name:
                return ev
        raise ChainError(f"transaction {self.tx_hash} emitted no {name} event")


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, OSError))


def _error_table() -> dict[bytes, dict[str, Any]]:
    """Custom errors of every shipped contract by selector: a market call can revert inside
    the registry or the token, and the caller should still read the error by name."""
    table: dict[bytes, dict[str, Any]] = {}
    for name in _ERROR_SOURCES:
        try:
            abi = load_artifact(name).abi
        except ConfigError:
            continue  # an artifact this checkout does not ship
        for item in abi:
            if item["type"] == "error":
                signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                table.setdefault(function_signature_to_4byte_selector(signature), item)
    return table


_ERROR_SOURCES = ("JobMarket", "WorkerRegistry", "TestToken")


class ContractClient:
    """Calls the contract at ``address`` over ``rpc_url``, signing with ``private_key``.

    The plumbing every hepx contract client shares; ``ARTIFACT`` names the contract's ABI.
    """

    ARTIFACT = "JobMarket"

    def __init__(
        self,
        rpc_url: str,
        address: str,
        private_key: str | None = None,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.artifact = load_artifact(self.ARTIFACT)
        self.contract = self.w3.eth.contract(
            address=to_checksum_address(address), abi=self.artifact.abi
        )
        self.account: LocalAccount | None = Account.from_key(private_key) if private_key else None
        self.retries = retries
        self.backoff = backoff
        self.receipt_timeout = receipt_timeout
        self._chain_id: int | None = None
        # Called with (what, result) after each mined tx: metrics count gas and calls here.
        self.tx_observers: list[Callable[[str, TxResult], None]] = []
        self._errors = _error_table()
        self._events_by_topic = {
            bytes.fromhex(
                self.contract.events[item["name"]]().topic.removeprefix("0x")
            ): self.contract.events[item["name"]]()
            for item in self.artifact.abi
            if item["type"] == "event"
        }

    # ------------------------------------------------------------ plumbing

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @property
    def sender(self) -> str:
        if self.account is None:
            raise ConfigError("no private key configured: set HEPX_PRIVATE_KEY or pass --key")
        return str(self.account.address)

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call``, retrying connection failures with exponential backoff."""
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                return call()
            except Exception as exc:
                if not _is_connection_error(exc):
                    raise
                if attempt == self.retries:
                    raise ChainUnavailable(
                        f"{what}: RPC {self.rpc_url} unreachable after {attempt} tries: {exc}"
                    ) from exc
                log.warning(
                    "rpc unreachable, retrying what=%s attempt=%d error=%s", what, attempt, exc
                )
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._retry("eth_chainId", lambda: int(self.w3.eth.chain_id))
        return self._chain_id

    def block_number(self) -> int:
        return self._retry("eth_blockNumber", lambda: int(self.w3.eth.block_number))

    def timestamp(self, block: int | str = "latest") -> int:
        return self._retry(
            "eth_getBlockByNumber",
            lambda: int(self.w3.eth.get_block(block)["timestamp"]),  # type: ignore[arg-type]
        )

    def balance(self, address: str) -> int:
        return self._retry(
            "eth_getBalance", lambda: int(self.w3.eth.get_balance(to_checksum_address(address)))
        )

    def decode_revert(self, data: str | bytes | None) -> tuple[str | None, tuple[Any, ...]]:
        """Name and arguments of a custom error from revert data (None if not ours)."""
        if data is None:
            return None, ()
        raw = (
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
            if isinstance(data, str)
            else data
        )
        item = self._errors.get(raw[:4])
        if item is None:
            return None, ()
        args = abi_decode([i["type"] for i in item["inputs"]], raw[4:])
        return str(item["name"]), tuple(args)

    def _reverted(self, what: str, exc: Exception) -> TxReverted:
        data = getattr(exc, "data", None)
        if isinstance(exc, ContractCustomError) and isinstance(data, str):
            name, args = self.decode_revert(data)
            if name:
                shown = ", ".join(str(a) for a in args)
                return TxReverted(f"{what} refused by the contract: {name}({shown})", name, args)
        return TxReverted(f"{what} reverted: {exc}")

    def _transact(self, what: str, fn: Any, value: int = 0, gas: int | None = None) -> TxResult:
        """Simulate, sign, send and wait for ``fn``; raise TxReverted on any refusal.

        With ``gas`` given the simulation is skipped: for calls that only become valid once a
        deadline has passed, on nodes (anvil automine) that simulate at the last block's time.
        """
        account = self.account
        if account is None:
            raise ConfigError(f"{what}: no private key configured (HEPX_PRIVATE_KEY or --key)")

        def build() -> dict[str, Any]:
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
            params = {
                "from": account.address,
                "nonce": nonce,
                "value": value,
                "chainId": self.chain_id(),
            }
            if gas is not None:
                params["gas"] = gas
            tx: dict[str, Any] = fn.build_transaction(params)
            if gas is None:
                # Estimates drift when other txs land between simulation and inclusion.
                tx["gas"] = int(tx["gas"] * 1.2) + 10_000
            return tx

        try:
            tx = self._retry(what, build)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise self._reverted(what, exc) from exc
        except Web3RPCError as exc:
            raise ChainError(f"{what}: the node refused the transaction: {exc}") from exc
        signed = account.sign_transaction(tx)
        tx_hash = signed.hash

        def send() -> None:
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                # A retry after a lost answer: the first send went through.
                if "already known" not in str(exc) and "nonce too low" not in str(exc):
                    raise

        try:
            self._retry(what, send)
        except Web3RPCError as exc:
            raise ChainError(f"{what}: the node refused the transaction: {exc}") from exc
        try:
            receipt: TxReceipt = self._retry(
                what,
                lambda: self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self.receipt_timeout, poll_latency=0.05
                ),
            )
        except TimeExhausted as exc:
            raise ChainError(
                f"{what}: tx {tx_hash.hex()} not mined in {self.receipt_timeout:.0f} s"
            ) from exc
        if receipt["status"] != 1:
            raise TxReverted(f"{what}: tx 0x{tx_hash.hex()} reverted on chain")
        result = TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            events=[ev for raw in receipt["logs"] if (ev := self._decode_log(raw)) is not None],
            gas_price=int(receipt.get("effectiveGasPrice", 0)),
        )
        for observe in self.tx_observers:
            try:
                observe(what, result)
            except Exception:  # an observer must never fail a tx that went through
                log.exception("tx observer failed what=%s tx=%s", what, result.tx_hash)
        return result

    def _decode_log(self, raw: Any) -> MarketEvent | None:
        if to_checksum_address(raw["address"]) != self.contract.address or not raw["topics"]:
            return None
        event = self._events_by_topic.get(bytes(raw["topics"][0]))
        if event is None:
            return None
        decoded = event.process_log(raw)
        return MarketEvent(
            name=str(decoded["event"]),
            args=dict(decoded["args"]),
            block_number=int(decoded["blockNumber"]),
            tx_hash="0x" + bytes(decoded["transactionHash"]).hex(),
            log_index=int(decoded["logIndex"]),
            block_hash="0x" + bytes(decoded["blockHash"]).hex(),
        )


class MarketClient(ContractClient):
    """Calls the JobMarket at ``address`` over ``rpc_url``, signing with ``private_key``."""

    ARTIFACT = "JobMarket"

    @classmethod
    def from_deployment(
        cls, deployment: Deployment, rpc_url: str | None = None, private_key: str | None = None
    ) -> MarketClient:
        return cls(rpc_url or deployment.rpc_url, deployment.job_market, private_key)

    # ------------------------------------------------------------ reads

    def job(self, job_id: int) -> Job:
        raw = self._retry("getJob", lambda: self.contract.functions.getJob(job_id).call())
        requester, state, deadline, run_window, worker, price, escrow = raw
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
        return int(self._retry("jobCount", lambda: self.contract.functions.jobCount().call()))

    def withdrawable(self, address: str) -> int:
        return int(
            self._retry(
                "withdrawable",
                lambda: self.contract.functions.withdrawable(to_checksum_address(address)).call(),
            )
        )

    def challenge_window(self) -> int:
        return int(
            self._retry("challengeWindow", lambda: self.contract.functions.challengeWindow().call())
        )

    def events(
        self, from_block: int, to_block: int, job_id: int | None = None, chunk: int = 5000
    ) -> list[MarketEvent]:
        """Decoded market events in ``[from_block, to_block]``, oldest first."""
        return list(self.iter_events(from_block, to_block, job_id, chunk))

    def iter_events(
        self, from_block: int, to_block: int, job_id: int | None = None, chunk: int = 5000
    ) -> Iterator[MarketEvent]:
        topics: list[Any] = [None]
        if job_id is not None:
            topics.append("0x" + job_id.to_bytes(32, "big").hex())
        start = from_block
        while start <= to_block:
            end = min(start + chunk - 1, to_block)
            params = {"address": self.contract.address, "fromBlock": start, "toBlock": end}
            if job_id is not None:
                params["topics"] = topics
            logs = self._retry("eth_getLogs", lambda p=params: self.w3.eth.get_logs(p))  # type: ignore[misc]
            for raw in logs:
                if (ev := self._decode_log(raw)) is not None:
                    yield ev
            start = end + 1

    # ------------------------------------------------------------ writes

    def post_job(
        self, spec_cid: str, max_price: int, claim_window: int, run_window: int
    ) -> tuple[int, TxResult]:
        fn = self.contract.functions.postJob(spec_cid, claim_window, run_window)
        result = self._transact("postJob", fn, value=max_price)
        return int(result.event("JobPosted").args["jobId"]), result

    def claim(self, job_id: int, price: int) -> TxResult:
        return self._transact(f"claim job {job_id}", self.contract.functions.claim(job_id, price))

    def submit_result(self, job_id: int, result_cid: str) -> TxResult:
        return self._transact(
            f"submitResult job {job_id}", self.contract.functions.submitResult(job_id, result_cid)
        )

    def accept(self, job_id: int) -> TxResult:
        return self._transact(f"accept job {job_id}", self.contract.functions.accept(job_id))

    def finalize(self, job_id: int, gas: int | None = None) -> TxResult:
        return self._transact(
            f"finalize job {job_id}", self.contract.functions.finalize(job_id), gas=gas
        )

    def cancel(self, job_id: int) -> TxResult:
        return self._transact(f"cancel job {job_id}", self.contract.functions.cancel(job_id))

    def expire(self, job_id: int, gas: int | None = None) -> TxResult:
        return self._transact(
            f"expire job {job_id}", self.contract.functions.expire(job_id), gas=gas
        )

    def withdraw(self) -> TxResult:
        return self._transact("withdraw", self.contract.functions.withdraw())

    # ------------------------------------------------------------ terms, auctions, replicas

    def post_job_with_terms(self, spec_cid: str, terms: Terms) -> tuple[int, TxResult]:
        """Post with terms; ETH jobs send the escrow, ERC-20 jobs need an approval first."""
        fn = self.contract.functions.postJobWithTerms(spec_cid, terms.as_tuple())
        value = 0 if terms.token else terms.escrow
        result = self._transact("postJobWithTerms", fn, value=value)
        return int(result.event("JobPosted").args["jobId"]), result

    def claim_with_proof(self, job_id: int, price: int, proof: list[bytes]) -> TxResult:
        return self._transact(
            f"claim job {job_id}", self.contract.functions.claimWithProof(job_id, price, proof)
        )

    def bid(self, job_id: int, price: int, proof: list[bytes] | None = None) -> TxResult:
        return self._transact(
            f"bid on job {job_id}", self.contract.functions.bid(job_id, price, proof or [])
        )

    def award(self, job_id: int, gas: int | None = None) -> TxResult:
        return self._transact(f"award job {job_id}", self.contract.functions.award(job_id), gas=gas)

    def commit_result(self, job_id: int, commitment: bytes) -> TxResult:
        return self._transact(
            f"commitResult job {job_id}", self.contract.functions.commitResult(job_id, commitment)
        )

    def reveal_result(
        self, job_id: int, digest: bytes, salt: bytes, result_cid: str, gas: int | None = None
    ) -> TxResult:
        return self._transact(
            f"revealResult job {job_id}",
            self.contract.functions.revealResult(job_id, digest, salt, result_cid),
            gas=gas,
        )

    def withdraw_token(self, token: str) -> TxResult:
        return self._transact(
            f"withdrawToken {token}",
            self.contract.functions.withdrawToken(to_checksum_address(token)),
        )

    def terms(self, job_id: int) -> JobTerms:
        raw = self._retry("getTerms", lambda: self.contract.functions.getTerms(job_id).call())
        (mode, replicas, quorum, assigned, committed, revealed, reveal_window, token) = raw[:8]
        max_price, min_stake, kind, root = raw[8:]
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
            kind=bytes(kind),
            allowlist_root=bytes(root),
        )

    def assignments(self, job_id: int) -> list[Assignment]:
        raw = self._retry(
            "getAssignments", lambda: self.contract.functions.getAssignments(job_id).call()
        )
        return [
            Assignment(str(w), int(p), AssignmentStatus(st), bytes(c), bytes(d))
            for (w, p, st, c, d) in raw
        ]

    def assignment_of(self, job_id: int, worker: str) -> Assignment | None:
        """``worker``'s held bid or replica of the job, if it has one."""
        for item in self.assignments(job_id):
            if item.worker.lower() == worker.lower():
                return item
        return None

    def token_withdrawable(self, token: str, account: str) -> int:
        return int(
            self._retry(
                "tokenWithdrawable",
                lambda: self.contract.functions.tokenWithdrawable(
                    to_checksum_address(token), to_checksum_address(account)
                ).call(),
            )
        )

    # ------------------------------------------------------------ worker registry
    # The market is the registry (it inherits WorkerRegistry): same address, same client.

    def register(self, kinds: list[str], stake: int = 0) -> TxResult:
        ids = [kind_id(k) for k in kinds]
        return self._transact("register", self.contract.functions.register(ids), value=stake)

    def add_stake(self, amount: int) -> TxResult:
        return self._transact("addStake", self.contract.functions.addStake(), value=amount)

    def set_kinds(self, kinds: list[str], supported: bool = True) -> TxResult:
        ids = [kind_id(k) for k in kinds]
        return self._transact("setKinds", self.contract.functions.setKinds(ids, supported))

    def unbond(self, amount: int) -> TxResult:
        return self._transact(f"unbond {amount}", self.contract.functions.unbond(amount))

    def withdraw_stake(self, gas: int | None = None) -> TxResult:
        return self._transact("withdrawStake", self.contract.functions.withdrawStake(), gas=gas)

    def worker(self, address: str) -> WorkerRecord:
        checksum = to_checksum_address(address)
        raw = self._retry("getWorker", lambda: self.contract.functions.getWorker(checksum).call())
        registered, stake, locked, unbond_end, unbonding = raw
        return WorkerRecord(
            address=checksum,
            registered=bool(registered),
            stake=int(stake),
            locked=int(locked),
            unbond_end=int(unbond_end),
            unbonding=int(unbonding),
        )

    def has_kind(self, address: str, kind: str) -> bool:
        return bool(
            self._retry(
                "hasKind",
                lambda: self.contract.functions.hasKind(
                    to_checksum_address(address), kind_id(kind)
                ).call(),
            )
        )

    def unbond_delay(self) -> int:
        return int(self._retry("unbondDelay", lambda: self.contract.functions.unbondDelay().call()))


class TokenClient(ContractClient):
    """An ERC-20 token (the ABI of the devnet's TestToken, which is plain ERC-20 plus mint)."""

    ARTIFACT = "TestToken"

    def balance_of(self, account: str) -> int:
        return int(
            self._retry(
                "balanceOf",
                lambda: self.contract.functions.balanceOf(to_checksum_address(account)).call(),
            )
        )

    def allowance(self, owner: str, spender: str) -> int:
        return int(
            self._retry(
                "allowance",
                lambda: self.contract.functions.allowance(
                    to_checksum_address(owner), to_checksum_address(spender)
                ).call(),
            )
        )

    def approve(self, spender: str, amount: int) -> TxResult:
        return self._transact(
            f"approve {amount}",
            self.contract.functions.approve(to_checksum_address(spender), amount),
        )

    def ensure_allowance(self, spender: str, amount: int) -> TxResult | None:
        """Approve ``amount`` for ``spender`` unless the allowance already covers it."""
        if self.allowance(self.sender, spender) >= amount:
            return None
        return self.approve(spender, amount)

    def mint(self, to: str, amount: int) -> TxResult:
        """Devnet only: the test token lets anyone mint."""
        return self._transact(
            f"mint {amount}", self.contract.functions.mint(to_checksum_address(to), amount)
        )


DEVNET_CHAIN_ID = 31337  # anvil's


def deploy_market(
    rpc_url: str,
    private_key: str,
    challenge_window: int = 60,
    test_token: bool | None = None,
) -> Deployment:
    """Deploy JobMarket (also the worker registry) and describe it as a Deployment.

    ``test_token`` also deploys the open-mint TestToken for ERC-20 jobs; by default only on a
    devnet (chain id 31337), never elsewhere.
    """
    artifact = load_artifact("JobMarket")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    account = Account.from_key(private_key)
    try:
        chain_id = int(w3.eth.chain_id)
        receipt = _deploy(w3, account, chain_id, artifact.abi, artifact.bytecode, challenge_window)
        token: str | None = None
        if test_token or (test_token is None and chain_id == DEVNET_CHAIN_ID):
            token_artifact = load_artifact("TestToken")
            token_receipt = _deploy(
                w3, account, chain_id, token_artifact.abi, token_artifact.bytecode
            )
            token = str(token_receipt["contractAddress"])
    except HepxError:
        raise
    except Exception as exc:
        if _is_connection_error(exc):
            raise ChainUnavailable(f"cannot deploy: RPC {rpc_url} unreachable: {exc}") from exc
        raise ChainError(f"deploy failed on {rpc_url}: {exc}") from exc
    market = str(receipt["contractAddress"])
    return Deployment(
        chain_id=chain_id,
        rpc_url=rpc_url,
        job_market=market,
        deploy_block=int(receipt["blockNumber"]),
        deploy_tx="0x" + bytes(receipt["transactionHash"]).hex(),
        deployer=str(account.address),
        challenge_window=challenge_window,
        source_hash=artifact.source_hash,
        registry=market,  # the market inherits the registry
        test_token=token,
    )


def _deploy(
    w3: Web3, account: LocalAccount, chain_id: int, abi: Any, bytecode: str, *args: Any
) -> TxReceipt:
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    tx = factory.constructor(*args).build_transaction(
        {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": chain_id,
        }
    )
    signed = account.sign_transaction(tx)
    w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(signed.hash, timeout=120, poll_latency=0.05)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise ChainError(f"deploy tx 0x{bytes(signed.hash).hex()} reverted")
    return receipt
