"""``hepx store add|cat|get|ls``: the local content store from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from hepx.config import load_settings
from hepx.errors import StoreError
from hepx.store import LocalStore

app = typer.Typer(
    help="Content store: add files and directories, read them back by CID (IPFS-compatible).",
    no_args_is_help=True,
)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store folder (default: HEPX_STORE_DIR or <HEPX_HOME>/store)"),
]


def _open(store: Path | None) -> LocalStore:
    return LocalStore(store or load_settings().store_path)


def _resolve(store: LocalStore, ref: str) -> str:
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
    store: StoreOption = None,
) -> None:
    """Write a file or a whole directory tree to disk."""
    with _errors():
        dest = output or Path(cid.replace("/", "_"))
        opened = _open(store)
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
