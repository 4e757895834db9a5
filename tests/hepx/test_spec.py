"""Job spec validation: good specs parse, each kind of mistake names its field."""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hepx.errors import SpecError
from hepx.kinds.echo import EchoJob
from hepx.kinds.hep_pythia import PythiaJob, PythiaProcess
from hepx.spec import JobSpec, canonical_json, json_schema, load_spec_file, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"  # "hello ipfs\n"
CID_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def good_spec() -> dict[str, Any]:
    return {
        "apiVersion": "hepx/v1",
        "kind": "hep.pythia",
        "metadata": {"name": "dijet-13tev", "labels": {"team": "qcd"}},
        "params": {"process": "dijet", "events": 100, "seed": 7},
        "inputs": [{"name": "events.txt", "cid": CID}],
        "resources": {"max_runtime": 600},
        "payment": {"max_price": "0.01 ether", "claim_window": 300, "run_window": 1800},
    }


def spec_error(data: dict[str, Any] | str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return str(info.value)


def with_change(path: str, value: Any) -> dict[str, Any]:
    """good_spec() with the value at dotted ``path`` replaced (or removed if value is ...)."""
    data = good_spec()
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_good_spec_parses_with_defaults_filled_in() -> None:
    spec = parse_spec(good_spec())
    assert isinstance(spec, PythiaJob)
    assert isinstance(spec, JobSpec)
    assert spec.params.process is PythiaProcess.DIJET
    assert spec.params.energy_gev == 13000
    assert spec.params.jet_radius == 0.4
    assert spec.payment.max_price_wei == 10**16
    assert spec.inputs[0].name == "events.txt"


def test_spec_parses_from_yaml_and_json_text_alike() -> None:
    from_yaml = parse_spec(yaml.safe_dump(good_spec()))
    from_json = parse_spec(json.dumps(good_spec()).encode())
    assert from_yaml == from_json == parse_spec(good_spec())


def test_echo_spec_needs_no_params() -> None:
    data = good_spec() | {"kind": "echo"}
    del data["params"]
    spec = parse_spec(data)
    assert isinstance(spec, EchoJob)
    assert spec.params.message == ""


def test_spec_is_frozen() -> None:
    spec = parse_spec(good_spec())
    with pytest.raises(ValueError):
        spec.metadata.name = "other"


@pytest.mark.parametrize(
    ("price", "wei"),
    [(1, 1), ("5 gwei", 5 * 10**9), ("0.01 ether", 10**16), ("1.5 ETHER", 15 * 10**17)],
)
def test_max_price_accepts_wei_and_units(price: Any, wei: int) -> None:
    spec = parse_spec(with_change("payment.max_price", price))
    assert spec.payment.max_price_wei == wei


@pytest.mark.parametrize(
    ("price", "fragment"),
    [
        ("1 bitcoin", "unit wei, gwei or ether"),
        ("ten ether", "not a number"),
        ("0.5 wei", "whole number of wei"),
        ("inf ether", "not a finite number"),
        (0, "more than 0 wei"),
        (-5, "negative"),
        (True, "write a price as wei"),
        (2**96, "too large"),
        ("80000000000 ether", "too large"),
    ],
)
def test_bad_price_names_payment_max_price(price: Any, fragment: str) -> None:
    message = spec_error(with_change("payment.max_price", price))
    assert "payment.max_price:" in message
    assert fragment in message


def test_unknown_kind_lists_known_kinds() -> None:
    message = spec_error(with_change("kind", "hep.madgraph"))
    assert "kind: unknown kind 'hep.madgraph'" in message
    assert "echo" in message and "hep.pythia" in message


def test_missing_kind_is_reported() -> None:
    assert "kind: missing" in spec_error(with_change("kind", ...))


def test_bad_api_version_says_which_version_is_read() -> None:
    message = spec_error(with_change("apiVersion", "hepx/v2"))
    assert "apiVersion: 'hepx/v2' is not supported" in message
    assert "hepx/v1" in message


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("colour", "apiVersion, kind"),
        ("params.evnts", "events"),
        ("payment.tip", "claim_window"),
        ("metadata.owner", "labels"),
        ("resources.gpus", "max_runtime"),
        ("inputs.0.size", "cid"),
    ],
)
def test_extra_key_is_an_error_naming_it_and_the_allowed_keys(path: str, allowed: str) -> None:
    message = spec_error(with_change(path, 1))
    assert f"{path}: unknown field" in message
    assert allowed in message


def test_bad_cid_names_the_input() -> None:
    data = good_spec()
    data["inputs"].append({"name": "b.txt", "cid": "bafkNOTACID"})
    message = spec_error(data)
    assert "inputs.1.cid (input 'b.txt'):" in message
    assert "not a valid CID" in message


def test_cid_v0_is_accepted() -> None:
    spec = parse_spec(with_change("inputs.0.cid", CID_V0))
    assert spec.inputs[0].cid == CID_V0


