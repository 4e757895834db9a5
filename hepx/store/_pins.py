"""Pins: named roots that garbage collection keeps, each until an expiry time or for good.

One small JSON file per pin (``<dir>/<name>.json``: cid, expires_at) written atomically, so
concurrent agents pinning different jobs never rewrite each other's pins.
"""

from __future__ import annotations

import builtins
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from hepx.errors import StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    cid: str
    expires_at: float | None  # epoch seconds; None keeps it until unpinned


class Pins:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise StoreError(
                f"bad pin name {name!r}: use letters, digits, '.', '_' or '-' (e.g. job-7-spec)"
            )
        return self.folder / f"{name}.json"

    def set(self, name: str, cid: str, expires_at: float | None = None) -> Pin:
        path = self._path(name)
        pin = Pin(name, cid, expires_at)
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            try:
                tmp.write_text(json.dumps(asdict(pin)))
            except FileNotFoundError:  # the first pin: its folder comes with it
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(asdict(pin)))
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot write pin {name} in {self.folder}: {exc}") from exc
        return pin

    def get(self, name: str) -> Pin | None:
        try:
            raw = json.loads(self._path(name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"pin file for {name} in {self.folder} is unreadable: {exc}") from exc
        return Pin(name, str(raw["cid"]), raw.get("expires_at"))

    def remove(self, name: str) -> bool:
        path = self._path(name)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def names(self) -> builtins.list[str]:
        """Every pin's name, sorted, without reading the pins (one folder listing)."""
        try:
            with os.scandir(self.folder) as entries:
                found = [e.name[:-5] for e in entries if e.name.endswith(".json")]
        except FileNotFoundError:
            return []
        return sorted(name for name in found if not name.startswith("."))

    def list(self) -> builtins.list[Pin]:
        return [pin for name in self.names() if (pin := self.get(name)) is not None]

    def expire(self, now: float) -> builtins.list[str]:
        """Remove pins whose time has passed; return their names."""
        gone = [p.name for p in self.list() if p.expires_at is not None and p.expires_at <= now]
        for name in gone:
            self.remove(name)
        return gone
