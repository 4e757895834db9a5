"""Following JobMarket events from a saved cursor.

The cursor is the last block whose events were fully handled; it is saved only after the
handler returns, so a process killed mid-block sees that block again on restart (handlers are
idempotent: they check the job's state on chain before acting). Events are read only once they
are ``confirmations`` blocks deep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hepx.chain.events import confirmed_ranges
from hepx.chain.market import MarketClient
from hepx.chain.types import MarketEvent
from hepx.files import write_atomic


class Cursor:
    """The last handled block, persisted in a small JSON file."""

    def __init__(self, path: Path, start_block: int) -> None:
        self.path = path
        self.block = start_block - 1
        if path.exists():
            self.block = int(json.loads(path.read_text())["block"])

    def save(self, block: int) -> None:
        self.block = block
        write_atomic(self.path, json.dumps({"block": block}))


class EventFollower:
    """Hands market events to ``handle`` in chain order, block range by block range."""

    def __init__(
        self,
        client: MarketClient,
        cursor: Cursor,
        confirmations: int = 0,
        max_range: int = 2000,
    ) -> None:
        self.client = client
        self.cursor = cursor
        self.confirmations = confirmations
        self.max_range = max_range

    def poll(self, handle: Callable[[MarketEvent], None]) -> int:
        """Handle the events of every new confirmed block; return how many were handled."""
        _, ranges = confirmed_ranges(
            self.client.rpc, self.cursor.block, self.confirmations, self.max_range
        )
        handled = 0
        for start, end in ranges:
            for event in self.client.iter_events(start, end):
                handle(event)
                handled += 1
            self.cursor.save(end)
        return handled