def test_duplicate_input_names_are_rejected() -> None:
    data = good_spec()
    data["inputs"].append({"name": "events.txt", "cid": CID_V0})
    message = spec_error(data)
    assert "inputs:" in message and "two inputs are named 'events.txt'" in message


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", ".hidden", "..", "", "a b"])
def test_unsafe_input_names_are_rejected(name: str) -> None:
    message = spec_error(with_change("inputs.0.name", name))
    assert "inputs.0.name" in message
    assert "not a safe file name" in message


@pytest.mark.parametrize("name", ["Dijet", "a" * 64, "x/y", ""])
def test_bad_metadata_name_is_rejected(name: str) -> None:
    assert "metadata.name:" in spec_error(with_change("metadata.name", name))


def test_run_window_shorter_than_max_runtime_is_rejected() -> None:
    message = spec_error(with_change("payment.run_window", 599))
    assert "payment.run_window: 599 s is shorter than resources.max_runtime (600 s)" in message


def test_run_window_equal_to_max_runtime_is_accepted() -> None:
    assert parse_spec(with_change("payment.run_window", 600)).payment.run_window == 600


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("resources.max_runtime", 0),
        ("resources.max_runtime", 7 * 86_400 + 1),
        ("params.seed", 0),
        ("params.seed", 900_000_001),
        ("params.events", 0),
        ("params.events", 1_000_001),
        ("params.energy_gev", 5),
        ("params.jet_radius", 2.0),
        ("params.pt_hat_min", -1),
        ("params.process", "HardQCD:all"),
        ("payment.claim_window", 0),
    ],
)
def test_out_of_range_values_name_their_field(path: str, value: Any) -> None:
    assert f"{path}:" in spec_error(with_change(path, value))


def test_missing_required_field_is_reported() -> None:
    assert "params.seed: required field is missing" in spec_error(with_change("params.seed", ...))


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("PartonLevel:MPI off", "is not a Pythia setting"),
        ("MPI = off", "is not a Pythia setting"),
        ("PartonLevel:MPI = ", "is not a Pythia setting"),
        ("PartonLevel:MPI = off\nRandom:seed = 1", "is not a Pythia setting"),
        ("Random:seed = 3", "set params.seed instead"),
        ("random:SEED=3", "set params.seed instead"),
        ("Main:numberOfEvents = 5", "set params.events instead"),
        ("Beams:eCM = 7000", "set params.energy_gev instead"),
    ],
)
def test_bad_pythia_setting_is_rejected(setting: str, fragment: str) -> None:
    data = with_change("params.settings", ["PartonLevel:ISR = on", setting])
    message = spec_error(data)
    assert "params.settings.1:" in message
    assert fragment in message


def test_good_pythia_settings_are_kept() -> None:
    settings = ["PartonLevel:MPI = off", "23:onMode = off", "HadronLevel:all=off"]
    spec = parse_spec(with_change("params.settings", settings))
    assert isinstance(spec, PythiaJob)
    assert spec.params.settings == settings


def test_several_problems_are_all_listed_one_per_line() -> None:
    data = with_change("params.seed", 0)
    data["payment"]["max_price"] = "1 bitcoin"
    message = spec_error(data)
    lines = message.splitlines()
    assert any(line.strip().startswith("params.seed:") for line in lines)
    assert any(line.strip().startswith("payment.max_price:") for line in lines)
    assert "pydantic" not in message and "errors.pydantic.dev" not in message


