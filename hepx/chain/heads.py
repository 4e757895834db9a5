"""New blocks over a WebSocket subscription, where the node offers one (anvil does).

An agent waits between polls of the chain; with a subscription to ``newHeads`` it wakes as a
block arrives instead of at the end of its poll interval. The events themselves are still read
over HTTP (``eth_getLogs`` from the follower's cursor), so a dropped subscription or a missed
head loses nothing: the poll interval is then the fallback, and the watcher reconnects with
backoff. Nodes without WebSocket (or a URL that is not one) leave the agent polling as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from urllib.parse import urlsplit, urlunsplit

from hepx.chain.transport import WebSocket

log = logging.getLogger("hepx.chain")

_RECONNECT = (0.5, 1.0, 2.0, 5.0, 10.0)


def websocket_url(rpc_url: str) -> str | None:
    """The WebSocket URL of an HTTP JSON-RPC endpoint served on the same port (anvil,
    geth's and reth's defaults differ: pass theirs explicitly), or None for other schemes."""
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    return None if scheme is None else urlunsplit((scheme, *parts[1:]))


class HeadWatcher:
    """Sets ``arrived`` on every new block head the node announces (a daemon thread)."""

    def __init__(self, ws_url: str | None) -> None:
        self.ws_url = ws_url
        self.arrived = threading.Event()  # a head, or work of the waiter's own
        self.subscribed = threading.Event()  # set while a subscription is live
        self.heads = 0
        self._own = threading.Event()  # work of the waiter's own is due
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HeadWatcher:
        if self.ws_url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hepx-heads", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """End the current wait now: work of the waiter's own is due (a result to send)."""
        self._own.set()
        self.arrived.set()

    def wait(self, timeout: float) -> bool:
        """Until a new head arrived or wake() was called (True) or ``timeout`` passed (False)."""
        arrived = self.arrived.wait(timeout)
        self.arrived.clear()
        return arrived

    def gather(self, seconds: float) -> None:
        """Let up to ``seconds`` more of heads gather into the next round, unless wake() is
        or was called since the last gather: work of the waiter's own does not wait."""
        if seconds > 0:
            self._own.wait(seconds)
        self._own.clear()

    def _run(self) -> None:
        attempt = 0
        said_lost = False
        while not self._stop.is_set():
            try:
                assert self.ws_url is not None
                with contextlib.closing(WebSocket(self.ws_url, timeout=5)) as ws:
                    ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                        "params": ["newHeads"]}))  # fmt: skip
                    reply = json.loads(ws.recv(timeout=5))
                    if "error" in reply:
                        log.info("event=heads_unavailable url=%s error=%s polling", self.ws_url,
                                 reply["error"])  # fmt: skip
                        return  # the node has no subscriptions: polling it is
                    self.subscribed.set()
                    attempt, said_lost = 0, False
                    log.info("event=heads_subscribed url=%s", self.ws_url)
                    while not self._stop.is_set():
                        try:
                            message = ws.recv(timeout=1)
                        except TimeoutError:
                            continue
                        if '"eth_subscription"' in message:
                            self.heads += 1
                            self.arrived.set()
            except (OSError, ValueError) as exc:  # TimeoutError and ConnectionError are OSError
                self.subscribed.clear()
                if not said_lost:
                    log.info("event=heads_lost url=%s error=%s polling meanwhile", self.ws_url,
                             exc)  # fmt: skip
                    said_lost = True
                self._stop.wait(_RECONNECT[min(attempt, len(_RECONNECT) - 1)])
                attempt += 1
