"""The one place that turns settings into a content store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hepx.store._kubo import KuboStore
from hepx.store._remote import GatewayFallback
from hepx.store._store import LocalStore

if TYPE_CHECKING:
    from hepx.config import Settings


def open_backend(settings: Settings) -> LocalStore:
    """The backend ``settings.store_backend`` names (KuboStore is a LocalStore over kubo)."""
    if settings.store_backend == "kubo":
        return KuboStore(settings.kubo_url, settings.store_path)
    return LocalStore(settings.store_path)


def open_store(settings: Settings, *, gateway: bool = True) -> LocalStore:
    """:func:`open_backend`; with ``settings.gateway_url`` set (and ``gateway``), content
    missing from it is fetched from that gateway, verified, on first read."""
    store = open_backend(settings)
    if gateway and settings.gateway_url:
        return GatewayFallback(store, settings.gateway_url)
    return store
