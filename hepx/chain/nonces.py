"""One nonce sequence per sender, shared by every client in this process that signs for it.

Reading the node's pending count before each transaction races: two threads of one API (or
one agent sending while another call is in flight) read the same count, sign two transactions
with one nonce, and the node refuses the second ("nonce too low", or it replaces the first).
So the next nonce is handed out under a lock that is held until the transaction is sent: the
node's pending count then includes every earlier transaction of this process. When the node
counts fewer than this process sent, it either lags (a pool behind a load balancer) or forgot
them (a reorg, a devnet reverted to a snapshot or restarted): asking whether the last one
sent is still known tells which. "nonce too low" for a transaction is resolved by asking the
node whether that very transaction is known (a lost answer to an earlier attempt) rather than
by assuming it went through.
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
        self._last_sent: str | None = None

    def take(self, pending_count: Callable[[], int], known: Callable[[str], bool]) -> int:
        """The next nonce (call with ``lock`` held): the node's pending count, unless the node
        lags behind what this process sent and still knows the last of it."""
        pending = pending_count()
        ahead, last = self._next, self._last_sent
        lagging = ahead is not None and last is not None and pending < ahead and known(last)
        nonce = ahead if lagging and ahead is not None else pending
        self._next = nonce + 1
        return nonce

    def sent(self, tx_hash: str) -> None:
        self._last_sent = tx_hash

    def resync(self) -> None:
        """Forget the local count: the next take trusts the node."""
        self._next = None
        self._last_sent = None


def sequence_for(rpc_url: str, chain_id: int, sender: str) -> NonceSequence:
    """The process-wide sequence of ``sender`` on the chain behind ``rpc_url``."""
    key = (rpc_url, chain_id, sender.lower())
    with _LOCK:
        if key not in _SEQUENCES:
            _SEQUENCES[key] = NonceSequence()
        return _SEQUENCES[key]
