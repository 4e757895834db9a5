"""The registry is the one list of kinds: the spec union, the digests, the runners and the
default policy are all built from it, so they cannot drift apart."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from agent.kinds import RUNNERS
from agent.policy import Policy
from hepx.digest import method_for
from hepx.errors import SpecError
from hepx.kinds import (
    CONTAINER_KINDS,
    KINDS,
    PER_TOKEN_KINDS,
    REGISTRY,
    Pricing,
    Sandbox,
    default_prices,
    kind,
)
from hepx.llm_server import write_local_policy
from hepx.spec import json_schema, parse_spec


@pytest.mark.parametrize("name", KINDS)
def test_each_entry_is_named_as_its_spec_models_kind(name: str) -> None:
    entry = REGISTRY[name]
    assert typing.get_args(entry.job.model_fields["kind"].annotation) == (name,)
    assert entry.params is entry.job.model_fields["params"].annotation
    assert method_for(name) == entry.digest


def test_the_spec_schema_offers_exactly_the_registered_kinds() -> None:
    schema = json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(KINDS)


def test_an_unknown_kind_is_refused_naming_every_registered_one() -> None:
    spec = {
        "apiVersion": "hepx/v1", "kind": "hep.madgraph", "metadata": {"name": "x"},
        "params": {}, "resources": {"max_runtime": 1},
        "payment": {"max_price": 1, "claim_window": 1, "run_window": 1},
    }  # fmt: skip
    with pytest.raises(SpecError) as refused:
        parse_spec(spec)
    assert f"expected one of: {', '.join(KINDS)}" in str(refused.value)
    with pytest.raises(SpecError, match="unknown kind 'hep.madgraph'"):
        kind("hep.madgraph")


def test_sandbox_and_pricing_sets_come_from_the_entries() -> None:
    assert {"container", "key4hep"} == CONTAINER_KINDS
    assert {"llm.chat", "llm.batch"} == PER_TOKEN_KINDS
    assert all(REGISTRY[k].sandbox is Sandbox.CONTAINER for k in CONTAINER_KINDS)
    assert set(RUNNERS) == {k for k in KINDS if REGISTRY[k].sandbox is Sandbox.PROCESS}


def test_default_policy_takes_every_kind_it_can_serve_at_the_registrys_asks() -> None:
    policy = Policy()
    served = {k for k in KINDS if REGISTRY[k].pricing is not Pricing.PER_TOKEN}
    assert set(policy.kinds) == served
    assert {k: p.price for k, p in policy.kinds.items()} == default_prices()


def test_local_llm_policy_takes_every_kind_including_the_llm_ones(tmp_path: Path) -> None:
    path = write_local_policy(tmp_path / "policy.yaml", "http://127.0.0.1:1/v1")
    policy = Policy.load(path)
    assert set(policy.kinds) == set(KINDS)
    assert policy.llm is not None
    assert yaml.safe_load(path.read_text())["kinds"]["hep.generate"]["price"] == 10**15
