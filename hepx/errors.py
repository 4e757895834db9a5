"""The one exception hierarchy of hepx.

Third-party errors are converted once, where they enter hepx (``raise X(...) from exc``), so
callers only ever catch these.
"""

from __future__ import annotations


class HepxError(Exception):
    """Root of every error hepx raises on purpose."""


class ConfigError(HepxError):
    """A setting, deployment file or policy file is missing or invalid."""


class AccountError(ConfigError):
    """An account's keystore is missing, unreadable, already there, or its password is wrong."""


class ChainError(HepxError):
    """The chain could not be reached or answered something unexpected."""


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer (after retries)."""


class NoContract(ChainError):
    """No contract answers at the address (a stale deployment file, a restarted chain)."""


class NotMined(ChainError):
    """A transaction was sent but no receipt came within the time allowed."""


class TxDropped(ChainError):
    """A sent transaction vanished from the node unmined (dropped, or orphaned by a reorg)."""


class TxNotFound(ChainError):
    """The node knows no transaction (or receipt) by this hash."""


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


class InvalidCar(StoreError):
    """Bytes that are not a well-formed CAR v1 this store can take (the message says where)."""


class PathNotFound(StoreError):
    """A path does not exist inside a stored directory."""

    def __init__(self, cid: str, path: str, detail: str):
        super().__init__(f"{cid}/{path}: {detail}")
        self.cid = cid
        self.path = path


class GatewayError(StoreError):
    """A gateway could not be reached, refused, or sent data that fails verification."""


class KuboError(StoreError):
    """The Kubo node could not be reached or refused a request."""


class MalformedNode(ValueError):
    """Bytes that do not decode as dag-pb / UnixFS (the caller names the block).

    A ValueError, not a HepxError: the store turns it into BlockCorrupted or InvalidCar with
    the CID of the block, which only the caller knows."""


class SpecError(HepxError):
    """A job spec is malformed or fails validation."""


class DigestError(HepxError):
    """Outputs that cannot be digested (e.g. a ROOT file that does not open)."""


class PolicyError(HepxError):
    """A worker policy file is invalid."""


class ExecutionError(HepxError):
    """A job ran and failed (non-zero exit, timeout, missing output)."""


class EventIndexError(HepxError):
    """The local index of market events is unusable (another market's file, damaged file)."""


class WorkflowError(HepxError):
    """A workflow file that cannot run, or a run that cannot go on."""


class ApiUnavailable(WorkflowError):
    """The API did not answer (or answered 5xx): worth another try later."""
