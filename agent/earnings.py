"""What the market owes the worker, and when it is withdrawn.

Payments are credited in the contract and pulled with ``withdraw()`` (and ``withdrawToken``
per ERC-20). The agent reads its credit only once something was paid to it (a ``Payment``
credit to it in its own receipts or the chain's events), after it starts and after a reorg;
reading every round was a request per round for nothing while no payment came. It withdraws
at most every ``policy.withdraw_every`` seconds: a lot is paid when it settles, and a
withdrawal per lot was one more transaction, fee and block per lot. What is left is withdrawn
when the agent stops.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

from agent.policy import Policy
from hepx.chain import MarketClient, MarketEvent, PaymentDirection

log = logging.getLogger("hepx.agent")


class Earnings:
    def __init__(self, client: MarketClient, policy: Policy) -> None:
        self.client = client
        self.policy = policy
        self.due = True  # our credit is read once at start
        self._withdrawn_at = -math.inf  # the first credit seen is withdrawn at once

    def note(self, events: Iterable[MarketEvent]) -> None:
        """Look at our credit again if one of ``events`` paid us."""
        me = self.client.sender.lower()
        if any(
            e.name == "Payment"
            and e.args["direction"] == PaymentDirection.CREDIT
            and str(e.args["payee"]).lower() == me
            for e in events
        ):
            self.due = True

    def after_reorg(self) -> None:
        """Our last withdrawal may be gone with the blocks replaced: look again, at once."""
        self.due = True
        self._withdrawn_at = -math.inf

    def withdraw(self, now: bool = False) -> None:
        """Withdraw our credit if it is due and the interval has passed (``now``: whatever
        the interval)."""
        if not self.due:
            return
        if not now and time.monotonic() - self._withdrawn_at < self.policy.withdraw_every:
            return
        self.due = False
        try:
            self._withdraw_tokens()
            if self.client.withdrawable(self.client.sender) > 0:
                tx = self.client.withdraw()
                self._withdrawn_at = time.monotonic()
                amount = tx.event("Payment").args["amount"]
                log.info("event=withdrawn worker=%s amount=%d tx=%s", self.client.sender, amount,
                         tx.tx_hash)  # fmt: skip
        except BaseException:
            self.due = True  # tried again next round
            raise

    def _withdraw_tokens(self) -> None:
        client = self.client
        for token in self.policy.tokens:
            amount = client.token_withdrawable(token, client.sender)
            if amount > 0:
                tx = client.withdraw_token(token)
                self._withdrawn_at = time.monotonic()
                log.info("event=withdrawn worker=%s token=%s amount=%d tx=%s", client.sender,
                         token, amount, tx.tx_hash)  # fmt: skip
