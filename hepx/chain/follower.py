"""Following JobMarket events from a saved cursor.

The cursor is the last block whose events were fully handled; it moves only after the
handler returns, and is written to its file at most every ``WRITE_EVERY`` seconds and when
the follower stops, so a process killed mid-block (or within that second) sees those blocks
again on restart (handlers are idempotent: they check the job's state on chain before
acting). Events are read only once they are ``confirmations`` blocks deep.

A reorg deeper than that replaces blocks whose events were handled, or that hold the client's
own transactions (a claim, a result). The cursor keeps the hash of each block it stopped at
and of each block one of its client's transactions was mined in (the last ``KEPT_HASHES``),
so the next poll sees one of them under another hash, goes back to the newest block still on
the chain and reads on from there; the handlers hear of the reorg first (``on_reorg``), since
some of what they did may be gone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hepx.chain.events import Skip, confirmed_ranges
from hepx.chain.market import MarketClient
from hepx.chain.rpc import Heads, Rpc
from hepx.chain.types import MarketEvent
from hepx.files import write_atomic

log = logging.getLogger("hepx.chain")


# Blocks a reorg may go back (the deepest the cursor can find its way from).
KEPT_HASHES = 128
# Seconds between writes of a cursor that only moved on (or learnt the block of its owner's
# transaction): a block's handlers are idempotent, so a process killed before the write reads
# those blocks again; writing every round cost each agent a file per block, and writing for
# each transaction a file per claim and result.
WRITE_EVERY = 1.0


class Cursor:
    """The last handled block and the hashes of blocks known to be on the chain when last seen:
    those the follower stopped at, and those that hold the owner's own transactions (which
    may lie beyond the cursor, where the follower alone would never see them replaced)."""

    def __init__(self, path: Path, start_block: int) -> None:
        self.path = path
        self.block = start_block - 1
        self.floor = start_block - 1  # where a reorg deeper than every kept hash goes back to
        self.hashes: dict[int, str] = {}
        self._lock = threading.Lock()  # transactions are mined on other threads too
        if path.exists():
            saved = json.loads(path.read_text())
            self.block = int(saved["block"])
            self.hashes = {int(k): v for k, v in saved.get("hashes", {}).items()}
        # Hashes not compared with the chain since they were learnt (all, after a restart),
        # and the newest one that was: a reorg since then replaced that one, or left it be.
        self._unchecked: set[int] = set(self.hashes)
        self._newest_checked: int | None = None
        self._written_at = time.monotonic()
        self._unwritten = False
        # What must be on disk no later than the cursor that passed the events it came
        # from (an agent's waiting jobs): written first, whenever the cursor is.
        self.before_write: list[Callable[[], None]] = []

    def save(
        self, block: int, block_hash: str | None = None, parent_hash: str | None = None
    ) -> None:
        with self._lock:
            self.block = block
            if parent_hash is not None:
                self.hashes[block - 1] = parent_hash  # free with the block: a reorg of one finds it
                self._unchecked.add(block - 1)
            if block_hash is not None:
                self.hashes[block] = block_hash
                self._unchecked.add(block)
            self._prune()
            self._write_soon()

    def flush(self) -> None:
        """Write what save() has not written yet (when the follower stops)."""
        with self._lock:
            if self._unwritten:
                self._write()

    def watch(self, block: int, block_hash: str) -> None:
        """Keep the hash of a block holding one of the owner's transactions. Written as the
        cursor is: a restart reads every job the agent holds from the chain again, so a
        transaction a reorg took back while its hash was unwritten is found there."""
        with self._lock:
            self.hashes[block] = block_hash
            self._unchecked.add(block)
            self._write_soon()

    def to_check(self) -> dict[int, str]:
        """The hashes a poll compares with the chain to see whether a reorg happened."""
        with self._lock:
            blocks = set(self._unchecked)
            if self._newest_checked is not None:
                blocks.add(self._newest_checked)
            return {b: self.hashes[b] for b in blocks if b in self.hashes}

    def checked(self, blocks: set[int]) -> None:
        with self._lock:
            self._unchecked -= blocks
            if blocks:
                self._newest_checked = max(blocks | {self._newest_checked or -1})

    def rewind(self, fork: int) -> None:
        """Go back to ``fork``: nothing above it is known to be on the chain any more."""
        with self._lock:
            self.hashes = {b: h for b, h in self.hashes.items() if b <= fork}
            self._unchecked = {b for b in self._unchecked if b <= fork}
            self._newest_checked = fork if fork in self.hashes else None
            self.block = min(self.block, fork)
            self._write()

    def newest_first(self) -> list[tuple[int, str]]:
        with self._lock:
            return sorted(self.hashes.items(), reverse=True)

    def _prune(self) -> None:  # lock held
        if len(self.hashes) <= KEPT_HASHES:
            return
        for old in sorted(self.hashes)[:-KEPT_HASHES]:
            del self.hashes[old]

    def _write_soon(self) -> None:  # lock held
        if time.monotonic() >= self._written_at + WRITE_EVERY:
            self._write()
        else:
            self._unwritten = True

    def _write(self) -> None:  # lock held
        for write_first in self.before_write:
            write_first()
        self._prune()
        write_atomic(self.path, json.dumps({"block": self.block, "hashes": self.hashes}))
        self._written_at, self._unwritten = time.monotonic(), False


class EventFollower:
    """Hands market events to ``handle`` in chain order, block range by block range."""

    def __init__(
        self,
        client: MarketClient,
        cursor: Cursor,
        confirmations: int = 0,
        max_range: int = 2000,
        on_reorg: Callable[[int], None] | None = None,
        skip: Skip | None = None,
    ) -> None:
        self.client = client
        self.skip = skip  # logs its handler would do nothing with, left undecoded
        self.cursor = cursor
        self.confirmations = confirmations
        self.max_range = max_range
        self.on_reorg = on_reorg
        self.reorgs = 0
        # The blocks of this client's own transactions are watched too.
        client.tx_observers.append(lambda _what, tx: cursor.watch(tx.block_number, tx.block_hash))

    def poll(
        self, handle: Callable[[MarketEvent], None], end_range: Callable[[], None] | None = None
    ) -> int:
        """Handle the events of every new confirmed block, and call ``end_range`` after each
        range's (before the cursor moves past it); return how many were handled."""
        heads = self._heads_past_reorg()
        # The round's clock comes with its heads: no request of its own.
        self.client.hold_clock(heads.now)
        rpc = self.client.rpc
        _, ranges = confirmed_ranges(
            rpc, self.cursor.block, self.confirmations, self.max_range, heads.latest.number
        )
        handled = 0
        for start, end in ranges:
            for event in self.client.iter_events(start, end, skip=self.skip):
                handle(event)
                handled += 1
            if end_range is not None:
                end_range()
            header = heads.latest if end == heads.latest.number else rpc.header(end)
            self.cursor.save(end, header.hash, header.parent_hash)
        return handled

    def _heads_past_reorg(self) -> Heads:
        """The chain's heads; if a block the cursor knows is not on the chain any more, go
        back to the newest one below it that is first (every block below a canonical one is
        canonical too)."""
        check = self.cursor.to_check()
        rpc: Rpc = self.client.rpc
        heads = rpc.heads(check)  # a block above the latest is not in ``heads.known``
        now = heads.known
        stale = sorted(b for b, h in check.items() if b not in now or now[b].hash != h)
        if not stale:
            self.cursor.checked(set(check))
            return heads
        fork = self.cursor.floor
        for block, block_hash in self.cursor.newest_first():
            if block < stale[0] and rpc.block_hash(block) == block_hash:
                fork = block
                break
        self.reorgs += 1
        log.warning(
            "event=reorg replaced=%d back_to=%d depth_at_least=%d",
            stale[0],
            fork,
            stale[0] - fork,
        )
        if self.on_reorg is not None:
            self.on_reorg(fork)
        self.cursor.rewind(fork)
        return heads
