"""One nonce sequence per sender, shared by every client in this process that signs for it.

Reading the node's pending count before each transaction races: two threads of one API (or
one agent sending while another call is in flight) read the same count, sign two transactions
with one nonce, and the node refuses the second ("nonce too low", or it replaces the first).
So the next nonce is handed out under a lock, locally counted after the first read; a refused
send puts the sequence back in step with the node, and "nonce too low" for a transaction is
resolved by asking the node whether that very transaction is known (a lost answer to an
earlier attempt) rather than by assuming it went through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_LOCK = threading.Lock()
_SEQUENCES: dict[tuple[str, int, str], NonceSequence] = {}


class NonceSequence:
    """The nonces of one sender on one chain, handed out in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held from taking a nonce until its tx is sent
        self._next: int | None = None

    def take(self, pending_count: Callable[[], int]) -> int:
        """The next nonce (call with ``lock`` held); the node is asked only when out of step."""
        if self._next is None:
            self._next = pending_count()
        nonce = self._next
        self._next += 1
        return nonce

    def resync(self) -> None:
        """Forget the local count: the next take asks the node again."""
        self._next = None


def sequence_for(rpc_url: str, chain_id: int, sender: str) -> NonceSequence:
    """The process-wide sequence of ``sender`` on the chain behind ``rpc_url``."""
    key = (rpc_url, chain_id, sender.lower())
    with _LOCK:
        if key not in _SEQUENCES:
            _SEQUENCES[key] = NonceSequence()
        return _SEQUENCES[key]
