"""/metrics in the Prometheus text format, written with the Prometheus client library.

Each service has its own registry (several services can live in one test process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _StoreGauges(Collector):
    """Values read at scrape time: store size, stored events, commit backlog, collector workers."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        values = self._read()
        yield GaugeMetricFamily(
            "telemetry_store_bytes", "Size of the store file and its WAL", values["bytes"]
        )
        yield GaugeMetricFamily("telemetry_store_events", "Events stored", values["events"])
        yield GaugeMetricFamily(
            "telemetry_commit_backlog_events", "Events waiting for their commit", values["backlog"]
        )
        yield GaugeMetricFamily(
            "telemetry_collector_workers",
            "Collector worker processes ready (0: requests are prepared in threads of the serve)",
            values["workers"],
        )
        yield GaugeMetricFamily(
            "telemetry_collector_worker_restarts",
            "Times the pool of collector workers was restarted",
            values["worker_restarts"],
        )


class ServiceMetrics:
    """The service's counters and histograms."""

    def __init__(self, read_store: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "telemetry_collector_requests",
            "Collector requests by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=r,
        )
        self.received = Counter(
            "telemetry_events_received", "Events received by endpoint", ["endpoint"], registry=r
        )
        self.accepted = Counter(
            "telemetry_events_accepted", "Events stored by endpoint", ["endpoint"], registry=r
        )
        self.rejected = Counter(
            "telemetry_events_rejected", "Events rejected by endpoint", ["endpoint"], registry=r
        )
        self.dropped = Counter(
            "telemetry_events_dropped",
            "Events dropped (do-not-track, sampling, duplicates) by endpoint",
            ["endpoint"],
            registry=r,
        )
        self.latency = Histogram(
            "telemetry_ingest_seconds",
            "Collector request latency, body read to committed answer",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        r.register(_StoreGauges(read_store))

    def render(self) -> bytes:
        return generate_latest(self.registry)
