"""Fetching DAGs from an IPFS trustless gateway without trusting it.

The gateway sends a CAR (``GET /ipfs/{cid}[/path]?format=car``); every block is hashed against
its CID and the DAG must be complete under the requested root before anything is stored, so a
gateway that sends wrong bytes, leaves blocks out or answers for another root is caught.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import httpx

from hepx.errors import GatewayError, StoreError
from hepx.http_client import kept_client
from hepx.store._cid import block_id
from hepx.store._store import Entry, GcReport, LocalStore

if TYPE_CHECKING:
    from hepx.store._api import ContentStore
    from hepx.store._pins import Pin

CAR_MEDIA = "application/vnd.ipld.car"
RAW_MEDIA = "application/vnd.ipld.raw"
_TIMEOUT = httpx.Timeout(30.0, read=300.0)


class IterReader:
    """A minimal binary reader over an iterator of byte chunks (an HTTP body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            piece = next(self._chunks, b"")
            if not piece:
                break
            self._buf += piece
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def fetch_dag(
    store: ContentStore,
    gateway: str,
    cid: str,
    path: str = "",
    *,
    client: httpx.Client | None = None,
) -> str:
    """Fetch ``cid`` (or ``cid/path``) from ``gateway`` into ``store``; return the CID that
    ``path`` names. Nothing is stored unless every block checks out."""
    block_id(cid)  # a bad CID is the caller's mistake, not the gateway's
    inner = path.strip("/")
    url = f"{gateway.rstrip('/')}/ipfs/{cid}{'/' + inner if inner else ''}"
    own = client is None
    http = client or httpx.Client(timeout=_TIMEOUT, follow_redirects=True)
    try:
        with http.stream(
            "GET", url, params={"format": "car"}, headers={"Accept": CAR_MEDIA}
        ) as resp:
            if resp.status_code != 200:
                detail = resp.read()[:300].decode("utf-8", "replace")
                raise GatewayError(
                    f"gateway {gateway} answered {resp.status_code} for {cid}"
                    f"{'/' + inner if inner else ''}: {detail}"
                )
            reader: BinaryIO = IterReader(resp.iter_bytes())  # type: ignore[assignment]
            try:
                store.import_car(reader, root=cid, path=inner)
            except GatewayError:
                raise
            except StoreError as exc:
                raise GatewayError(
                    f"gateway {gateway} sent bad data for {cid}: {exc}; nothing was stored"
                ) from exc
    except httpx.HTTPError as exc:
        raise GatewayError(f"cannot fetch {cid} from gateway {gateway}: {exc}") from exc
    finally:
        if own:
            http.close()
    return store.resolve(cid, inner) if inner else cid


def push_dag(
    store: ContentStore,
    api: str,
    cid: str,
    *,
    attempts: int = 3,
    pause: float = 1.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Send the DAG under ``cid`` to a hepx API (``POST /ipfs`` with a CAR), which checks every
    block and keeps nothing unless the DAG is complete. A worker on another host publishes its
    results this way, so requesters reach them through the API's gateway. A lost connection is
    retried: the upload is idempotent (content-addressed). ``headers`` carry the worker's API
    token where the API asks for one (HEPX_API_TOKEN)."""
    url = f"{api.rstrip('/')}/ipfs"
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            resp = kept_client().post(
                url, content=store.export_car(cid),
                headers={**(headers or {}), "Content-Type": CAR_MEDIA}, timeout=_TIMEOUT,
            )  # fmt: skip
        except httpx.TransportError as exc:
            problem = f"cannot reach {url}: {exc}"
        else:
            if resp.status_code == 201:
                stored = resp.json().get("cid")
                if stored != cid:
                    raise GatewayError(f"{url} stored {stored} when sent the DAG of {cid}")
                return
            problem = f"{url} answered {resp.status_code}: {resp.text[:300]}"
            if resp.status_code < 500:
                break  # refused: sending it again cannot help
        if attempt < attempts:
            time.sleep(pause * attempt)
    raise GatewayError(f"could not publish {cid}: {problem}")


class GatewayFallback(LocalStore):
    """A store that fetches (verified) from a gateway whatever it lacks, on first read.

    Lets a worker on another machine run jobs whose spec and inputs were added elsewhere.
    It is a LocalStore over the same blocks as ``inner`` so code typed for LocalStore takes
    it; every public method goes through ``inner`` (which may be a KuboStore).
    """

    def __init__(self, inner: LocalStore, gateway: str) -> None:
        self.inner = inner
        self.gateway = gateway
        self.root, self._fsync, self.pins = inner.root, inner._fsync, inner.pins
        self._blocks = inner._blocks

    def _ensure(self, cid: str) -> None:
        if not self.inner.has(cid):
            fetch_dag(self.inner, self.gateway, cid)

    def has(self, cid: str) -> bool:
        try:
            self._ensure(cid)
        except GatewayError:
            return False
        return True

    def read_bytes(self, cid: str) -> bytes:
        self._ensure(cid)
        return self.inner.read_bytes(cid)

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        self._ensure(cid)
        return self.inner.cat(cid, offset, length)

    def get(self, cid: str, dest: Path) -> None:
        self._ensure(cid)
        self.inner.get(cid, dest)

    def stat(self, cid: str) -> Entry:
        self._ensure(cid)
        return self.inner.stat(cid)

    # Everything else goes straight to the local store.

    def add_stream(self, stream: BinaryIO) -> str:
        return self.inner.add_stream(stream)

    def add_bytes(self, data: bytes) -> str:
        return self.inner.add_bytes(data)

    def add_file(self, path: Path) -> str:
        return self.inner.add_file(path)

    def add_dir(self, path: Path) -> str:
        return self.inner.add_dir(path)

    def add_path(self, path: Path) -> str:
        return self.inner.add_path(path)

    def put_block(self, data: bytes, codec: str) -> str:
        return self.inner.put_block(data, codec)

    def get_block(self, cid: str) -> bytes:
        return self.inner.get_block(cid)

    def ls(self, cid: str) -> list[Entry]:
        self._ensure(cid)
        return self.inner.ls(cid)

    def resolve(self, cid: str, path: str) -> str:
        self._ensure(cid)
        return self.inner.resolve(cid, path)

    def export_car(self, cid: str, path: str = "") -> Iterator[bytes]:
        return self.inner.export_car(cid, path)

    def import_car(self, stream: BinaryIO, *, root: str | None = None, path: str = "") -> list[str]:
        return self.inner.import_car(stream, root=root, path=path)

    def pin(self, name: str, cid: str, expires_at: float | None = None) -> Pin:
        return self.inner.pin(name, cid, expires_at)

    def unpin(self, name: str) -> bool:
        return self.inner.unpin(name)

    def gc(self, now: float | None = None) -> GcReport:
        return self.inner.gc(now)
