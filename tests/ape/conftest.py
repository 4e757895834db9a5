"""Ape-style contract tests, run by `ape test` in the Ape venv (scripts/ape_check.sh).

The project's own pytest run (no Ape installed) skips this folder: Ape pins web3 7, which
cannot share the runtime venv with web3 8.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ape") is None:
    collect_ignore_glob = ["*.py"]