def test_echo_message_cannot_clash_with_an_input_named_message_txt() -> None:
    data = good_spec() | {"kind": "echo", "params": {"message": "hi"}}
    data["inputs"] = [{"name": "message.txt", "cid": CID}]
    assert "'message.txt' would clash" in spec_error(data)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("kind: [unclosed", "not valid YAML or JSON"),
        ("- a list", "must be a mapping"),
        ("kind: echo\nkind: hep.pythia\n", "duplicate key 'kind' on line 2"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_text_is_a_spec_error(text: str | bytes, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        parse_spec(text)


def test_load_spec_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(with_change("kind", "nope")))
    with pytest.raises(SpecError, match=f"{path}: invalid job spec"):
        load_spec_file(path)
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec_file(tmp_path / "missing.yaml")


def test_canonical_json_is_compact_sorted_and_round_trips() -> None:
    spec = parse_spec(good_spec())
    raw = canonical_json(spec)
    assert b" " not in raw.replace(b"0.01 ether", b"")
    doc = json.loads(raw)
    assert list(doc) == sorted(doc)
    assert doc["payment"]["max_price"] == 10**16
    assert doc["params"]["jet_radius"] == 0.4  # defaults are written out
    assert parse_spec(raw) == spec
    assert canonical_json(parse_spec(raw)) == raw


def test_canonical_json_of_equal_specs_is_identical() -> None:
    # Same content, different key order, spelling of the price and omitted defaults.
    data = good_spec()
    shuffled = {k: data[k] for k in reversed(list(data))}
    shuffled["params"] = {"seed": 7, "events": 100, "energy_gev": 13000.0, "process": "dijet"}
    shuffled["payment"] = dict(data["payment"], max_price=10**16)
    assert canonical_json(parse_spec(shuffled)) == canonical_json(parse_spec(data))


def test_canonical_json_differs_when_the_spec_differs() -> None:
    assert canonical_json(parse_spec(good_spec())) != canonical_json(
        parse_spec(with_change("params.seed", 8))
    )


@given(st.lists(st.sampled_from(list(good_spec())), unique=True), st.randoms())
def test_canonical_json_ignores_key_order(keys: list[str], rnd: random.Random) -> None:
    data = good_spec()
    order = keys + [k for k in data if k not in keys]
    rnd.shuffle(order)
    reordered = copy.deepcopy({k: data[k] for k in order})
    assert canonical_json(parse_spec(reordered)) == canonical_json(parse_spec(data))


def test_canonical_json_keeps_unicode_as_utf8() -> None:
    data = good_spec() | {"kind": "echo", "params": {"message": "Grüße ✓"}}
    raw = canonical_json(parse_spec(data))
    assert "Grüße ✓".encode() in raw


def test_json_schema_describes_both_kinds_and_their_fields() -> None:
    schema = json_schema()
    json.dumps(schema)  # serialisable
    assert schema["discriminator"]["propertyName"] == "kind"
    defs = schema["$defs"]
    for job in ("EchoJob", "PythiaJob"):
        props = defs[job]["properties"]
        assert {"apiVersion", "kind", "params", "payment"} <= set(props)
        assert defs[job]["additionalProperties"] is False
    assert defs["PythiaJob"]["properties"]["kind"]["const"] == "hep.pythia"
    seed = defs["PythiaParams"]["properties"]["seed"]
    assert seed["maximum"] == 900_000_000 and seed["description"]
    price = defs["Payment"]["properties"]["max_price"]
    assert {"integer", "string"} <= {alt["type"] for alt in price["anyOf"]}


@pytest.mark.parametrize("name", ["pythia-dijet.yaml", "echo.yaml"])
def test_example_specs_parse(name: str) -> None:
    spec = load_spec_file(EXAMPLES / name)
    assert spec.payment.run_window >= spec.resources.max_runtime


def test_pythia_example_is_the_documented_dijet_run() -> None:
    spec = load_spec_file(EXAMPLES / "pythia-dijet.yaml")
    assert isinstance(spec, PythiaJob)
    assert spec.params.process is PythiaProcess.DIJET
    assert (spec.params.energy_gev, spec.params.pt_hat_min) == (13000, 20)
    assert (spec.params.events, spec.params.seed) == (1000, 42)
    assert spec.payment.max_price_wei == 10**16


def test_resources_cpus_and_memory_stay_out_of_the_canonical_json_at_their_defaults() -> None:
    # So a spec written before slots existed keeps its CID.
    plain = canonical_json(parse_spec(good_spec()))
    spelled = canonical_json(parse_spec(with_change("resources.cpus", 1)))
    assert plain == spelled and b"cpus" not in plain and b"memory_mb" not in plain
    sized = parse_spec(with_change("resources", {"max_runtime": 600, "cpus": 4, "memory_mb": 2048}))
    assert b'"cpus":4' in canonical_json(sized) and b'"memory_mb":2048' in canonical_json(sized)


@pytest.mark.parametrize(
    ("field", "value"), [("cpus", 0), ("cpus", 4097), ("memory_mb", -1), ("cpus", "two")]
)
def test_bad_resources_name_the_field(field: str, value: Any) -> None:
    assert f"resources.{field}" in spec_error(with_change(f"resources.{field}", value))


@pytest.mark.parametrize(
    "text",
    [
        '{"params": ' * 100_000 + "{}" + "}" * 100_000,
        '{"kind": "echo", "params": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "params:\n  a: " + "[" * 100_000 + "]" * 100_000,
    ],
    ids=["json-objects", "json-lists", "yaml-flow"],
)
def test_deeply_nested_spec_is_refused_at_once_not_parsed_for_minutes(text: str) -> None:
    # PyYAML needed 92 s for 100,000 nested brackets: one request held an API thread.
    started = time.monotonic()
    with pytest.raises(SpecError, match="nests deeper than 64 levels"):
        parse_spec(text)
    assert time.monotonic() - started < 30  # a bound, not a timing


def test_duplicate_key_in_a_json_spec_is_refused() -> None:
    with pytest.raises(SpecError, match="duplicate key 'kind'"):
        parse_spec('{"kind": "echo", "kind": "hep.pythia"}')
