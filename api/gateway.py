"""Trustless gateway responses for ``/ipfs/{cid}[/path]``: one raw block or the DAG as a CAR.

Follows the IPFS trustless gateway conventions: ``?format=raw`` / ``?format=car`` or an
``Accept`` of ``application/vnd.ipld.raw`` / ``application/vnd.ipld.car`` (the query wins).
A client verifies what it gets by hashing, so it need not trust this server; ``hepx store get
--from URL`` does exactly that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from hepx.errors import StoreError
from hepx.store import CAR_MEDIA, RAW_MEDIA, ContentStore

log = logging.getLogger("hepx.api")

_IMMUTABLE = "public, max-age=29030400, immutable"
_FORMATS = {"raw": RAW_MEDIA, "car": CAR_MEDIA}


def requested_format(request: Request) -> str | None:
    """'raw' or 'car' when the client asked for a verifiable response, else None."""
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in _FORMATS:
            raise HTTPException(
                400, f"unsupported format {fmt!r}: use format=raw (one block) or format=car"
            )
        return fmt
    for item in request.headers.get("accept", "").split(","):
        media = item.split(";")[0].strip().lower()
        for name, wanted in _FORMATS.items():
            if media == wanted:
                return name
    return None


def serve_format(fmt: str, cid: str, path: str, request: Request, store: ContentStore) -> Response:
    inner = path.strip("/")
    ipfs_path = f"/ipfs/{cid}" + (f"/{inner}" if inner else "")
    headers = {
        "X-Ipfs-Path": ipfs_path,
        "Cache-Control": _IMMUTABLE,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept",
    }
    if fmt == "raw":
        target = store.resolve(cid, inner) if inner else cid
        block = store.get_block(target)
        headers["Etag"] = f'"{target}.raw"'
        headers["Content-Disposition"] = f'attachment; filename="{target}.bin"'
        if request.headers.get("if-none-match") == headers["Etag"]:
            return Response(status_code=304, headers=headers)
        body = b"" if request.method == "HEAD" else block
        headers["Content-Length"] = str(len(block))
        return Response(body, headers=headers, media_type=RAW_MEDIA)
    pieces = store.export_car(cid, inner)  # checks the DAG is all here before answering
    headers["Etag"] = f'"{cid}{"/" + inner if inner else ""}.car"'
    headers["Content-Disposition"] = f'attachment; filename="{cid}.car"'
    if request.headers.get("if-none-match") == headers["Etag"]:
        return Response(status_code=304, headers=headers)
    media = f"{CAR_MEDIA}; version=1; order=dfs; dups=n"
    if request.method == "HEAD":
        return Response(headers=headers, media_type=media)
    return StreamingResponse(_guarded(cid, pieces), headers=headers, media_type=media)


def _guarded(cid: str, pieces: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from pieces
    except StoreError:
        # Headers are sent: cutting the connection leaves the client a truncated CAR, which
        # its import refuses, rather than a CAR that looks whole.
        log.error("aborting CAR stream: store failed under cid=%s", cid)
        raise
