"""The worker's standing in the registry and its ERC-20 earnings.

With ``stake`` in the policy the agent registers at startup with that stake and the policy's
kinds, or tops its stake up to it and declares kinds it lacks; it never unbonds on its own
(that is the operator's call: ``hepx worker unbond``).
"""

from __future__ import annotations

import logging

from agent.policy import Policy
from hepx.chain import MarketClient

log = logging.getLogger("hepx.agent")


def ensure_stake(client: MarketClient, policy: Policy) -> None:
    """Register, top up and declare kinds so the worker matches its policy."""
    if policy.stake is None:
        return
    me = client.sender
    kinds = sorted(policy.kinds)
    record = client.worker(me)
    if not record.registered:
        tx = client.register(kinds, policy.stake)
        log.info(
            "event=registered worker=%s stake=%d kinds=%s tx=%s",
            me,
            policy.stake,
            ",".join(kinds),
            tx.tx_hash,
        )
        return
    if record.stake < policy.stake:
        tx = client.add_stake(policy.stake - record.stake)
        log.info("event=stake_added worker=%s stake=%d tx=%s", me, policy.stake, tx.tx_hash)
    missing = [k for k in kinds if not client.has_kind(me, k)]
    if missing:
        tx = client.set_kinds(missing, True)
        log.info("event=kinds_declared worker=%s kinds=%s tx=%s", me, ",".join(missing), tx.tx_hash)


def withdraw_token_earnings(client: MarketClient, policy: Policy) -> None:
    """Withdraw our credit in every ERC-20 the policy takes jobs in."""
    for token in policy.tokens:
        amount = client.token_withdrawable(token, client.sender)
        if amount > 0:
            tx = client.withdraw_token(token)
            log.info(
                "event=withdrawn worker=%s token=%s amount=%d tx=%s",
                client.sender,
                token,
                amount,
                tx.tx_hash,
            )
