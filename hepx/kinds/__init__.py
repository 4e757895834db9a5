"""The job kinds hepx knows: one module each, one line each in ``REGISTRY``.

Everything that depends on the kind is built from here: the spec union (hepx/spec.py), the
agent's runners (agent/kinds/), the digests (hepx/digest.py), container and token-priced kinds
and the default worker policy. Adding a kind is one module and one line below.
"""

from __future__ import annotations

from hepx.errors import SpecError
from hepx.kinds import (
    container,
    echo,
    hep_analyze,
    hep_generate,
    hep_merge,
    hep_pythia,
    key4hep,
    llm_batch,
    llm_chat,
)
from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox

REGISTRY: dict[str, Kind] = {
    k.name: k
    for k in (
        echo.KIND,
        hep_pythia.KIND,
        container.KIND,
        key4hep.KIND,
        hep_generate.KIND,
        hep_analyze.KIND,
        hep_merge.KIND,
        llm_chat.KIND,
        llm_batch.KIND,
    )
}
KINDS: tuple[str, ...] = tuple(REGISTRY)
CONTAINER_KINDS = frozenset(k.name for k in REGISTRY.values() if k.sandbox is Sandbox.CONTAINER)
PER_TOKEN_KINDS = frozenset(k.name for k in REGISTRY.values() if k.pricing is Pricing.PER_TOKEN)


def kind(name: str) -> Kind:
    """The registry entry of ``name``; SpecError naming the known kinds if there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise SpecError(f"unknown kind {name!r}; expected one of: {', '.join(KINDS)}") from None


def why_not_disputable(name: str | None) -> str | None:
    """Why a result of kind ``name`` cannot be disputed, or None if it can (a kind this hepx
    does not know is digested by its bytes, so it can)."""
    entry = REGISTRY.get(name or "")
    return entry.not_disputable if entry else None


def default_prices(*, with_llm: bool = False) -> dict[str, int]:
    """Kind -> ask (wei) of the default worker policy: every kind, except the token-priced
    ones unless the worker has an LLM endpoint (``with_llm``) to serve them."""
    return {
        k.name: k.default_price
        for k in REGISTRY.values()
        if with_llm or k.pricing is not Pricing.PER_TOKEN
    }


__all__ = [
    "CONTAINER_KINDS",
    "KINDS",
    "PER_TOKEN_KINDS",
    "REGISTRY",
    "DigestMethod",
    "Kind",
    "Pricing",
    "Sandbox",
    "default_prices",
    "kind",
    "why_not_disputable",
]
