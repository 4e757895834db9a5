"""``hepx store add|cat|get|ls|export|import|pin|unpin|pins|gc``: the content store from the
command line (the configured backend, or the local folder given by ``--store``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from hepx.config import load_settings
from hepx.errors import StoreError
from hepx.store import ContentStore, LocalStore, fetch_dag, open_store

app = typer.Typer(
    help="Content store: add files and directories, read them back by CID (IPFS-compatible).",
    no_args_is_help=True,
)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Local store folder (default: the configured backend, HEPX_STORE_BACKEND; "
        "local at HEPX_STORE_DIR or <HEPX_HOME>/store)",
    ),
]


def _open(store: Path | None) -> ContentStore:
    return LocalStore(store) if store else open_store(load_settings(), gateway=False)


def _resolve(store: ContentStore, ref: str) -> str:
    """CID of ``ref``: a CID, or ``CID/path/inside`` as in an IPFS path."""
    root, _, inner = ref.removeprefix("/ipfs/").partition("/")
    return store.resolve(root, inner) if inner.strip("/") else root


@contextmanager
def _errors() -> Iterator[None]:
    """Store errors become one line on stderr and exit code 1, not a traceback."""
    try:
        yield
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="File or directory to add")],
    store: StoreOption = None,
) -> None:
    """Add a file or a directory tree; print its CID."""
    with _errors():
        if not path.exists():
            raise StoreError(f"no such file or directory: {path}")
        typer.echo(_open(store).add_path(path))


@app.command("cat")
def cat(
    cid: Annotated[str, typer.Argument(help="CID of a file, or CID/path inside a directory")],
    offset: Annotated[int, typer.Option(help="First byte to print", min=0)] = 0,
    length: Annotated[int | None, typer.Option(help="Bytes to print (default: to the end)")] = None,
    store: StoreOption = None,
) -> None:
    """Write a file's bytes to stdout, verifying every block against its CID."""
    out = sys.stdout.buffer  # read at call time: test runners swap sys.stdout
    with _errors():
        try:
            opened = _open(store)
            for chunk in opened.cat(_resolve(opened, cid), offset, length):
                out.write(chunk)
            out.flush()
        except BrokenPipeError:  # the reader (e.g. `head`) has seen enough
            pass


@app.command("get")
def get(
    cid: Annotated[str, typer.Argument(help="CID of a file or directory")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Destination (default: ./<CID>)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Gateway URL to fetch from first (e.g. http://host:8000): the CAR it sends is "
            "verified block by block before anything is stored",
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write a file or a whole directory tree to disk."""
    with _errors():
        dest = output or Path(cid.replace("/", "_"))
        opened = _open(store)
        if source:
            root, _, inner = cid.removeprefix("/ipfs/").partition("/")
            fetch_dag(opened, source, root, inner)
        opened.get(_resolve(opened, cid), dest)
        typer.echo(f"saved {cid} to {dest}", err=True)


@app.command("ls")
def ls(
    cid: Annotated[str, typer.Argument(help="CID of a directory")],
    store: StoreOption = None,
) -> None:
    """List a directory: CID, size and name per entry (directories end in '/')."""
    with _errors():
        opened = _open(store)
        for entry in opened.ls(_resolve(opened, cid)):
            typer.echo(f"{entry.cid}\t{entry.size}\t{entry.name}{'/' if entry.is_dir else ''}")


@app.command("export")
def export(
    cid: Annotated[str, typer.Argument(help="CID (or CID/path) whose DAG to export")],
    store: StoreOption = None,
) -> None:
    """Write the DAG as a CAR v1 file to stdout (hepx store export CID > out.car)."""
    out = sys.stdout.buffer
    with _errors():
        root, _, inner = cid.removeprefix("/ipfs/").partition("/")
        try:
            for piece in _open(store).export_car(root, inner):
                out.write(piece)
            out.flush()
        except BrokenPipeError:
            pass


@app.command("import")
def import_(
    car: Annotated[Path, typer.Argument(help="CAR file to import ('-' for stdin)")],
    store: StoreOption = None,
) -> None:
    """Import a CAR: every block is verified, and nothing is stored unless all are."""
    with _errors():
        if str(car) == "-":
            roots = _open(store).import_car(sys.stdin.buffer)
        else:
            if not car.is_file():
                raise StoreError(f"no such file: {car}")
            with open(car, "rb") as stream:
                roots = _open(store).import_car(stream)
        for root in roots:
            typer.echo(root)


@app.command("pin")
def pin(
    name: Annotated[str, typer.Argument(help="Pin name, e.g. job-7-outputs")],
    cid: Annotated[str, typer.Argument(help="Root CID to keep")],
    ttl: Annotated[
        float | None, typer.Option(help="Seconds to keep it (default: until unpinned)", min=0)
    ] = None,
    store: StoreOption = None,
) -> None:
    """Keep a DAG through gc, for good or for --ttl seconds."""
    with _errors():
        _open(store).pin(name, cid, None if ttl is None else time.time() + ttl)


@app.command("unpin")
def unpin(
    name: Annotated[str, typer.Argument(help="Pin name")],
    store: StoreOption = None,
) -> None:
    """Remove a pin (its blocks go at the next gc unless another pin holds them)."""
    with _errors():
        if not _open(store).unpin(name):
            raise StoreError(f"no pin named {name!r}; `hepx store pins` lists them")


@app.command("pins")
def pins(store: StoreOption = None) -> None:
    """List pins: name, CID and expiry (UTC) or 'forever'."""
    with _errors():
        opened = _open(store)
        listed = opened.pins.list() if isinstance(opened, LocalStore) else []
        for p in listed:
            when = (
                "forever"
                if p.expires_at is None
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.expires_at))
            )
            typer.echo(f"{p.name}\t{p.cid}\t{when}")


@app.command("verify")
def verify(store: StoreOption = None) -> None:
    """Check every block against its CID, every pinned DAG for completeness and the folders
    for leftovers of interrupted writes; exit 1 if anything is wrong. Run it while nothing
    writes to the store (an add in progress shows as a temporary file)."""
    with _errors():
        opened = _open(store)
        if not isinstance(opened, LocalStore):
            raise StoreError("verify checks a local store: pass --store or use the local backend")
        report = opened.verify()
    mib = report.bytes / 2**20
    typer.echo(f"checked {report.blocks} blocks ({mib:.1f} MiB) under {opened.root}")
    for title, items, fix in (
        ("damaged", report.damaged, "add the file again or fetch it from a gateway to heal it"),
        ("missing", report.missing, "fetch the pinned DAG again (hepx store import a CAR)"),
        ("debris", report.debris, "`hepx store gc` removes it once it is an hour old"),
    ):
        if items:
            typer.echo(f"{len(items)} {title} ({fix}):", err=True)
            for item in items:
                typer.echo(f"  {item}", err=True)
    if report.unreferenced:
        typer.echo(f"{len(report.unreferenced)} unreferenced packs (`hepx store gc` reclaims them)")
    if not report.ok:
        raise typer.Exit(1)
    typer.echo("store is clean")


@app.command("gc")
def gc(store: StoreOption = None) -> None:
    """Drop expired pins and delete every block that no pin reaches."""
    with _errors():
        report = _open(store).gc()
        typer.echo(
            f"kept {report.kept} blocks, removed {report.removed} ({report.bytes_freed} bytes); "
            f"expired pins: {', '.join(report.expired) or 'none'}"
        )
