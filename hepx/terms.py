"""From a spec's payment section to the market call that posts it.

A spec that uses none of the protocol terms goes through the spine's ``postJob`` (cheapest);
anything else through ``postJobWithTerms``. A job that asks for a stake also names its kind on
chain, so only workers that registered that kind (with stake) can take it. An ERC-20 job
approves its escrow for the market first.
"""

from __future__ import annotations

from hepx.allowlist import merkle_root
from hepx.chain import (
    ZERO_BYTES32,
    MarketClient,
    MatchMode,
    Terms,
    TokenClient,
    TxResult,
    kind_id,
)
from hepx.errors import ConfigError
from hepx.spec import JobSpec


def terms_for(spec: JobSpec) -> Terms:
    """The on-chain terms of ``spec`` (windows, replicas, stake, token, allowlist, kind)."""
    pay = spec.payment
    return Terms(
        max_price=int(pay.max_price_wei),
        match_window=pay.claim_window,
        run_window=pay.run_window,
        mode=MatchMode.AUCTION if pay.mode == "auction" else MatchMode.CLAIM,
        replicas=pay.replicas,
        quorum=pay.effective_quorum,
        token=None if pay.token == "ETH" else pay.token,
        min_stake=int(pay.min_stake_wei),
        reveal_window=pay.effective_reveal_window,
        # A staked or drawn worker must have declared the kind (drawn ones are staked too).
        kind=kind_id(spec.kind) if pay.min_stake_wei or pay.replicas > 1 else ZERO_BYTES32,
        allowlist_root=merkle_root(pay.allowlist) if pay.allowlist else ZERO_BYTES32,
    )


def post_spec(client: MarketClient, spec_cid: str, spec: JobSpec) -> tuple[int, TxResult]:
    """Post the job whose stored spec is ``spec_cid``; return its id and the posting tx."""
    pay = spec.payment
    if not pay.uses_terms:
        return client.post_job(
            spec_cid, int(pay.max_price_wei), int(pay.claim_window), int(pay.run_window)
        )
    terms = terms_for(spec)
    if terms.token is not None:
        token = TokenClient(client.rpc_url, terms.token, _key(client))
        token.ensure_allowance(client.address, terms.escrow)
    return client.post_job_with_terms(spec_cid, terms)


def _key(client: MarketClient) -> str:
    if client.private_key is None:
        raise ConfigError("posting an ERC-20 job needs the requester's key (HEPX_PRIVATE_KEY)")
    return client.private_key
