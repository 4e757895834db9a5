"""Accounts: private keys kept only as encrypted JSON keystores (Web3 Secret Storage, scrypt).

One folder (``<HEPX_HOME>/keystores``, or ``HEPX_KEYSTORE_DIR``) holds ``<name>.json`` per
account, written with mode 0600. A key is never stored in plain text: it is typed at a prompt
or read from an environment variable the caller names, and the password likewise.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_utils.address import to_checksum_address

from hepx.errors import AccountError
from hepx.files import write_atomic

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Keystores:
    """The accounts in ``folder``: create, import, list, unlock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise AccountError(
                f"account name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        return self.folder / f"{name}.json"

    def create(self, name: str, password: str, private_key: str | None = None) -> str:
        """Encrypt ``private_key`` (a new random one if None) as ``name``; its address."""
        path = self.path(name)
        if path.exists():
            raise AccountError(f"account {name!r} exists already ({path})")
        if not password:
            raise AccountError("an empty password would leave the key unprotected")
        try:
            account = Account.from_key(private_key) if private_key else Account.create()
        except (ValueError, TypeError) as exc:  # never echo the key itself
            raise AccountError(f"not a private key ({type(exc).__name__})") from None
        keystore = Account.encrypt(account.key, password)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps(keystore))
        os.chmod(path, 0o600)
        return str(account.address)

    def names(self) -> list[tuple[str, str]]:
        """(name, address) of every account, by name."""
        if not self.folder.is_dir():
            return []
        return [(p.stem, self.address(p.stem)) for p in sorted(self.folder.glob("*.json"))]

    def address(self, name: str) -> str:
        return str(to_checksum_address("0x" + str(self._read(name)["address"]).removeprefix("0x")))

    def unlock(self, name: str, password: str) -> str:
        """The account's private key (0x-hex), decrypted with ``password``."""
        try:
            key = Account.decrypt(self._read(name), password)
        except ValueError:
            raise AccountError(f"wrong password for account {name!r}") from None
        return "0x" + bytes(key).hex()

    def _read(self, name: str) -> dict[str, object]:
        path = self.path(name)
        try:
            data: dict[str, object] = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(n for n, _ in self.names()) or "none"
            raise AccountError(
                f"no account {name!r} in {self.folder} (accounts: {known}); "
                "make one with `hepx account new` or `hepx account import`"
            ) from None
        except (OSError, ValueError) as exc:
            raise AccountError(f"cannot read keystore {path}: {exc}") from exc
        if "crypto" not in data or "address" not in data:
            raise AccountError(f"{path} is not an encrypted keystore")
        return data
