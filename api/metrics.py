"""Prometheus ``GET /metrics`` of the API: the market as the event index sees it.

Everything is read at scrape time from the index (jobs by state, latencies in blocks, worker
earnings), the chain (head and the index's lag behind it) and the store (bytes on disk).
Each app has its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from api.services import IndexService
from hepx.diskusage import dir_bytes
from hepx.errors import HepxError

_BLOCK_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 500, 1000)
_STORE_CACHE_SECONDS = 10.0
# Blocks from one event of a job to the next: (metric, help, from event, to any of events).
# A replicated job is claimed when its first replica is drawn.
_LATENCIES = (
    (
        "hepx_job_claim_latency_blocks",
        "Blocks from posting to the first claim (or replica drawn)",
        "JobPosted",
        ("JobClaimed", "ReplicaDrawn"),
    ),
    (
        "hepx_job_settle_latency_blocks",
        "Blocks from result submission to settlement",
        "ResultSubmitted",
        ("JobSettled",),
    ),
)


def _histogram(name: str, doc: str, values: list[int]) -> HistogramMetricFamily:
    buckets = [(str(b), sum(1 for v in values if v <= b)) for b in _BLOCK_BUCKETS]
    buckets.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


class ApiCollector(Collector):
    def __init__(self, indexer: IndexService) -> None:
        self.indexer = indexer
        self._store_cache: tuple[float, int] = (0.0, 0)

    def _store_bytes(self) -> int:
        stamp, value = self._store_cache
        if time.monotonic() - stamp > _STORE_CACHE_SECONDS:
            value = dir_bytes(self.indexer.services.settings.store_path)
            self._store_cache = (time.monotonic(), value)
        return value

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        yield GaugeMetricFamily(
            "hepx_store_bytes", "Bytes in the API's blockstore", value=self._store_bytes()
        )
        up = GaugeMetricFamily("hepx_index_up", "1 if the event index synced on this scrape")
        try:
            index = self.indexer.refresh()
        except HepxError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = self.indexer.head if self.indexer.head is not None else index.synced_block
        status = index.status()
        yield GaugeMetricFamily("hepx_chain_head_block", "Chain head block", value=head)
        yield GaugeMetricFamily(
            "hepx_index_synced_block", "Last block in the index", value=index.synced_block
        )
        yield GaugeMetricFamily(
            "hepx_chain_head_lag_blocks",
            "Blocks the index trails the chain head by",
            value=max(0, head - index.synced_block),
        )
        yield GaugeMetricFamily(
            "hepx_index_events", "Market events indexed", value=status["events"]
        )
        yield GaugeMetricFamily("hepx_index_reorgs", "Reorgs rolled back", value=status["reorgs"])
        jobs = GaugeMetricFamily("hepx_jobs", "Jobs by state", labels=["state"])
        for state, count in index.state_counts().items():
            jobs.add_metric([state], count)
        yield jobs
        earnings = GaugeMetricFamily(
            "hepx_worker_earnings_wei",
            "Wei paid to each worker for settled jobs",
            labels=["worker"],
        )
        won = GaugeMetricFamily(
            "hepx_worker_jobs", "Jobs each worker claimed, by outcome", labels=["worker", "outcome"]
        )
        for stats in index.workers():
            earnings.add_metric([stats.address], stats.earnings)
            for outcome in ("settled", "in_progress", "failures"):
                won.add_metric([stats.address, outcome], getattr(stats, outcome))
        yield earnings
        yield won
        for name, doc, start, end in _LATENCIES:
            yield _histogram(name, doc, index.block_gaps(start, end))


def install_metrics(app: FastAPI, indexer: IndexService) -> None:
    registry = CollectorRegistry()
    registry.register(ApiCollector(indexer))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
