"""Blocks, transactions and addresses as the explorer shows them, read over JSON-RPC.

Calls to and logs of the JobMarket are decoded with its ABI; everything else is shown raw.
Where the node answers Otterscan's ``ots_*`` methods (anvil does) they add internal calls,
revert data, block fees and an address's transaction history; without them the explorer says
so and falls back to ``eth_*`` and the event index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from hepx.chain import MarketClient, decode_revert, json_safe
from hepx.errors import ChainError

_OTS_HISTORY_PAGE = 25


@dataclass(frozen=True)
class DecodedCall:
    function: str
    signature: str
    args: dict[str, Any]


@dataclass(frozen=True)
class LogView:
    log_index: int
    address: str
    is_market: bool
    topics: list[str]
    data: str
    event: str | None = None
    signature: str | None = None
    args: dict[str, Any] | None = None


@dataclass
class TxView:
    hash: str
    block: int | None
    sender: str
    to: str | None
    value: int
    nonce: int
    input: str
    status: int | None
    gas_used: int | None
    gas_price: int | None
    to_market: bool
    call: DecodedCall | None
    logs: list[LogView]
    ots: bool
    internal: list[dict[str, Any]] | None = None
    revert: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = json_safe({k: v for k, v in self.__dict__.items() if k not in ("call", "logs")})
        data["from"] = data.pop("sender")
        data["call"] = None if self.call is None else json_safe(self.call.__dict__)
        data["logs"] = [json_safe(log.__dict__) for log in self.logs]
        return dict(data)


@dataclass
class BlockView:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    gas_used: int
    tx_count: int
    txs: list[dict[str, Any]]
    ots: bool
    total_fees: int | None = None


@dataclass
class AddressView:
    address: str
    balance: int
    nonce: int
    is_contract: bool
    is_market: bool
    withdrawable: int
    ots: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


class ChainView:
    """Reads for the explorer's block, transaction and address pages."""

    def __init__(self, client: MarketClient) -> None:
        self.client = client
        self.rpc = client.rpc
        self._ots: bool | None = None
        self._lock = threading.Lock()
        self._gas: dict[str, int] = {}
        abi = client.artifact.abi
        self._signatures = {
            item["name"]: f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            for item in abi
            if item["type"] in ("function", "event")
        }

    def has_ots(self) -> bool:
        """Whether the node answers Otterscan's ``ots_*`` methods (asked once)."""
        if self._ots is None:
            try:
                self._ots = int(self.rpc.request("ots_getApiLevel", [])) >= 8
            except (ChainError, TypeError, ValueError):
                self._ots = False
        return self._ots

    # ------------------------------------------------------------ transactions

    def decode_call(self, data: str | bytes) -> DecodedCall | None:
        """The market function and arguments of calldata; None if it is not a market call."""
        try:
            fn, args = self.client.contract.decode_function_input(data)
        except ValueError:
            return None
        name = str(fn.fn_name)
        return DecodedCall(name, self._signatures.get(name, name), json_safe(dict(args)))

    def _log_view(self, raw: Any) -> LogView:
        address = Web3.to_checksum_address(raw["address"])
        view = LogView(
            log_index=int(raw["logIndex"]),
            address=address,
            is_market=address == self.client.address,
            topics=[_hex(t) for t in raw["topics"]],
            data=_hex(raw["data"]),
        )
        if view.is_market:
            event = self.client.decode_log(raw)
            if event is not None:
                return LogView(
                    **{
                        **view.__dict__,
                        "event": event.name,
                        "signature": self._signatures.get(event.name),
                        "args": json_safe(event.args),
                    }
                )
        return view

    def tx(self, tx_hash: str) -> TxView | None:
        """A transaction with its receipt, decoded where it touches the market."""
        tx = self.rpc.transaction(tx_hash)
        if tx is None:
            return None
        receipt = self.rpc.receipt(tx_hash)
        to = Web3.to_checksum_address(tx["to"]) if tx.get("to") else None
        to_market = to == self.client.address
        view = TxView(
            hash=_hex(tx["hash"]),
            block=tx.get("blockNumber"),
            sender=Web3.to_checksum_address(tx["from"]),
            to=to,
            value=int(tx["value"]),
            nonce=int(tx["nonce"]),
            input=_hex(tx["input"]),
            status=None if receipt is None else int(receipt["status"]),
            gas_used=None if receipt is None else int(receipt["gasUsed"]),
            gas_price=None if receipt is None else int(receipt["effectiveGasPrice"]),
            to_market=to_market,
            call=self.decode_call(tx["input"]) if to_market else None,
            logs=[] if receipt is None else [self._log_view(raw) for raw in receipt["logs"]],
            ots=self.has_ots(),
        )
        if view.ots and receipt is not None:
            view.internal = [
                {
                    "type": step.get("type"),
                    "depth": step.get("depth"),
                    "from": Web3.to_checksum_address(step["from"]),
                    "to": Web3.to_checksum_address(step["to"]) if step.get("to") else None,
                    "value": int(step.get("value") or "0x0", 16),
                }
                for step in self.rpc.request("ots_traceTransaction", [view.hash]) or []
            ]
            if view.status == 0:
                data = self.rpc.request("ots_getTransactionError", [view.hash])
                name, args = decode_revert(data)
                view.revert = f"{name}({', '.join(map(str, args))})" if name else data
        return view

    def gas_used(self, tx_hash: str) -> int | None:
        """Gas a mined transaction used (cached: receipts do not change once mined)."""
        with self._lock:
            if tx_hash in self._gas:
                return self._gas[tx_hash]
        receipt = self.rpc.receipt(tx_hash)
        if receipt is None:
            return None
        gas = int(receipt["gasUsed"])
        with self._lock:
            self._gas[tx_hash] = gas
        return gas

    # ------------------------------------------------------------ blocks

    def head(self) -> int:
        return self.client.block_number()

    def block(self, number: int) -> BlockView | None:
        if number < 0 or number > self.head():
            return None
        block = self.rpc.block(number, full_transactions=True)
        txs = []
        for tx in block["transactions"]:
            to = Web3.to_checksum_address(tx["to"]) if tx.get("to") else None
            call = self.decode_call(tx["input"]) if to == self.client.address else None
            txs.append(
                {
                    "hash": _hex(tx["hash"]),
                    "from": Web3.to_checksum_address(tx["from"]),
                    "to": to,
                    "value": int(tx["value"]),
                    "method": call.function if call else _hex(tx["input"])[:10],
                    "to_market": call is not None,
                }
            )
        view = BlockView(
            number=int(block["number"]),
            hash=_hex(block["hash"]),
            parent_hash=_hex(block["parentHash"]),
            timestamp=int(block["timestamp"]),
            gas_used=int(block["gasUsed"]),
            tx_count=len(txs),
            txs=txs,
            ots=self.has_ots(),
        )
        if view.ots:
            details = self.rpc.request("ots_getBlockDetails", [number])
            view.total_fees = int(details.get("totalFees") or "0x0", 16)
        return view

    def latest_blocks(self, count: int = 20) -> list[dict[str, Any]]:
        head = self.head()
        rows = []
        for number in range(head, max(-1, head - count), -1):
            block = self.rpc.block(number)
            rows.append(
                {
                    "number": int(block["number"]),
                    "hash": _hex(block["hash"]),
                    "timestamp": int(block["timestamp"]),
                    "txs": len(block["transactions"]),
                    "gas_used": int(block["gasUsed"]),
                }
            )
        return rows

    # ------------------------------------------------------------ addresses

    def address(self, address: str) -> AddressView:
        checksum = Web3.to_checksum_address(address)
        code = self.rpc.code(checksum)
        view = AddressView(
            address=checksum,
            balance=self.client.balance(checksum),
            nonce=self.rpc.nonce(checksum),
            is_contract=len(code) > 0,
            is_market=checksum == self.client.address,
            withdrawable=self.client.withdrawable(checksum),
            ots=self.has_ots(),
        )
        if view.ots:
            found = self.rpc.request(
                "ots_searchTransactionsBefore", [checksum, 0, _OTS_HISTORY_PAGE]
            )
            receipts = {r["transactionHash"]: r for r in found.get("receipts", [])}
            for tx in found.get("txs", []):
                to = Web3.to_checksum_address(tx["to"]) if tx.get("to") else None
                call = self.decode_call(tx["input"]) if to == self.client.address else None
                receipt = receipts.get(tx["hash"], {})
                view.history.append(
                    {
                        "hash": tx["hash"],
                        "block": int(tx["blockNumber"], 16),
                        "from": Web3.to_checksum_address(tx["from"]),
                        "to": to,
                        "value": int(tx["value"], 16),
                        "method": call.function if call else tx["input"][:10],
                        "status": int(receipt.get("status", "0x1"), 16),
                    }
                )
        return view
