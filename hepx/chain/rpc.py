"""The one way hepx talks to a node: every call goes through :meth:`Rpc.call`, which retries
connection failures with backoff and converts web3's and requests' errors into hepx's
(``ChainUnavailable``, ``TxReverted``, ``NoContract``, ``NotMined``, ``ChainError``) exactly once.

Requests go out on kept-alive connections (hepx.chain.transport), which do not retry on their
own, so a dead node costs ``retries`` attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from hepx.chain.reverts import decode_revert
from hepx.chain.transport import KeptAliveProvider
from hepx.errors import (
    ChainError,
    ChainUnavailable,
    NoContract,
    NotMined,
    TxNotFound,
    TxReverted,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, OSError))


def reverted(what: str, exc: Exception) -> TxReverted:
    """A contract's refusal as TxReverted, named by its custom error where it has one."""
    data = getattr(exc, "data", None)
    if isinstance(exc, ContractCustomError) and isinstance(data, str):
        name, args = decode_revert(data)
        if name:
            shown = ", ".join(str(a) for a in args)
            return TxReverted(f"{what} refused by the contract: {name}({shown})", name, args)
    return TxReverted(f"{what} reverted: {exc}")


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee: int | None  # None before EIP-1559

    @classmethod
    def of(cls, raw: dict[str, Any]) -> BlockHeader:
        number, timestamp = int(raw["number"], 16), int(raw["timestamp"], 16)
        base_fee = int(raw["baseFeePerGas"], 16) if raw.get("baseFeePerGas") else None
        return cls(number, raw["hash"], raw["parentHash"], timestamp, base_fee)


@dataclass(frozen=True)
class Heads:
    """What a follower's round reads of the chain in one request: the newest block, the time
    the next one will carry, and the blocks it asked after."""

    latest: BlockHeader
    pending_time: int | None  # None where the node offers no pending block
    known: dict[int, BlockHeader]  # the asked-for blocks the node has

    @property
    def now(self) -> float:
        """The time the next block will carry, which is what the contract's deadlines see.

        The pending block tells it where the node offers one (anvil does, clock warps and
        reorgs included: its clock may run ahead of the wall clock or behind it, and a
        transaction sent on the wall clock's word then reverts and costs gas). Where it
        does not, the latest block's time, with the wall clock as the floor (an idle chain's
        latest block is old).
        """
        if self.pending_time is not None:
            return float(self.pending_time)
        return max(time.time(), float(self.latest.timestamp))


def error_message(reply: dict[str, Any]) -> str:
    """The message of a JSON-RPC reply's error."""
    error = reply["error"]
    return str(error.get("message", error) if isinstance(error, dict) else error)


def _time_of(reply: dict[str, Any]) -> int | None:
    """A block reply's timestamp; None for an error or no block (a node without "pending")."""
    block = reply.get("result")
    return int(block["timestamp"], 16) if block else None


def _block_tag(number: int | str) -> str:
    return hex(number) if isinstance(number, int) else number


