"""The one exception hierarchy of hepx.

Third-party errors are converted once, where they enter hepx (``raise X(...) from exc``), so
callers only ever catch these.
"""

from __future__ import annotations


class HepxError(Exception):
    """Root of every error hepx raises on purpose."""


class ConfigError(HepxError):
    """A setting, deployment file or policy file is missing or invalid."""


class ChainError(HepxError):
    """The chain could not be reached or answered something unexpected."""


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer (after retries)."""


class TxReverted(ChainError):
    """A transaction (or its simulation) reverted.

    ``error`` is the contract's custom error name (``JobMarketWrongState``) when it could be
    decoded, and ``args`` its decoded arguments.
    """

    def __init__(self, message: str, error: str | None = None, args: tuple[object, ...] = ()):
        super().__init__(message)
        self.error = error
        self.error_args = args


class StoreError(HepxError):
    """The content store refused or failed an operation."""


class BlockNotFound(StoreError):
    """No block (or file) is stored under this CID."""

    def __init__(self, cid: str):
        super().__init__(f"not in the store: {cid}")
        self.cid = cid


class BlockCorrupted(StoreError):
    """A stored block does not hash to its CID: it was tampered with or damaged."""

    def __init__(self, cid: str, detail: str = ""):
        super().__init__(f"block {cid} does not match its CID{': ' + detail if detail else ''}")
        self.cid = cid


class InvalidCid(StoreError):
    """A string is not a CID hepx can read."""


class SpecError(HepxError):
    """A job spec is malformed or fails validation."""


class PolicyError(HepxError):
    """A worker policy file is invalid."""


class ExecutionError(HepxError):
    """A job ran and failed (non-zero exit, timeout, missing output)."""


class EventIndexError(HepxError):
    """The local index of market events is unusable (another market's file, damaged file)."""
