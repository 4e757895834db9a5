"""Market events: the one decoder of raw logs and the one walk over block ranges.

The decoder precomputes each event's layout from the ABI once and decodes the words
directly (hepx.chain.abi): web3's ``process_log`` costs milliseconds per log, which makes an
index catching up on tens of thousands of events take minutes. It reads logs as the node
sends them (hex strings) and as web3 hands them over in receipts (bytes), so transactions,
the agent's follower and the API's index all see the same :class:`MarketEvent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak  # type: ignore[attr-defined]

from hepx.chain.abi import checksummed
from hepx.chain.abi import decode as abi_decode
from hepx.chain.enums import JobState
from hepx.chain.rpc import Rpc
from hepx.chain.types import MarketEvent

_DYNAMIC = ("string", "bytes")

# The state a job is in right after each of these events of the market.
STATE_AFTER_EVENT: dict[str, JobState] = {
    "JobPosted": JobState.OPEN,
    "JobClaimed": JobState.CLAIMED,
    "ResultSubmitted": JobState.SUBMITTED,
    "JobSettled": JobState.SETTLED,
    "JobCancelled": JobState.CANCELLED,
    "JobExpired": JobState.EXPIRED,
    "CommitPhaseStarted": JobState.COMMITTING,
    "RevealPhaseStarted": JobState.REVEALING,
    "ReplicasSettled": JobState.SETTLED,
    "JobNoQuorum": JobState.NO_QUORUM,
    "JobDisputed": JobState.DISPUTED,
    "JobOverturned": JobState.OVERTURNED,
    # A sweep's events, for each job of its sweep or lot (hepx/index_sweeps.py); a job opened
    # to a dispute goes on with its own.
    "SweepPosted": JobState.OPEN,
    "LotClaimed": JobState.CLAIMED,
    "LotSubmitted": JobState.SUBMITTED,
    "LotSettled": JobState.SETTLED,
    "LotExpired": JobState.EXPIRED,
    "SweepRefunded": JobState.CANCELLED,
}


def closes(event: MarketEvent) -> bool:
    """Whether the event leaves its job (or its sweep's, its lot's jobs) no longer open: no
    job is ever open again once taken, settled or cancelled."""
    return STATE_AFTER_EVENT.get(event.name, JobState.OPEN) != JobState.OPEN


# The events of sweeps (ISweepCalls): each moves every job of its sweep or lot.
SWEEP_EVENTS = frozenset(
    {"SweepPosted", "LotClaimed", "LotSubmitted", "LotSettled", "LotExpired", "SweepRefunded"}
)
# Events after which a job never changes (the contract emits a settlement's Payments first).
FINAL_EVENTS = frozenset(name for name, state in STATE_AFTER_EVENT.items() if state.final)


@dataclass(frozen=True)
class _Layout:
    name: str
    indexed: list[tuple[str, str]]  # (name, type) in topic order
    data_names: list[str]
    data_types: list[str]
    order: list[str]  # every argument, in declaration order


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if not isinstance(value, str) else value.lower()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _is_dynamic(kind: str) -> bool:
    return kind in _DYNAMIC or kind.endswith("[]") or kind.startswith("tuple")


class LogDecoder:
    """Decodes raw logs of the contract at ``address`` (with ``abi``) into MarketEvents."""

    def __init__(self, abi: list[dict[str, Any]], address: str) -> None:
        self.address = address.lower()
        self._layouts: dict[str, _Layout] = {}
        for item in abi:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            types = [i["type"] for i in item["inputs"]]
            topic = "0x" + keccak(text=f"{item['name']}({','.join(types)})").hex()
            self._layouts[topic] = _Layout(
                name=item["name"],
                indexed=[(i["name"], i["type"]) for i in item["inputs"] if i["indexed"]],
                data_names=[i["name"] for i in item["inputs"] if not i["indexed"]],
                data_types=[i["type"] for i in item["inputs"] if not i["indexed"]],
                order=[i["name"] for i in item["inputs"]],
            )

    def decode(self, raw: Any, skip: Skip | None = None) -> MarketEvent | None:
        """The event of one log; None for another contract's log, an event not in the ABI, or
        one ``skip`` leaves undecoded."""
        topics = [_hex(t) for t in raw["topics"]]
        if _hex(raw["address"]) != self.address or not topics:
            return None
        layout = self._layouts.get(topics[0])
        if layout is None or len(topics) != 1 + len(layout.indexed):
            return None
        if skip is not None and skip(layout.name, topics):
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
                args[name] = checksummed(value)
        return MarketEvent(
            name=layout.name,
            args={name: args[name] for name in layout.order},
            block_number=_int(raw["blockNumber"]),
            tx_hash=_hex(raw["transactionHash"]),
            log_index=_int(raw["logIndex"]),
            block_hash=_hex(raw["blockHash"]),
        )


# Whether a log (its event's name and topics, as hex strings) can be left undecoded.
Skip = Callable[[str, list[str]], bool]


def address_topic(address: str) -> str:
    """An indexed address as it stands in a raw log's topics: a lowercase hex word."""
    return "0x" + address.lower()[2:].rjust(64, "0")


def others_money(worker: str, mine: Callable[[int], bool]) -> Skip:
    """What a worker's follower need not decode: a Payment to someone else, and the
    settlement of another worker's job (``mine``: whether a job id is one the worker holds).

    Every agent reads every event of the market; these were over half of them (a settled
    job's worker, fee and refund payments and its JobSettled), and nothing of an agent's acts
    on them: its own credit shows in a Payment to it, a job leaves its waiting list when it is
    claimed, and its own jobs' settlements are kept."""
    me = address_topic(worker)

    def skip(name: str, topics: list[str]) -> bool:
        if name == "Payment":  # (jobId, payee) indexed
            return topics[2] != me
        if name == "JobSettled":  # (jobId, worker) indexed
            return topics[2] != me and not mine(int(topics[1], 16))
        return False

    return skip


def block_ranges(first: int, last: int, size: int) -> Iterator[tuple[int, int]]:
    """``[first, last]`` cut into ranges of at most ``size`` blocks, oldest first."""
    start = first
    while start <= last:
        end = min(start + size - 1, last)
        yield start, end
        start = end + 1


def confirmed_ranges(
    rpc: Rpc, after_block: int, confirmations: int, size: int, head: int | None = None
) -> tuple[int, Iterator[tuple[int, int]]]:
    """What a follower of the chain reads next (the agent's follower, the API's index): the
    newest block ``confirmations`` deep, and the ranges from ``after_block + 1`` up to it
    (``head``: the newest block, if the caller has just read it)."""
    safe_head = (rpc.block_number() if head is None else head) - confirmations
    return safe_head, block_ranges(after_block + 1, safe_head, size)
