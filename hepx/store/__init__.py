"""Content store: IPFS-compatible UnixFS CIDs over a verified local blockstore or a kubo node.

CIDs equal those of ``ipfs add --cid-version=1 --raw-leaves`` (Kubo) and of
js-ipfs-unixfs-importer's defaults, so any IPFS node can serve or check what hepx stores.
Get a store from settings with :func:`open_store`; every backend is a :class:`ContentStore`.
"""

from hepx.store._api import ContentStore
from hepx.store._car import CarReader
from hepx.store._cid import parse_cid
from hepx.store._importer import CHUNK_SIZE, MAX_LINKS, cid_of_bytes
from hepx.store._kubo import KuboStore
from hepx.store._open import open_backend, open_store
from hepx.store._pins import Pin
from hepx.store._remote import CAR_MEDIA, RAW_MEDIA, GatewayFallback, fetch_dag, push_dag
from hepx.store._store import Entry, GcReport, LocalStore, VerifyReport

__all__ = [
    "CAR_MEDIA",
    "CHUNK_SIZE",
    "MAX_LINKS",
    "RAW_MEDIA",
    "VerifyReport",
    "CarReader",
    "ContentStore",
    "Entry",
    "GatewayFallback",
    "GcReport",
    "KuboStore",
    "LocalStore",
    "Pin",
    "cid_of_bytes",
    "fetch_dag",
    "open_backend",
    "open_store",
    "parse_cid",
    "push_dag",
]
