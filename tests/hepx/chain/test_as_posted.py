"""A job and its terms read from its post's events (hepx.chain.market.as_posted) equal what
getJob and getTerms answer right after the post, for every way of posting: one plain job, a
batch of them, and jobs with each kind of terms."""

from __future__ import annotations

import pytest
from chain_helpers import client_of

from hepx.anvil import Anvil
from hepx.chain import MarketClient, MatchMode, Terms, TxResult
from hepx.chain.market import as_posted
from hepx.deployment import Deployment

WEI = 10**15


def _as_posted_by_events(tx: TxResult) -> dict[int, object]:
    posts = [e for e in tx.events if e.name == "JobPosted"]
    terms = {int(e.args["jobId"]): e for e in tx.events if e.name == "JobTermsSet"}
    return {int(p.args["jobId"]): as_posted(p, terms.get(int(p.args["jobId"]))) for p in posts}


def _as_read(client: MarketClient, jobs: list[int]) -> dict[int, object]:
    return {j: (client.job(j), client.terms(j)) for j in jobs}


def test_plain_posts_read_from_their_events_equal_the_views(
    node: Anvil, deployment: Deployment
) -> None:
    requester = client_of(node, deployment, 1)
    job, tx = requester.post_job("echo-a", WEI, 600, 300)
    assert _as_posted_by_events(tx) == _as_read(requester, [job])
    jobs, tx = requester.post_jobs([("echo-b", WEI), ("echo-c", 2 * WEI)], 900, 120)
    assert _as_posted_by_events(tx) == _as_read(requester, jobs)


@pytest.mark.parametrize(
    "terms",
    [
        Terms(WEI, 600, 300, mode=MatchMode.AUCTION),
        Terms(WEI, 600, 300, replicas=3, quorum=2, reveal_window=120),
        Terms(WEI, 600, 300, min_stake=WEI, kind=b"\x07" * 32, allowlist_root=b"\x09" * 32),
    ],
    ids=["auction", "replicated", "staked-kind-allowlist"],
)
def test_posts_with_terms_read_from_their_events_equal_the_views(
    node: Anvil, deployment: Deployment, terms: Terms
) -> None:
    requester = client_of(node, deployment, 1)
    job, tx = requester.post_job_with_terms("echo-t", terms)
    assert _as_posted_by_events(tx) == _as_read(requester, [job])
