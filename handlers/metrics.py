"""Prometheus metrics: request counts and latency by route template and status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service import worktime

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
