"""``/ipfs``: store a file, and an IPFS-style gateway to the content store.

``GET /ipfs/{cid}[/path]`` serves files (Range supported) and directory listings; with
``?format=raw`` / ``?format=car`` or an ``Accept`` of ``application/vnd.ipld.raw`` /
``application/vnd.ipld.car`` (the query wins) it answers as an IPFS trustless gateway: one raw
block or the DAG as a CAR. A client verifies those by hashing, so it need not trust this
server; ``hepx store get --from URL`` does exactly that.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import tempfile
from collections.abc import Iterator
from typing import Annotated, BinaryIO, cast

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.access import Credentials, token_for, uploading
from api.errors import ERROR_RESPONSES, RangeNotSatisfiable
from api.limits import check_size
from api.models import CidOut, DirEntryOut, DirListingOut
from api.services import Services, ServicesDep
from hepx.api_tokens import Scope
from hepx.errors import BlockCorrupted, BlockNotFound, InvalidCar, StoreError
from hepx.store import CAR_MEDIA, RAW_MEDIA, ContentStore

log = logging.getLogger("hepx.api")

_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_IMMUTABLE = "public, max-age=29030400, immutable"
_FORMATS = {"raw": RAW_MEDIA, "car": CAR_MEDIA}

router = APIRouter()


def _add_spooled(services: Services, spool: BinaryIO, size: int, car: bool) -> CidOut:
    spool.seek(0)
    if car:
        # Verified block by block and kept only if the DAG under its one root is complete:
        # a worker on another host publishes its result folder this way, CIDs unchanged.
        try:
            roots = services.store().import_car(spool)
        except BlockCorrupted as exc:  # a bad block in the upload, not in the store
            raise InvalidCar(f"the uploaded CAR holds a {exc}; nothing was stored") from exc
        if len(roots) != 1:
            raise InvalidCar(f"a CAR upload needs exactly one root, this one has {len(roots)}")
        cid = roots[0]
    else:
        cid = services.store().add_stream(spool)
    log.info("stored cid=%s size=%d car=%s", cid, size, car)
    return CidOut(cid=cid, size=size)


@router.post(
    "/ipfs",
    status_code=201,
    summary="Store the request body as a file, or a CAR's DAG; answers its (root) CID",
    description="With `Content-Type: application/vnd.ipld.car` the body is a CAR v1 with one "
    "root: every block is checked against its CID and nothing is kept unless the DAG under "
    "the root is complete. Any other body is stored as one file (UnixFS, CIDv1, raw leaves).",
    response_model=CidOut,
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                CAR_MEDIA: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def post_ipfs(request: Request, services: ServicesDep, credentials: Credentials) -> CidOut:
    token = token_for(services, credentials, Scope.STORE)  # before a byte is read
    # Spool to disk past a few MiB so a large upload does not sit in memory.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        size = 0
        limit = services.settings.max_upload_bytes
        async for chunk in request.stream():
            size += len(chunk)
            check_size(size, limit, "an upload")  # before a byte over the limit is kept
            spool.write(chunk)
        car = request.headers.get("content-type", "").split(";")[0].strip() == CAR_MEDIA
        with uploading(services, token, size):
            return await run_in_threadpool(_add_spooled, services, cast(BinaryIO, spool), size, car)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` (inclusive) of a single ``bytes=`` range; None to serve everything."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multipart ranges: RFC 9110 lets us send the whole file
    first_text, sep, last_text = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first_text == "":  # suffix: the last N bytes
            length = int(last_text)
            if length <= 0:
                raise RangeNotSatisfiable
            return max(size - length, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None  # a malformed Range header is ignored
    if first < 0 or first > last:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return first, min(last, size - 1)


def _stream(cid: str, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    try:
        yield from rest
    except BlockCorrupted:
        # Headers are gone already: cut the connection so the client sees a short body
        # rather than wrong bytes.
        log.error("aborting stream: corrupted block under cid=%s", cid)
        raise


def _listing(cid: str, ipfs_path: str, services: Services, request: Request) -> Response:
    entries = [
        DirEntryOut(
            name=e.name, cid=str(e.cid), size=int(e.size), type="directory" if e.is_dir else "file"
        )
        for e in services.store().ls(cid)
    ]
    headers = {"X-Ipfs-Path": ipfs_path, "Etag": f'"{cid}"', "Cache-Control": _IMMUTABLE}
    if "text/html" in request.headers.get("accept", ""):
        rows = "".join(
            f'<tr><td><a href="{html.escape(ipfs_path.rstrip("/") + "/" + e.name)}">'
            f"{html.escape(e.name)}</a></td><td>{e.size}</td>"
            f"<td><code>{html.escape(e.cid)}</code></td></tr>"
            for e in entries
        )
        page = (
            f"<!doctype html><title>{html.escape(ipfs_path)}</title>"
            f"<h1>{html.escape(ipfs_path)}</h1><table><tr><th>name</th><th>size</th>"
            f"<th>cid</th></tr>{rows}</table>"
        )
        return HTMLResponse(page, headers=headers)
    return JSONResponse(DirListingOut(cid=cid, entries=entries).model_dump(), headers=headers)


def _serve(cid: str, path: str, request: Request, services: Services) -> Response:
    store = services.store()
    if fmt := requested_format(request):  # ?format=raw|car: verifiable responses
        return serve_format(fmt, cid, path, request, store)
    ipfs_path = f"/ipfs/{cid}" + (f"/{path.strip('/')}" if path.strip("/") else "")
    try:
        target = store.resolve(cid, path) if path.strip("/") else cid
        entry = store.stat(target)
    except BlockNotFound as exc:
        # The missing block may be a child, and CIDv0 is reported in its v1 form: say both.
        raise HTTPException(404, f"{ipfs_path}: {exc}") from exc
    if entry.is_dir:
        return _listing(str(target), ipfs_path, services, request)
    target = str(target)
    etag = f'"{target}"'
    headers = {
        "X-Ipfs-Path": ipfs_path,
        "Etag": etag,
        "Cache-Control": _IMMUTABLE,
        "Accept-Ranges": "bytes",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    size = int(entry.size)
    try:
        byte_range = _parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status = 200
    offset, length = 0, size
    if byte_range is not None:
        first, last = byte_range
        offset, length = first, last - first + 1
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)
    name = path.rstrip("/").rsplit("/", 1)[-1] if path.strip("/") else ""
    media_type = (mimetypes.guess_type(name)[0] if name else None) or "application/octet-stream"
    chunks = iter(store.cat(target, offset=offset, length=length))
    # Read (and verify) the first block before any header goes out, so a damaged store
    # answers an error status instead of a 200 with a broken body.
    first_chunk = next(chunks, b"")
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        _stream(target, first_chunk, chunks),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


CidParam = Annotated[
    str, PathParam(description="A CID (CIDv1 base32 such as bafy..., or CIDv0 Qm...)")
]


@router.get(
    "/ipfs/{cid}",
    summary="A stored file's bytes (Range supported) or a directory's listing",
    responses={**ERROR_RESPONSES, 206: {"description": "Partial content (Range)"}},
)
@router.head("/ipfs/{cid}", include_in_schema=False)
def get_ipfs(request: Request, cid: CidParam, services: ServicesDep) -> Response:
    return _serve(cid, "", request, services)


@router.get(
    "/ipfs/{cid}/{path:path}",
    summary="A file or directory by path inside a stored directory",
    responses={**ERROR_RESPONSES, 206: {"description": "Partial content (Range)"}},
)
@router.head("/ipfs/{cid}/{path:path}", include_in_schema=False)
def get_ipfs_path(request: Request, path: str, cid: CidParam, services: ServicesDep) -> Response:
    return _serve(cid, path, request, services)


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