class Rpc:
    """A node at ``url``: retried, converted calls and the raw reads hepx needs."""

    def __init__(
        self, url: str, *, retries: int = 5, backoff: float = 0.5, timeout: float = 30
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._provider = KeptAliveProvider(url, timeout)
        self.w3 = Web3(self._provider)
        self._chain_id: int | None = None

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (which uses ``self.w3``), retrying connection failures with exponential
        backoff; third-party errors leave as hepx errors."""
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                raise reverted(what, exc) from exc
            except BadFunctionCallOutput as exc:
                raise NoContract(
                    f"{what}: no contract answers at the address on {self.url} (was the chain "
                    f"restarted? redeploy): {exc}"
                ) from exc
            except TransactionNotFound as exc:  # a Web3RPCError, but an answer, not a failure
                raise TxNotFound(f"{what}: {exc}") from exc
            except Web3RPCError as exc:
                raise ChainError(f"{what}: the node refused: {exc}") from exc
            except TimeExhausted as exc:
                raise NotMined(f"{what}: {exc}") from exc
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                if attempt == self.retries:
                    raise ChainUnavailable(
                        f"{what}: RPC {self.url} unreachable after {attempt} tries: {exc}"
                    ) from exc
                log.warning(
                    "rpc unreachable, retrying what=%s attempt=%d error=%s", what, attempt, exc
                )
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def reply(self, method: str, params: list[Any], what: str | None = None) -> dict[str, Any]:
        """A raw JSON-RPC call's whole reply, its ``error`` left to the caller (retried and
        converted as any call; ``what`` names it in errors, the method by default)."""
        (answer,) = self.call(what or method, lambda: self._provider.plain([(method, params)]))
        return dict(answer)

    def request(self, method: str, params: list[Any]) -> Any:
        """A raw JSON-RPC call (methods web3 does not wrap, e.g. ``ots_*``); its result."""
        reply = self.reply(method, params)
        if "error" in reply:
            raise ChainError(f"{method} failed: {error_message(reply)}")
        return reply.get("result")

    # ------------------------------------------------------------ reads

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.call("eth_chainId", lambda: int(self.w3.eth.chain_id))
        return self._chain_id

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", []), 16)

    def block(self, number: int | str = "latest", full_transactions: bool = False) -> Any:
        return self.call(
            "eth_getBlockByNumber",
            lambda: self.w3.eth.get_block(number, full_transactions=full_transactions),  # type: ignore[arg-type]
        )

    def header(self, number: int | str = "latest") -> BlockHeader:
        """What a block says of itself, read raw: web3's formatting of a whole block costs
        more than the node's answer, and a round of an agent reads several."""
        return BlockHeader.of(self._raw_block(number))

    def _raw_block(self, number: int | str) -> dict[str, Any]:
        raw = self._raw_block_or_none(number)
        if raw is None:
            raise ChainError(f"eth_getBlockByNumber: the node has no block {number}")
        return raw

    def _raw_block_or_none(self, number: int | str) -> dict[str, Any] | None:
        raw = self.request("eth_getBlockByNumber", [_block_tag(number), False])
        return dict(raw) if raw else None

    def heads(self, numbers: Iterable[int] = ()) -> Heads:
        """The latest block, the pending block's time and several blocks' headers, in one
        batched request (one by one where the node refuses batches); a block the node does
        not have is left out."""
        wanted = sorted(set(numbers))
        tags = ["latest", "pending", *(hex(n) for n in wanted)]
        batch = [("eth_getBlockByNumber", [tag, False]) for tag in tags]
        replies = self.call("eth_getBlockByNumber", lambda: self._provider.plain(batch))
        if len(replies) != len(batch):
            return self._heads_one_by_one(wanted)
        latest, pending, *found = replies
        if not latest.get("result") or any("result" not in r for r in found):
            return self._heads_one_by_one(wanted)
        known = {h.number: h for h in (BlockHeader.of(r["result"]) for r in found if r["result"])}
        return Heads(BlockHeader.of(latest["result"]), _time_of(pending), known)

    def _heads_one_by_one(self, wanted: list[int]) -> Heads:
        found = {n: self._raw_block_or_none(n) for n in wanted}
        latest = self.header("latest")
        pending = self.reply("eth_getBlockByNumber", ["pending", False])
        known = {n: BlockHeader.of(raw) for n, raw in found.items() if raw}
        return Heads(latest, _time_of(pending), known)

    def block_hash(self, number: int) -> str:
        return self.header(number).hash

    def timestamp(self, block: int | str = "latest") -> int:
        # Not through header(): a pending block may have no hash or number yet.
        return int(self._raw_block(block)["timestamp"], 16)

    def balance(self, address: str, block: str | int = "latest") -> int:
        checksum = to_checksum_address(address)
        return self.call(
            "eth_getBalance",
            lambda: int(self.w3.eth.get_balance(checksum, block)),  # type: ignore[arg-type]
        )

    def nonce(self, address: str, block: str = "latest") -> int:
        # Raw: asked before every transaction, and web3's request path cost more than it.
        return int(self.request("eth_getTransactionCount", [address, block]), 16)

    def code(self, address: str) -> bytes:
        checksum = to_checksum_address(address)
        return bytes(self.call("eth_getCode", lambda: self.w3.eth.get_code(checksum)))

    def transaction(self, tx_hash: str) -> Any | None:
        """A transaction by hash; None if the node does not know it."""
        try:
            return self.call(
                "eth_getTransactionByHash",
                lambda: self.w3.eth.get_transaction(tx_hash),  # type: ignore[arg-type]
            )
        except TxNotFound:
            return None

    def receipt(self, tx_hash: str | bytes) -> Any | None:
        """A mined transaction's receipt; None if it is not mined (or unknown)."""
        try:
            return self.call(
                "eth_getTransactionReceipt",
                lambda: self.w3.eth.get_transaction_receipt(tx_hash),  # type: ignore[arg-type]
            )
        except TxNotFound:
            return None

    def logs(self, params: dict[str, Any]) -> list[Any]:
        """Raw ``eth_getLogs`` (hex strings, as the node sends them: the fast decoder's input)."""
        wire = {
            **params,
            "fromBlock": hex(params["fromBlock"]),
            "toBlock": hex(params["toBlock"]),
        }
        return list(self.request("eth_getLogs", [wire]))
