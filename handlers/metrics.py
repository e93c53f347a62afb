"""Prometheus metrics: request counts and latency by route template and status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from service.common import worktime
from service.common.loops import LoopHealth

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _LoopCollector(Collector):
    """The background loops' health, read from the process's LoopHealth at scrape time."""

    def __init__(self) -> None:
        self.health: LoopHealth | None = None

    def collect(self) -> Iterator[Metric]:
        passes = CounterMetricFamily(
            "huimin_background_loop_passes", "Finished passes of a background loop", labels=("loop",)
        )
        failures = CounterMetricFamily(
            "huimin_background_loop_failures",
            "Failed passes of a background loop, by failure class",
            labels=("loop", "error"),
        )
        parked = CounterMetricFamily(
            "huimin_background_loop_parked", "Items a loop gave up on and set aside (dead letters)", labels=("loop",)
        )
        degraded = GaugeMetricFamily(
            "huimin_background_loop_degraded", "1 while a loop has failed 3 or more passes in a row", labels=("loop",)
        )
        for name, state in sorted((self.health.loops if self.health else {}).items()):
            passes.add_metric([name], state.passes)
            parked.add_metric([name], state.parked)
            degraded.add_metric([name], 1 if state.degraded else 0)
            for error, count in sorted(state.failures.items()):
                failures.add_metric([name, error], count)
        yield from (passes, failures, parked, degraded)


class Metrics:
    """One registry per app, so several apps in one process (tests) do not collide."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "huimin_http_requests_total", "HTTP requests handled", ("method", "route", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "huimin_http_request_duration_seconds",
            "HTTP request latency",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        # Read at each scrape: alert when it is below next year (e.g. from October on).
        self.calendar_last_year = Gauge(
            "huimin_holiday_calendar_last_year",
            "Last year whose Chinese public holidays and make-up workdays are known (package or HUIMIN_HOLIDAYS_FILE)",
            registry=self.registry,
        )
        self.calendar_last_year.set_function(worktime.last_covered_year)
        self.loops = _LoopCollector()
        self.registry.register(self.loops)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children, found once per (method, route template, status): as few as the routes.
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self, *, loops: LoopHealth | None = None) -> bytes:
        self.loops.health = loops
        return generate_latest(self.registry)
