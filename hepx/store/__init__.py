"""Content store: IPFS-compatible UnixFS CIDs over a verified local blockstore.

CIDs equal those of ``ipfs add --cid-version=1 --raw-leaves`` (Kubo) and of
js-ipfs-unixfs-importer's defaults, so any IPFS node can serve or check what hepx stores.
"""

from hepx.store._cid import parse_cid
from hepx.store._importer import CHUNK_SIZE, MAX_LINKS
from hepx.store._store import Entry, LocalStore, PathNotFound

__all__ = ["CHUNK_SIZE", "MAX_LINKS", "Entry", "LocalStore", "PathNotFound", "parse_cid"]
