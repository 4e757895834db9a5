"""Shared helpers of the JobMarket tests (the fixtures are in conftest.py).

Transactions are sent with a fixed gas limit, so a refused call is mined as a failed transaction
at a block time the test chose; its revert data comes from anvil's call tracer and is decoded
against the ABI's custom errors. Plain web3.py on purpose: these tests pin the contract, not
the chain client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_abi_to_log_topic, function_signature_to_4byte_selector
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, TxReceipt

from hepx.artifacts import Artifact, load_artifact

CHALLENGE_WINDOW = 3600
MAX_WINDOW = 365 * 24 * 3600
GAS_LIMIT = 1_000_000
CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
RESULT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
# The canonical digest submitted beside RESULT_CID (any 32 bytes do for the market).
RESULT_DIGEST = Web3.keccak(text="hepx test result")
ETHER = 10**18


class State(IntEnum):
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
    DISPUTED = 10
    OVERTURNED = 11


class Reason(IntEnum):
    ESCROW = 0
    WORKER_PAYMENT = 1
    REFUND = 2
    WITHDRAWAL = 3
    SLASH = 4
    STAKE_DEPOSIT = 5
    STAKE_WITHDRAWAL = 6
    VERIFIER_REWARD = 7
    DISPUTE_BOND = 8


class Direction(IntEnum):
    IN = 0
    CREDIT = 1
    OUT = 2


class Reverted(AssertionError):
    """A transaction the test expected to succeed failed (or the other way round)."""


@dataclass
class Market:
    """A deployed JobMarket plus the helpers the tests share."""

    w3: Web3
    contract: Contract | type[Contract]
    artifact: Artifact
    accounts: Sequence[str]
    _errors: dict[bytes, tuple[str, list[str]]] = field(default_factory=dict)
    _events: dict[bytes, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.artifact.abi:
            if entry["type"] == "error":
                types = [i["type"] for i in entry["inputs"]]
                selector = function_signature_to_4byte_selector(
                    f"{entry['name']}({','.join(types)})"
                )
                self._errors[selector] = (entry["name"], types)
            elif entry["type"] == "event":
                self._events[event_abi_to_log_topic(entry)] = entry["name"]

    @property
    def address(self) -> str:
        return self.contract.address

    # ------------------------------------------------------------ transactions

    def try_send(self, sender: str, fn: str, *args: Any, value: int = 0) -> TxReceipt:
        """Mine a call to ``fn`` from ``sender`` whatever its outcome; return the receipt."""
        tx = getattr(self.contract.functions, fn)(*args).build_transaction(
            {"from": sender, "value": value, "gas": GAS_LIMIT}
        )
        return self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_transaction(tx))

    def send(self, sender: str, fn: str, *args: Any, value: int = 0) -> TxReceipt:
        """Mine a call that must succeed."""
        receipt = self.try_send(sender, fn, *args, value=value)
        if receipt["status"] != 1:
            raise Reverted(f"{fn}{args} reverted with {self.revert_error(receipt)}")
        return receipt

    def reverts(
        self, sender: str, fn: str, *args: Any, value: int = 0
    ) -> tuple[str, tuple[Any, ...]]:
        """Mine a call that must fail; return its decoded custom error (name, args)."""
        receipt = self.try_send(sender, fn, *args, value=value)
        if receipt["status"] != 0:
            raise Reverted(f"{fn}{args} was expected to revert but succeeded")
        return self.revert_error(receipt)

    def assert_reverts(
        self,
        error: str,
        error_args: tuple[Any, ...],
        sender: str,
        fn: str,
        *args: Any,
        value: int = 0,
    ) -> None:
        assert self.reverts(sender, fn, *args, value=value) == (error, error_args)

    def revert_error(self, receipt: TxReceipt) -> tuple[str, tuple[Any, ...]]:
        trace = self.rpc(
            "debug_traceTransaction",
            "0x" + receipt["transactionHash"].hex(),
            {"tracer": "callTracer"},
        )
        data = bytes.fromhex(trace.get("output", "0x")[2:])
        return self.decode_error(data)

    def decode_error(self, data: bytes) -> tuple[str, tuple[Any, ...]]:
        if len(data) < 4 or data[:4] not in self._errors:
            raise AssertionError(f"revert data is not a JobMarket custom error: 0x{data.hex()}")
        name, types = self._errors[data[:4]]
        values = abi_decode(types, data[4:])
        return name, tuple(
            Web3.to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, values, strict=True)
        )

    # ------------------------------------------------------------ reading

    def events(self, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
        """The market's logs in ``receipt``, decoded, in emission order."""
        decoded = []
        for log in receipt["logs"]:
            assert log["address"] == self.address
            name = self._events[bytes(log["topics"][0])]
            event = getattr(self.contract.events, name)().process_log(log)
            decoded.append((name, dict(event["args"])))
        return decoded

    def job(self, job_id: int) -> dict[str, Any]:
        (requester, state, deadline, run_window, worker, price, escrow) = (
            self.contract.functions.getJob(job_id).call()
        )
        return {
            "requester": requester,
            "state": State(state),
            "deadline": deadline,
            "runWindow": run_window,
            "worker": worker,
            "price": price,
            "escrow": escrow,
        }

    def withdrawable(self, account: str) -> int:
        return int(self.contract.functions.withdrawable(account).call())

    def balance(self, account: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(account)))

    @staticmethod
    def gas_cost(receipt: TxReceipt) -> int:
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])

    def rpc(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call (anvil_*, evm_*, debug_*); returns its result."""
        reply = self.w3.provider.make_request(RPCEndpoint(method), list(params))
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply["result"]

    # ------------------------------------------------------------ time

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def at(self, timestamp: int) -> None:
        """The next mined block (the next transaction) gets exactly ``timestamp``."""
        self.rpc("evm_setNextBlockTimestamp", timestamp)

    def advance(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", seconds)
        self.rpc("evm_mine")

    # ------------------------------------------------------------ lifecycle shortcuts

    def post(
        self,
        requester: str,
        escrow: int = ETHER,
        claim_window: int = 600,
        run_window: int = 1800,
        at: int | None = None,
    ) -> int:
        if at is not None:
            self.at(at)
        receipt = self.send(requester, "postJob", CID, claim_window, run_window, value=escrow)
        [(_, posted), _] = self.events(receipt)
        return int(posted["jobId"])

    def claimed(
        self, requester: str, worker: str, escrow: int = ETHER, price: int = ETHER // 2, **post: Any
    ) -> int:
        job_id = self.post(requester, escrow, **post)
        self.send(worker, "claim", job_id, price)
        return job_id

    def submitted(self, requester: str, worker: str, **kwargs: Any) -> int:
        job_id = self.claimed(requester, worker, **kwargs)
        self.send(worker, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
        return job_id


# The stake-free limit of the market most tests run on: none, so that only the tests of the
# limit itself (which deploy their own market) see stakes they did not ask for.
NO_STAKE_LIMIT = 2**256 - 1


def deploy(
    w3: Web3,
    artifact: Artifact,
    deployer: str,
    challenge_window: int,
    stake_free_limit: int = NO_STAKE_LIMIT,
) -> TxReceipt:
    """Deploys MarketCalls, then the market ``artifact`` names with its address."""

    def mined(of: Artifact, *args: Any) -> TxReceipt:
        factory = w3.eth.contract(abi=of.abi, bytecode=of.bytecode)
        tx = factory.constructor(*args).build_transaction({"from": deployer, "gas": 12 * GAS_LIMIT})
        return w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))

    calls = mined(load_artifact("MarketCalls"), challenge_window, stake_free_limit)
    return mined(artifact, challenge_window, stake_free_limit, calls["contractAddress"])
