"""What the routes share: settings, the deployment, one MarketClient, the store and the
event index, owned here and reached by routes through ``Depends``.

The deployment file is read lazily and re-read when it changes, so the API starts before the
contracts are deployed and follows a redeploy without a restart. The index (hepx.index) is a
cache of the chain, kept fresh by a background thread that the app's lifespan starts and stops;
routes also top it up on demand (throttled), so an app without the thread (tests) answers
fresh data too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from api.chainview import ChainView
from hepx.api_tokens import TokenBook
from hepx.chain import SETTLE_GAS, CourtClient, JobState, MarketClient, RequestDeskClient, lapsed
from hepx.config import Settings
from hepx.deployment import Deployment
from hepx.errors import ConfigError, EventIndexError, HepxError, StoreError, TxReverted
from hepx.index import MAX_PER_PAGE, MarketIndex
from hepx.store import LocalStore, open_backend

log = logging.getLogger("hepx.api")

# An API request should fail fast when the chain is down, not after the client's long backoff.
_RPC_RETRIES = 3
_RPC_BACKOFF = 0.2
_REFRESH_AGE = 0.5
# Seconds between the API's rounds of refunding its own lapsed jobs (expire_lapsed).
_KEEPER_INTERVAL = 5.0


class Services:
    """What the routes share: settings, the deployment, one MarketClient and the store.

    The deployment file is read lazily and re-read when it changes, so the API starts before
    the contracts are deployed and follows a redeploy without a restart.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._deployment: Deployment | None = None
        self._deployment_mtime: int | None = None
        self._client: MarketClient | None = None
        self._court: CourtClient | None = None
        self._desk: RequestDeskClient | None = None
        self._chain_checked = False
        self._store: LocalStore | None = None
        self.index = IndexService(self)
        self.tokens = TokenBook(settings.tokens_file)

    def deployment(self) -> Deployment:
        path = self.settings.deployment_path
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = None
        with self._lock:
            if self._deployment is None or mtime != self._deployment_mtime:
                self._deployment = Deployment.load(path)  # ConfigError says what to do
                self._deployment_mtime = mtime
                self._client = None
                self._court = None
                self._desk = None
                self._chain_checked = False
            return self._deployment

    def client(self) -> MarketClient:
        deployment = self.deployment()
        with self._lock:
            if self._client is None:
                key = self.settings.private_key
                try:
                    self._client = MarketClient(
                        self.settings.rpc_url,
                        deployment.job_market,
                        key.get_secret_value() if key else None,
                        retries=_RPC_RETRIES,
                        backoff=_RPC_BACKOFF,
                    )
                except ValueError as exc:  # the key; never echo it
                    raise ConfigError(
                        "HEPX_PRIVATE_KEY is not a valid private key: expected 32 bytes as hex"
                    ) from exc
            return self._client

    def checked_client(self) -> MarketClient:
        """The client, after checking once that the RPC serves the deployment's chain."""
        client = self.client()
        if not self._chain_checked:
            deployment = self.deployment()
            chain_id = client.chain_id()
            if chain_id != deployment.chain_id:
                raise ConfigError(
                    f"RPC {self.settings.rpc_url} serves chain {chain_id} but the deployment "
                    f"file {self.settings.deployment_path} is for chain {deployment.chain_id}: "
                    "point HEPX_RPC_URL at the right chain or redeploy"
                )
            self._chain_checked = True
        return client

    def court(self) -> CourtClient:
        """The market's dispute court, signing with the API's key (if it has one)."""
        client = self.client()
        with self._lock:
            if self._court is None:
                self._court = CourtClient.of_market(client)
            return self._court

    def desk(self) -> RequestDeskClient:
        """The market's request desk; the API's key relays signed requests (it pays gas)."""
        client = self.client()
        with self._lock:
            if self._desk is None:
                self._desk = RequestDeskClient.of_market(client)
            return self._desk

    def store(self) -> LocalStore:
        with self._lock:
            if self._store is None:
                self._store = open_backend(self.settings)  # HEPX_STORE_BACKEND picks it
            return self._store


