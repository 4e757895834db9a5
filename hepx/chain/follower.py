"""Following JobMarket events from a saved cursor.

The cursor is the last block whose events were fully handled; it is saved only after the
handler returns, so a process killed mid-block sees that block again on restart (handlers are
idempotent: they check the job's state on chain before acting). Events are read only once they
are ``confirmations`` blocks deep.

A reorg deeper than that replaces blocks whose events were handled. The cursor keeps the hash
of each block it stopped at (the last ``KEPT_HASHES``), so the next poll sees its block under
another hash, goes back to the newest one still on the chain and reads on from there; the
handlers hear of the reorg first (``on_reorg``), since some of what they did may be gone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from hepx.chain.events import confirmed_ranges
from hepx.chain.market import MarketClient
from hepx.chain.types import MarketEvent
from hepx.files import write_atomic

log = logging.getLogger("hepx.chain")


# Blocks a reorg may go back (the deepest the cursor can find its way from).
KEPT_HASHES = 128


class Cursor:
    """The last handled block and the hashes of the blocks it stopped at, in a small JSON file."""

    def __init__(self, path: Path, start_block: int) -> None:
        self.path = path
        self.block = start_block - 1
        self.floor = start_block - 1  # where a reorg deeper than every kept hash goes back to
        self.hashes: dict[int, str] = {}
        if path.exists():
            saved = json.loads(path.read_text())
            self.block = int(saved["block"])
            self.hashes = {int(k): v for k, v in saved.get("hashes", {}).items()}

    def save(
        self, block: int, block_hash: str | None = None, parent_hash: str | None = None
    ) -> None:
        self.block = block
        for kept in [b for b in self.hashes if b >= block]:
            del self.hashes[kept]  # a rewind: what was above is not on the chain any more
        if parent_hash is not None:
            self.hashes[block - 1] = parent_hash  # free with the block: a reorg of one finds it
        if block_hash is not None:
            self.hashes[block] = block_hash
            for old in sorted(self.hashes)[:-KEPT_HASHES]:
                del self.hashes[old]
        write_atomic(self.path, json.dumps({"block": block, "hashes": self.hashes}))


class EventFollower:
    """Hands market events to ``handle`` in chain order, block range by block range."""

    def __init__(
        self,
        client: MarketClient,
        cursor: Cursor,
        confirmations: int = 0,
        max_range: int = 2000,
        on_reorg: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.cursor = cursor
        self.confirmations = confirmations
        self.max_range = max_range
        self.on_reorg = on_reorg
        self.reorgs = 0

    def poll(self, handle: Callable[[MarketEvent], None]) -> int:
        """Handle the events of every new confirmed block; return how many were handled."""
        self._rewind_past_reorg()
        rpc = self.client.rpc
        _, ranges = confirmed_ranges(rpc, self.cursor.block, self.confirmations, self.max_range)
        handled = 0
        for start, end in ranges:
            for event in self.client.iter_events(start, end):
                handle(event)
                handled += 1
            block = rpc.block(end)
            self.cursor.save(end, _hex(block["hash"]), _hex(block["parentHash"]))
        return handled

    def _rewind_past_reorg(self) -> None:
        """If the cursor's block is not on the chain any more, go back to the newest one that
        is (every block below a canonical one is canonical too)."""
        kept = self.cursor.hashes
        if self.cursor.block not in kept:
            return  # a cursor saved before hashes were kept: nothing to compare
        head = self.client.block_number()
        fork = self.cursor.floor
        for block in sorted(kept, reverse=True):
            if block <= head and self.client.rpc.block_hash(block) == kept[block]:
                fork = block
                break
        if fork == self.cursor.block:
            return
        self.reorgs += 1
        log.warning(
            "event=reorg cursor=%d back_to=%d depth_at_least=%d",
            self.cursor.block,
            fork,
            self.cursor.block - fork,
        )
        if self.on_reorg is not None:
            self.on_reorg(fork)
        self.cursor.save(fork, kept.get(fork))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
