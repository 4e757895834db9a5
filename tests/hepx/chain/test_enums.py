"""The Python enums are the contract's: generated from the compiled artifact, which the
compiler wrote from the Solidity source; the labels are the one spelling every API uses."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from hepx.chain import enums
from hepx.chain.enums import FINAL_STATE_LABELS, FINAL_STATES, JobState, PaymentReason

REPO = Path(__file__).resolve().parents[3]
SOURCES = [REPO / "contracts" / "interfaces" / f"{n}.sol" for n in ("IJobMarket", "IDisputeCourt")]
ARTIFACTS = REPO / "hepx" / "artifacts"
_ENUM_RE = re.compile(r"enum\s+(\w+)\s*\{(.*?)\}", re.S)


def _source_enums() -> dict[str, list[tuple[str, str]]]:
    """Enum -> [(member, its line comment)] read from the Solidity text itself."""
    found = {}
    text = "\n".join(source.read_text() for source in SOURCES)
    for name, body in _ENUM_RE.findall(text):
        members = []
        for line in body.splitlines():
            code, _, comment = line.partition("//")
            member = code.strip().rstrip(",")
            if member:
                members.append((member, comment.strip()))
        found[name] = members
    return found


@pytest.fixture(scope="module")
def compile_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hepx_compile", REPO / "scripts" / "compile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python_name(member: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", member).upper()


def test_artifact_enums_are_the_sources_members_in_order_with_their_comments() -> None:
    from_artifacts = {}
    for name in ("JobMarket", "DisputeCourt"):
        artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
        for enum, members in artifact["enums"].items():
            from_artifacts[enum] = [(m["name"], m["doc"]) for m in members]
    assert from_artifacts == _source_enums()


def test_generated_module_is_what_compile_renders_from_the_artifact(
    compile_script: ModuleType,
) -> None:
    artifacts = {p.name: p.read_text() for p in ARTIFACTS.glob("*.json")}
    assert compile_script.render_enums_module(artifacts) == Path(enums.__file__).read_text(), (
        "hepx/chain/enums.py is stale: run `make compile`"
    )


def test_python_members_match_the_source_names_and_values() -> None:
    for name, members in _source_enums().items():
        enum = getattr(enums, name)
        assert [m.value for m in enum] == list(range(len(members)))
        assert [m.name for m in enum] == [_python_name(m) for m, _ in members]


def test_final_states_are_the_ones_the_source_calls_final() -> None:
    final = {_python_name(m) for m, doc in _source_enums()["JobState"] if doc.startswith("final:")}
    assert {s.name for s in FINAL_STATES} == final
    assert {"settled", "cancelled", "expired", "no_quorum", "overturned"} == FINAL_STATE_LABELS
    assert JobState.NO_QUORUM.final and not JobState.REVEALING.final


def test_labels_round_trip_and_unknown_values_show_as_numbers() -> None:
    assert PaymentReason.SLASH.label == "slash"
    assert PaymentReason.from_label("stake_deposit") is PaymentReason.STAKE_DEPOSIT
    assert PaymentReason.label_of(6) == "stake_withdrawal"
    assert PaymentReason.label_of(99) == "99"  # a reason this hepx predates
