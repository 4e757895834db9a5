"""Bytes on disk under a folder (for the store-size metrics of the API and the agents)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def dir_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (0 if it does not exist)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # a file renamed or removed while walking
                total += os.stat(os.path.join(folder, name)).st_size
    return total
