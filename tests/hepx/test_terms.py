"""Payment terms in specs, their mapping to on-chain Terms, and Merkle allowlists."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hepx.allowlist import leaf, merkle_proof, merkle_root, verify
from hepx.chain import ZERO_BYTES32, MatchMode, kind_id
from hepx.errors import SpecError
from hepx.spec import canonical_json, parse_spec
from hepx.terms import terms_for

ADDRESSES = [f"0x{i:040x}" for i in range(1, 12)]


def _spec(**payment: Any) -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "echo",
        "metadata": {"name": "t"},
        "params": {"message": "hi"},
        "resources": {"max_runtime": 10},
        "payment": {"max_price": 1000, "claim_window": 30, "run_window": 60, **payment},
    }


def test_spec_without_terms_keeps_its_canonical_bytes_and_uses_the_fast_path() -> None:
    spec = parse_spec(_spec())
    assert b'"payment":{"claim_window":30,"max_price":1000,"run_window":60}' in canonical_json(spec)
    assert not spec.payment.uses_terms


def test_terms_for_maps_mode_replicas_default_quorum_stake_kind_and_allowlist() -> None:
    spec = parse_spec(_spec(replicas=5, min_stake="1 gwei", allowlist=ADDRESSES[:3]))
    terms = terms_for(spec)
    assert terms.mode == MatchMode.CLAIM
    assert (terms.replicas, terms.quorum, terms.reveal_window) == (5, 3, 300)
    assert terms.min_stake == 10**9 and terms.kind == kind_id("echo")
    assert terms.allowlist_root == merkle_root(ADDRESSES[:3])
    assert terms.escrow == 5000 and terms.token is None
    assert canonical_json(parse_spec(canonical_json(spec))) == canonical_json(spec)


def test_terms_without_stake_name_no_kind_so_unregistered_workers_may_take_the_job() -> None:
    assert terms_for(parse_spec(_spec(mode="auction"))).kind == ZERO_BYTES32
    # Replicas are drawn among staked workers that declared the kind.
    assert terms_for(parse_spec(_spec(replicas=3, reveal_window=20))).kind == kind_id("echo")


@pytest.mark.parametrize(
    ("payment", "message"),
    [
        ({"replicas": 3, "quorum": 1}, "quorum 1 does not fit 3 replicas"),
        ({"replicas": 9}, "less than or equal to 8"),
        ({"mode": "auction", "replicas": 3}, "an auction has one replica, not 3"),
        ({"reveal_window": 30}, "only for replicated jobs"),
        ({"token": "DAI"}, "write 'ETH' or an ERC-20 contract address"),
        ({"token": "0x" + "0" * 40}, "the zero address is not a token"),
        ({"allowlist": ["bob"]}, "allowlist entries are not addresses: bob"),
        ({"min_stake": "a lot"}, "cannot read amount"),
        ({"mode": "lottery"}, "'claim' or 'auction'"),
        ({"replicas": 2, "max_price": 2**88}, "at most 2**88-1 per replica"),
    ],
)
def test_bad_terms_are_refused_with_what_to_change(payment: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_spec(**payment))
    assert "payment" in str(err.value) and message in str(err.value)


def test_single_worker_allowlist_root_is_its_leaf_with_an_empty_proof() -> None:
    assert merkle_root(ADDRESSES[:1]) == leaf(ADDRESSES[0])
    assert merkle_proof(ADDRESSES[:1], ADDRESSES[0]) == []


def test_proof_for_an_address_outside_the_allowlist_is_refused() -> None:
    with pytest.raises(SpecError, match="not in the allowlist"):
        merkle_proof(ADDRESSES[:4], ADDRESSES[5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=11, unique=True), st.data())
def test_every_member_proves_membership_and_no_outsider_does(
    members: list[str], data: st.DataObject
) -> None:
    root = merkle_root(members)
    for member in members:
        assert verify(root, member, merkle_proof(members, member))
    outsiders = [a for a in ADDRESSES if a not in members]
    if outsiders:
        outsider = data.draw(st.sampled_from(outsiders))
        borrowed = merkle_proof(members, data.draw(st.sampled_from(members)))
        assert not verify(root, outsider, borrowed)
