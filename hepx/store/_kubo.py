"""KuboStore: the content store on a Kubo (go-ipfs) node, over its RPC API.

Files go in through ``/api/v0/add`` with the options that give the same CIDs as the local
store (CIDv1, raw leaves, 256 KiB chunks); directories and CARs through ``/api/v0/dag/import``
after being built and verified locally. Reads walk blocks from ``/api/v0/block/get``, each
checked against its CID, except ``cat``, which streams ``/api/v0/cat`` from the node (the
node verified those blocks itself). Pins are kept both as Kubo pins (so the node's own gc
keeps them) and as local records that carry the expiry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from hepx.errors import BlockCorrupted, BlockNotFound, KuboError, StoreError
from hepx.store._cid import BlockId, block_id
from hepx.store._pins import Pin, Pins
from hepx.store._remote import IterReader
from hepx.store._store import GcReport, LocalStore

ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": "size-262144",
    "pin": "false",
    "progress": "false",
}
_TIMEOUT = httpx.Timeout(30.0, read=600.0)


class KuboBlocks:
    """Blocks read from a Kubo node, verified here against their CIDs."""

    def __init__(self, rpc: KuboRpc) -> None:
        self._rpc = rpc

    def has(self, bid: BlockId) -> bool:
        # offline: a block the node lacks is "not here", not a reason to search the network.
        resp = self._rpc.post("block/stat", {"arg": str(bid), "offline": "true"}, check=False)
        return resp.status_code == 200

    def get(self, bid: BlockId) -> bytes:
        resp = self._rpc.post("block/get", {"arg": str(bid), "offline": "true"}, check=False)
        if resp.status_code != 200:
            raise BlockNotFound(str(bid))
        data = resp.content
        digest = hashlib.sha256(data).digest()
        if digest != bid.digest:
            raise BlockCorrupted(str(bid), f"kubo sent {len(data)} bytes hashing to {digest.hex()}")
        return data


class KuboRpc:
    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v0/", timeout=_TIMEOUT, transport=transport
        )

    def post(
        self,
        command: str,
        params: dict[str, str] | None = None,
        *,
        files: Any = None,
        check: bool = True,
    ) -> httpx.Response:
        try:
            resp = self.http.post(command, params=params, files=files)
        except httpx.HTTPError as exc:
            raise KuboError(
                f"cannot reach kubo at {self.url} ({command}): {exc}; is the node running "
                "and HEPX_KUBO_URL its RPC address (port 5001)?"
            ) from exc
        if check and resp.status_code != 200:
            raise KuboError(f"kubo {command} failed ({resp.status_code}): {_message(resp)}")
        return resp

    def json_lines(self, resp: httpx.Response) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        except ValueError as exc:
            raise KuboError(f"kubo answered something that is not JSON: {exc}") from exc


def _message(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("Message", resp.text))
    except ValueError:
        return resp.text[:300]


class KuboStore(LocalStore):
    """The store API over a Kubo node; ``root`` only holds the pin records."""

    def __init__(
        self, url: str, root: Path, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.root = Path(root)
        self._fsync = True
        self.rpc = KuboRpc(url, transport)
        self._blocks = KuboBlocks(self.rpc)
        self.pins = Pins(self.root / "pins")

    def _added(self, resp: httpx.Response) -> str:
        lines = self.rpc.json_lines(resp)
        if not lines or "Hash" not in lines[-1]:
            raise KuboError(f"kubo add answered no CID: {resp.text[:300]}")
        return str(lines[-1]["Hash"])

    def add_stream(self, stream: BinaryIO) -> str:
        resp = self.rpc.post("add", ADD_PARAMS, files={"file": ("file", stream)})
        return self._added(resp)

    def add_file(self, path: Path) -> str:
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path} is not a regular file")
        with open(path, "rb") as stream:
            return self.add_stream(stream)

    def add_dir(self, path: Path) -> str:
        # Built with the local importer (CIDs identical to kubo's), shipped as one CAR.
        with tempfile.TemporaryDirectory(prefix="hepx-kubo-") as scratch:
            local = LocalStore(Path(scratch), fsync=False)
            cid = local.add_dir(Path(path))
            self._dag_import(local.export_car(cid))
        return cid

    def put_block(self, data: bytes, codec: str) -> str:
        params = {"cid-codec": codec, "mhtype": "sha2-256", "pin": "false"}
        resp = self.rpc.post("block/put", params, files={"data": ("block", data)})
        key = resp.json().get("Key")
        if not isinstance(key, str):
            raise KuboError(f"kubo block/put answered no Key: {resp.text[:300]}")
        return str(block_id(key))

    def cat(self, cid: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise StoreError(f"bad range: offset={offset} length={length}; both must be >= 0")
        if self.stat(cid).is_dir:
            raise StoreError(f"{cid} is a directory; use ls or get")
        params = {"arg": cid, "offset": str(offset)}
        if length is not None:
            params["length"] = str(length)
        resp = self.rpc.post("cat", params)
        return iter([resp.content])

    def import_car(self, stream: BinaryIO, *, root: str | None = None, path: str = "") -> list[str]:
        # Verify in a scratch store first (every block, completeness, the root), then hand
        # kubo a CAR of exactly the checked blocks.
        with tempfile.TemporaryDirectory(prefix="hepx-kubo-") as scratch:
            local = LocalStore(Path(scratch), fsync=False)
            roots = local.import_car(stream, root=root, path=path)
            for r in roots:
                self._dag_import(local.export_car(r))
        return roots

    def _dag_import(self, car: Iterator[bytes]) -> None:
        body = IterReader(car)
        self.rpc.post("dag/import", {"pin-roots": "false"}, files={"file": ("dag.car", body)})

    def pin(self, name: str, cid: str, expires_at: float | None = None) -> Pin:
        block_id(cid)
        self.rpc.post("pin/add", {"arg": cid, "recursive": "true"})
        return self.pins.set(name, cid, expires_at)

    def unpin(self, name: str) -> bool:
        pin = self.pins.get(name)
        if pin is None:
            return False
        self.pins.remove(name)
        if all(p.cid != pin.cid for p in self.pins.list()):  # another name may hold it
            self.rpc.post("pin/rm", {"arg": pin.cid, "recursive": "true"}, check=False)
        return True

    def gc(self, now: float | None = None) -> GcReport:
        """Unpin expired pins on the node; the node's own gc (``ipfs repo gc``) frees blocks."""
        now = time.time() if now is None else now
        expired = [p for p in self.pins.list() if p.expires_at is not None and p.expires_at <= now]
        for pin in expired:
            self.unpin(pin.name)
        shutil.rmtree(self.root / "staging", ignore_errors=True)
        return GcReport(
            kept=len(self.pins.list()), removed=0, bytes_freed=0, expired=[p.name for p in expired]
        )
