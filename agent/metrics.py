"""Prometheus metrics of a worker agent, served on their own HTTP port (``--metrics-port``).

Counters and histograms are fed by the chain client's transaction observer (every mined tx of
the agent: gas, claims, submits, settlements, withdrawals); gauges that describe the present
(jobs by phase, chain head lag, store bytes, withdrawable wei) are read when Prometheus scrapes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.phases import Phase
from hepx.chain import MarketClient, TxResult
from hepx.diskusage import dir_bytes
from hepx.errors import HepxError

if TYPE_CHECKING:
    from agent.worker import WorkerAgent

log = logging.getLogger("hepx.agent.metrics")

# From seconds (a claim on a fast devnet) to an hour (a long physics job's settlement).
_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_CALL = re.compile(r"^(\w+)(?: job (\d+))?")
_STORE_CACHE_SECONDS = 10.0


class AgentMetrics(Collector):
    """The agent's metrics in their own registry (several agents may share a process)."""

    def __init__(self, client: MarketClient, store_root: Path) -> None:
        self.client = client
        self.store_root = store_root
        self.agent: WorkerAgent | None = None
        self.registry = CollectorRegistry()
        self.txs = Counter(
            "hepx_agent_transactions",
            "Mined transactions sent by the agent",
            ["call"],
            registry=self.registry,
        )
        self.gas = Counter(
            "hepx_agent_gas_used",
            "Gas used by the agent's transactions",
            ["call"],
            registry=self.registry,
        )
        self.gas_wei = Counter(
            "hepx_agent_gas_spent_wei", "Wei the agent paid for gas", registry=self.registry
        )
        self.earnings = Counter(
            "hepx_agent_earnings_wei",
            "Wei credited to the agent for settled jobs",
            registry=self.registry,
        )
        self.withdrawn = Counter(
            "hepx_agent_withdrawn_wei",
            "Wei the agent withdrew from the market",
            registry=self.registry,
        )
        self.claim_latency = Histogram(
            "hepx_agent_claim_latency_seconds",
            "From a job's posting block to the agent's claim being mined",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.settle_latency = Histogram(
            "hepx_agent_settle_latency_seconds",
            "From the agent's result being mined to the job's settlement being mined",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._submitted_at: dict[int, float] = {}
        self._store_cache: tuple[float, int] = (0.0, 0)
        self._lock = threading.Lock()
        self.registry.register(self)
        client.tx_observers.append(self.observe)

    # ------------------------------------------------------------ fed by transactions

    def observe(self, what: str, result: TxResult) -> None:
        match = _CALL.match(what)
        call = match.group(1) if match else what
        job_id = int(match.group(2)) if match and match.group(2) else None
        self.txs.labels(call).inc()
        self.gas.labels(call).inc(result.gas_used)
        self.gas_wei.inc(result.gas_used * result.gas_price)
        now = time.time()
        if call == "submitResult" and job_id is not None:
            with self._lock:
                self._submitted_at[job_id] = now
        for event in result.events:
            # By event, not by call: claimJobs claims several jobs in one transaction.
            if event.name == "JobClaimed" and event.args.get("worker") == self.client.sender:
                posted = self._posted_timestamp(int(event.args["jobId"]), result.block_number)
                if posted is not None:
                    self.claim_latency.observe(max(0.0, now - posted))
            elif event.name == "JobSettled" and event.args.get("worker") == self.client.sender:
                self.earnings.inc(int(event.args["payment"]))
                with self._lock:
                    submitted = self._submitted_at.pop(int(event.args["jobId"]), None)
                if submitted is not None:
                    self.settle_latency.observe(now - submitted)
            elif event.name == "Payment" and call == "withdraw":
                self.withdrawn.inc(int(event.args["amount"]))

    def _posted_timestamp(self, job_id: int, claim_block: int) -> float | None:
        """When the job was posted: its JobPosted block's timestamp (None if not found)."""
        try:
            start = max(0, claim_block - 5000)
            for event in self.client.events(start, claim_block, job_id=job_id):
                if event.name == "JobPosted":
                    return float(self.client.timestamp(event.block_number))
        except HepxError as exc:
            log.debug("event=metrics_lookup_failed job=%d error=%s", job_id, exc)
        return None

    # ------------------------------------------------------------ read at scrape time

    def _store_bytes(self) -> int:
        stamp, value = self._store_cache
        if time.monotonic() - stamp > _STORE_CACHE_SECONDS:
            value = dir_bytes(self.store_root)
            self._store_cache = (time.monotonic(), value)
        return value

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.agent is not None:
            phases = GaugeMetricFamily(
                "hepx_agent_jobs", "Jobs this agent claimed, by phase", labels=["phase"]
            )
            counts: dict[str, int] = {Phase.DONE.value: self.agent.book.archived}
            for record in list(self.agent.book.jobs.values()):
                phase = str(record.get("phase", "unknown"))
                counts[phase] = counts.get(phase, 0) + 1
            for phase in Phase:
                phases.add_metric([phase.value], counts.pop(phase.value, 0))
            for phase, count in counts.items():
                phases.add_metric([phase], count)
            yield phases
        yield GaugeMetricFamily(
            "hepx_agent_store_bytes",
            "Bytes in the agent's local blockstore",
            value=self._store_bytes(),
        )
        try:
            head = self.client.block_number()
            withdrawable = self.client.withdrawable(self.client.sender)
        except HepxError:
            return  # the chain is down: the scrape still answers the local metrics
        yield GaugeMetricFamily("hepx_agent_chain_head", "Chain head block", value=head)
        yield GaugeMetricFamily(
            "hepx_agent_withdrawable_wei",
            "Wei the market holds for this agent",
            value=withdrawable,
        )
        if self.agent is not None:
            yield GaugeMetricFamily(
                "hepx_agent_chain_head_lag_blocks",
                "Blocks between the chain head and the last block the agent handled",
                value=max(0, head - self.agent.follower.cursor.block),
            )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Answer ``GET /metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
        log.info("event=metrics_listening url=http://%s:%d/metrics", host, port)