class IndexService:
    """One MarketIndex for the current deployment, kept fresh by a background thread."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._index: MarketIndex | None = None
        self._market: str | None = None
        self._view: ChainView | None = None
        self.last_sync = 0.0
        self.last_error: str | None = None
        self.lost_since: float | None = None  # when the index last lost the chain
        self.last_keeper = 0.0
        self.head: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kind_of(self, spec_cid: str) -> str | None:
        """The kind a spec in this store names (None: not here, or not a spec)."""
        try:
            spec = json.loads(self.services.store().read_bytes(spec_cid))
        except (StoreError, ValueError):
            return None  # not in this store, or not JSON: the kind stays unknown
        kind = spec.get("kind") if isinstance(spec, dict) else None
        return str(kind) if kind else None

    def index(self) -> MarketIndex:
        deployment = self.services.deployment()
        client = self.services.checked_client()
        with self._lock:
            if self._index is None or self._market != deployment.job_market:
                path = self.services.settings.index_file
                try:
                    index = MarketIndex(
                        path,
                        client,
                        deployment.deploy_block,
                        kind_of=self.kind_of,
                        confirmations=self.services.settings.confirmations,
                    )
                except EventIndexError as exc:
                    # The index is a cache of the chain: one for another market is rebuilt.
                    log.warning("event=index_reset path=%s reason=%s", path, exc)
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{path}{suffix}").unlink(missing_ok=True)
                    index = MarketIndex(
                        path,
                        client,
                        deployment.deploy_block,
                        kind_of=self.kind_of,
                        confirmations=self.services.settings.confirmations,
                    )
                self._index, self._market = index, deployment.job_market
                self._view = ChainView(client)
            return self._index

    def posted_block(self, job_id: int) -> int | None:
        """The block of the job's JobPosted if the index has it, read as it is (no sync)."""
        try:
            job = self.index().job(job_id)
        except HepxError as exc:  # only a shortcut: the caller scans from the deploy block
            log.debug("event=index_unavailable job=%d error=%s", job_id, exc)
            return None
        return None if job is None else job.posted_block

    def sweep_of(self, job_id: int) -> tuple[int, int] | None:
        """(sweep id, block of its post) if ``job_id`` is a sweep's job: sweeps' jobs are known
        from the index only (they have no JobPosted of their own), synced first when it does
        not know the job yet."""
        try:
            job = self.index().job(job_id)
            if job is None:
                job = self.refresh(0, inline=True).job(job_id)
        except HepxError as exc:
            log.debug("event=index_unavailable job=%d error=%s", job_id, exc)
            return None
        return None if job is None or job.sweep_id is None else (job.sweep_id, job.posted_block)

    def view(self) -> ChainView:
        self.index()
        assert self._view is not None
        return self._view

    def refresh(self, max_age: float = _REFRESH_AGE, *, inline: bool = False) -> MarketIndex:
        """The index, synced first unless a sync finished within ``max_age`` seconds.

        While the background thread runs, requests read without syncing (it keeps the index
        within a poll interval of the chain), so a page never waits on the RPC.
        """
        index = self.index()
        if not inline and self._thread is not None and self._thread.is_alive():
            return index
        if time.monotonic() - self.last_sync < max_age:
            return index
        with self._sync_lock:
            if time.monotonic() - self.last_sync >= max_age:
                result = index.sync()
                self.head = result.to_block + index.confirmations
                self.last_sync = time.monotonic()
                self.last_error = None
                if result.rolled_back_to is not None:
                    log.warning("event=reorg rolled_back_to=%d", result.rolled_back_to)
        return index

    def _run(self) -> None:
        interval = self.services.settings.poll_interval
        while not self._stop.is_set():
            try:
                index = self.refresh(max_age=interval / 2, inline=True)
                if time.monotonic() - self.last_keeper >= _KEEPER_INTERVAL:
                    self.last_keeper = time.monotonic()
                    self.expire_lapsed(index)
                if self.lost_since is not None:
                    after = time.monotonic() - self.lost_since
                    log.warning("event=index_sync_restored after=%.0fs", after)
                    self.lost_since = None
            except HepxError as exc:
                # One line when the chain is lost and one when it is back, not every retry.
                if self.lost_since is None:
                    self.lost_since = time.monotonic()
                    log.warning("event=index_sync_failed error=%s", exc)
                self.last_error = str(exc)
                self._stop.wait(min(5.0, interval * 8))
                continue
            except Exception as exc:  # e.g. no contract at the address yet; keep following
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(min(5.0, interval * 8))
                continue
            self._stop.wait(interval)

    def expire_lapsed(self, index: MarketIndex) -> list[int]:
        """Refund the API's own jobs that nobody can finish any more: unclaimed past the claim
        deadline, or claimed and unsubmitted past the run deadline (a worker that vanished).
        The API's key paid their escrow; anyone may call expire, but nobody else has a reason.
        Returns the jobs expired."""
        settings = self.services.settings
        if settings.private_key is None or not settings.expire_lapsed:
            return []
        client = self.services.client()
        now = client.chain_now()
        expired: list[int] = []
        for state in (JobState.OPEN.label, JobState.CLAIMED.label):
            page = 1
            while True:
                found = index.jobs(
                    state=state, requester=client.sender, page=page, per_page=MAX_PER_PAGE
                )
                for item in found.items:
                    job = client.job(item.job_id)
                    reason = lapsed(job.state.label, job.deadline, now)
                    if reason is None:
                        continue
                    try:
                        tx = client.expire(item.job_id, gas=SETTLE_GAS)
                    except TxReverted as exc:  # someone else expired it first, say
                        log.info("event=expire_refused job=%d error=%s", item.job_id, exc)
                        continue
                    log.info(
                        "event=expired job=%d was=%s reason=%r tx=%s",
                        item.job_id,
                        job.state.label,
                        reason,
                        tx.tx_hash,
                    )
                    expired.append(item.job_id)
                if page >= found.pages:
                    break
                page += 1
        return expired

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hepx-index", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def index_service(request: Request) -> IndexService:
    return _services(request).index


def fresh_index(request: Request) -> MarketIndex:
    """The index, synced first unless it was synced a moment ago."""
    return _services(request).index.refresh()


ServicesDep = Annotated[Services, Depends(_services)]
FreshIndex = Annotated[MarketIndex, Depends(fresh_index)]
