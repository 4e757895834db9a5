"""Job specs read from the store by CID and parsed once.

A CID names its bytes for good, so the spec parsed when a sweep was posted is the one each of
its jobs runs with: an agent read and validated every spec of a sweep when it saw the post and
again when each job started, and those reads were most of what a sweep's jobs cost the agent
besides their runs. Errors are not kept: a spec missing from the store now may arrive later.
"""

from __future__ import annotations

import functools
import logging

from hepx.errors import SpecError, StoreError
from hepx.spec import JobSpec, parse_spec
from hepx.store import LocalStore

log = logging.getLogger("hepx.agent")

# Specs kept: a few sweeps' worth (a spec is a few hundred bytes parsed).
_KEPT = 4096


class SpecCache:
    def __init__(self, store: LocalStore, size: int = _KEPT) -> None:
        self.store = store
        self.get = functools.lru_cache(maxsize=size)(self._read)

    def _read(self, cid: str) -> JobSpec:
        """The spec stored under ``cid``; StoreError or SpecError as reading it raises."""
        return parse_spec(self.store.read_bytes(cid))

    def for_job(self, job_id: int, cid: str) -> JobSpec | None:
        """The job's spec; None, the job declined with the reason logged, if it cannot be read
        or is not a valid spec."""
        try:
            return self.get(cid)
        except StoreError as exc:
            log.warning("event=declined job=%d reason=spec_unavailable error=%s", job_id, exc)
        except SpecError as exc:
            log.warning("event=declined job=%d reason=invalid_spec error=%s", job_id, exc)
        return None
