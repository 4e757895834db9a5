"""Fast decoding of JobMarket logs for bulk reads (the event index).

web3's ``process_log`` costs milliseconds per log (formatter chains, checksums recomputed per
address), which makes catching up on tens of thousands of events take minutes. This decoder
precomputes each event's layout once and decodes with eth_abi directly; its output equals
:meth:`hepx.chain.MarketClient._decode_log`'s (a test checks them against each other).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode  # type: ignore[attr-defined]
from eth_utils import keccak, to_checksum_address  # type: ignore[attr-defined]

from hepx.chain import MarketClient, MarketEvent
from hepx.errors import ChainError

_DYNAMIC = ("string", "bytes")


@dataclass(frozen=True)
class _Layout:
    name: str
    indexed: list[tuple[str, str]]  # (name, type) in topic order
    data_names: list[str]
    data_types: list[str]


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if not isinstance(value, str) else value.lower()


def _is_dynamic(kind: str) -> bool:
    return kind in _DYNAMIC or kind.endswith("[]") or kind.startswith("tuple")


class LogDecoder:
    """Decodes raw logs of one market contract into :class:`MarketEvent`."""

    def __init__(self, client: MarketClient) -> None:
        self.client = client
        self.address = client.address.lower()
        self._layouts: dict[str, _Layout] = {}
        for item in client.artifact.abi:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            types = [i["type"] for i in item["inputs"]]
            topic = "0x" + keccak(text=f"{item['name']}({','.join(types)})").hex()
            self._layouts[topic] = _Layout(
                name=item["name"],
                indexed=[(i["name"], i["type"]) for i in item["inputs"] if i["indexed"]],
                data_names=[i["name"] for i in item["inputs"] if not i["indexed"]],
                data_types=[i["type"] for i in item["inputs"] if not i["indexed"]],
            )
        self._order = {
            item["name"]: [i["name"] for i in item["inputs"]]
            for item in client.artifact.abi
            if item["type"] == "event"
        }

    def decode(self, raw: Any) -> MarketEvent | None:
        topics = [_hex(t) for t in raw["topics"]]
        if _hex(raw["address"]) != self.address or not topics:
            return None
        layout = self._layouts.get(topics[0])
        if layout is None or len(topics) != 1 + len(layout.indexed):
            return None
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(layout.indexed, topics[1:], strict=True):
            word = bytes.fromhex(topic[2:])
            # Indexed dynamic values are stored as their hash: keep the hash, as web3 does.
            args[name] = word if _is_dynamic(kind) else abi_decode([kind], word)[0]
        data = raw["data"]
        payload = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        for name, value in zip(
            layout.data_names, abi_decode(layout.data_types, payload), strict=True
        ):
            args[name] = value
        for name, value in list(args.items()):
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
                args[name] = _checksum(value)
        ordered = {name: args[name] for name in self._order[layout.name]}
        return MarketEvent(
            name=layout.name,
            args=ordered,
            block_number=int(raw["blockNumber"], 16)
            if isinstance(raw["blockNumber"], str)
            else int(raw["blockNumber"]),
            tx_hash=_hex(raw["transactionHash"]),
            log_index=int(raw["logIndex"], 16)
            if isinstance(raw["logIndex"], str)
            else int(raw["logIndex"]),
            block_hash=_hex(raw["blockHash"]),
        )

    def events(self, from_block: int, to_block: int, chunk: int = 5000) -> Iterator[MarketEvent]:
        """Decoded market events in ``[from_block, to_block]``, oldest first."""
        start = from_block
        while start <= to_block:
            end = min(start + chunk - 1, to_block)
            params = [
                {"address": self.client.address, "fromBlock": hex(start), "toBlock": hex(end)}
            ]
            logs = self.client._retry(
                "eth_getLogs",
                lambda p=params: self.client.w3.provider.make_request("eth_getLogs", p),  # type: ignore[misc,arg-type]
            )
            if "error" in logs:
                raise ChainError(f"eth_getLogs failed: {logs['error']}")
            for raw in logs["result"]:
                if (event := self.decode(raw)) is not None:
                    yield event
            start = end + 1
