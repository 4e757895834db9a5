"""``hepx account new|import|list|show``: keys kept as encrypted keystores, never in plain text.

Every command that signs takes ``--account NAME`` (hepx/commands/_chain.py); a password comes
from a prompt or from the environment variable ``--password-env`` names.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from hepx.accounts import Keystores
from hepx.config import load_settings
from hepx.errors import AccountError

app = typer.Typer(help="Accounts: encrypted keystores that sign for you.", no_args_is_help=True)

PasswordEnvOpt = Annotated[
    str | None,
    typer.Option(
        help="Name of an environment variable holding the password (default: prompt)",
        envvar="HEPX_PASSWORD_ENV",
    ),
]


def keystores() -> Keystores:
    return Keystores(load_settings().keystore_path)


def secret_from(env_name: str | None, what: str, confirm: bool = False) -> str:
    """A secret from the environment variable ``env_name``, else from a hidden prompt; never
    from the command line, where it would land in the shell's history and the process list."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            typer.echo(f"error: the environment variable {env_name} holding the {what} is "
                       "unset or empty", err=True)  # fmt: skip
            raise typer.Exit(2)
        return value
    if not sys.stdin.isatty():
        typer.echo(f"error: no terminal to ask the {what} at: name an environment variable "
                   "holding it (--password-env / --key-env)", err=True)  # fmt: skip
        raise typer.Exit(2)
    return str(typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=confirm))


@app.command("new")
def new(name: str, password_env: PasswordEnvOpt = None) -> None:
    """Make a new random key, stored encrypted as NAME; prints its address."""
    password = secret_from(password_env, "password", confirm=True)
    try:
        address = keystores().create(name, password)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"account {name}: {address} (keystore {keystores().path(name)})")


@app.command("import")
def import_(
    name: str,
    key_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding the key (default: prompt)"),
    ] = None,
    password_env: PasswordEnvOpt = None,
) -> None:
    """Store an existing private key encrypted as NAME."""
    key = secret_from(key_env, "private key")
    password = secret_from(password_env, "password", confirm=True)
    try:
        address = keystores().create(name, password, private_key=key)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"account {name}: {address} (keystore {keystores().path(name)})")


@app.command("list")
def list_accounts(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account: name and address."""
    found = keystores().names()
    if as_json:
        typer.echo(json.dumps([{"name": n, "address": a} for n, a in found]))
        return
    if not found:
        typer.echo(f"no accounts in {keystores().folder}: `hepx account new NAME` makes one")
    for name, address in found:
        typer.echo(f"{name}\t{address}")


@app.command("show")
def show(name: str) -> None:
    """An account's address and keystore file (the key stays encrypted)."""
    store = keystores()
    try:
        address = store.address(name)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"name": name, "address": address, "keystore": str(store.path(name))}))
