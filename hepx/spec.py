"""Job specs: what a requester asks for, versioned (``apiVersion: hepx/v1``) and strict.

A spec is YAML or JSON. ``kind`` picks the runner and the model of ``params``; every model
forbids unknown keys, so a typo is an error rather than a silently ignored setting. The same
spec always serialises to the same bytes (``canonical_json``) and so to the same CID.

    apiVersion: hepx/v1
    kind: hep.pythia
    metadata: {name: dijet-13tev}
    params: {process: dijet, events: 1000, seed: 42}
    resources: {max_runtime: 600}
    payment: {max_price: "0.01 ether", claim_window: 300, run_window: 1800}

Each kind's model lives in its own module under hepx/kinds/ and is listed in the registry
there; the fields every spec shares are in hepx/spec_fields.py.
"""

from __future__ import annotations

import functools
import json
import operator
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from hepx.errors import SpecError
from hepx.kinds import KINDS, REGISTRY
from hepx.spec_fields import API_VERSION, InputRef, JobSpec, Metadata, Payment, Resources

__all__ = ["JobSpec", "canonical_json", "json_schema", "load_spec_file", "parse_spec"]

# The union of every kind's model, discriminated by ``kind``: built from the registry.
_AnyJob: Any = Annotated[
    functools.reduce(operator.or_, (k.job for k in REGISTRY.values())),
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[JobSpec] = TypeAdapter(_AnyJob)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys (the last one would silently win)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise SpecError(
                f"duplicate key {key!r} on line {key_node.start_mark.line + 1}: "
                "each key may appear once"
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


# Brackets deeper than this are refused before YAML reads them: PyYAML takes minutes on a
# body of 100,000 nested brackets (a request that ties up an API thread), and no spec needs it.
MAX_NESTING = 64
_TOO_DEEP = f"spec nests deeper than {MAX_NESTING} levels: flatten it"


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _json_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise SpecError(f"duplicate key {key!r}: remove one (the last would silently win)")
        seen[key] = value
    return seen


def parse_spec(data: dict[str, Any] | str | bytes) -> JobSpec:
    """Validate a spec given as a dict or as YAML/JSON text; raise SpecError listing problems."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"spec is not UTF-8 text: {exc}") from exc
    if isinstance(data, str):
        text = data
        # Counted over the text, strings included: a spec with 64 brackets open in a string
        # is refused too, which no real spec is.
        if _nesting(text) > MAX_NESTING:
            raise SpecError(_TOO_DEEP)
        try:
            data = json.loads(text, object_pairs_hook=_json_without_duplicates)
        except ValueError:  # not JSON: YAML (a superset) reads it or says what is wrong
            try:
                data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader's kin
            except yaml.YAMLError as exc:
                raise SpecError(f"spec is not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a mapping of fields, not {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(data)
    except RecursionError:  # a dict nested in Python, which no text bounded
        raise SpecError(_TOO_DEEP) from None
    except ValidationError as exc:
        problems = [_describe(err, data) for err in exc.errors()]
        raise SpecError("invalid job spec:\n" + "\n".join(f"  {p}" for p in problems)) from exc


def load_spec_file(path: str | Path) -> JobSpec:
    """Read and validate a spec file (YAML or JSON)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from exc
    try:
        return parse_spec(raw)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def canonical_json(spec: JobSpec) -> bytes:
    """The spec as canonical JSON: defaults filled in, keys sorted, no whitespace, UTF-8."""
    doc = spec.model_dump(mode="json", by_alias=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def json_schema() -> dict[str, Any]:
    """JSON Schema of a job spec (a union over kinds, discriminated by ``kind``)."""
    schema = _ADAPTER.json_schema(by_alias=True)
    schema["title"] = "hepx job spec"
    schema["description"] = (
        f"A job for the hepx market ({API_VERSION}); 'kind' selects the params model."
    )
    return schema


def _describe(err: Any, data: dict[str, Any]) -> str:
    """One problem as 'field.path: message', with the kind tag dropped from the path."""
    loc = list(err["loc"])
    kind = data.get("kind")
    if loc and loc[0] == kind:
        loc = loc[1:]
    path = ".".join(str(p) for p in loc)
    etype = err["type"]
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        given = "missing" if etype == "union_tag_not_found" else f"unknown kind {kind!r}"
        return f"kind: {given}; expected one of: {', '.join(KINDS)}"
    if etype == "extra_forbidden":
        return f"{path}: unknown field; check its spelling{_allowed_here(loc, kind)}"
    if loc == ["apiVersion"] and etype == "literal_error":
        return f"apiVersion: {err['input']!r} is not supported; this hepx reads {API_VERSION!r}"
    if etype == "value_error":
        msg = str(err["ctx"]["error"])
    elif etype == "missing":
        msg = "required field is missing"
    else:
        msg = err["msg"]
    if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
        name = _input_name(data, loc[1])
        if name:
            path += f" (input {name!r})"
    return f"{path}: {msg}" if path else msg


def _input_name(data: dict[str, Any], index: int) -> str | None:
    inputs = data.get("inputs")
    if isinstance(inputs, list) and index < len(inputs) and isinstance(inputs[index], dict):
        name = inputs[index].get("name")
        return name if isinstance(name, str) else None
    return None


def _allowed_here(loc: list[Any], kind: object) -> str:
    """' (allowed: a, b)' for the model that rejected the extra key, when it can be named."""
    models: dict[str, type[BaseModel]] = {
        "metadata": Metadata,
        "resources": Resources,
        "payment": Payment,
    }
    model: type[BaseModel] | None = None
    if len(loc) == 1:
        model = JobSpec
    elif len(loc) == 2 and loc[0] in models:
        model = models[loc[0]]
    elif len(loc) == 2 and loc[0] == "params" and isinstance(kind, str) and kind in REGISTRY:
        params = REGISTRY[kind].job.model_fields["params"].annotation
        model = params if isinstance(params, type) and issubclass(params, BaseModel) else None
    elif len(loc) == 3 and loc[0] == "inputs":
        model = InputRef
    if model is None:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items()]
    return f" (allowed: {', '.join(names)})"
