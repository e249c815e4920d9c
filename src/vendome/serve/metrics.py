"""Prometheus metrics for the API: requests and latency by route template, events accepted, the response cache,
slots the guardrails filtered, and which model version is answering.

    metrics = Metrics(cache=app.state.cache)
    metrics.observe_request(route_template(request), response.status_code, seconds)
    body, content_type = metrics.render()                  # the /metrics endpoint

Each `Metrics` owns its registry (not prometheus_client's global one), so several apps in one process (the tests)
never share or collide on counts. Requests are labelled by the matched route's path template, never by the raw
path: ids are personal data and would make one time series per client. The cache's counters are read from
`ResponseCache.stats()` when Prometheus scrapes, so the cache counts once and the metrics cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import HTTPConnection

# seconds: the API aims at < 50 ms, so the resolution is below that and the tail goes to 1 s
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
UNMATCHED = "unmatched"


def route_template(request: HTTPConnection) -> str:
    """The path template of the route that matched (`/v1/customers/{customer_id}/recommendations`), or "unmatched"
    for a path no route knows (its 404 must not turn arbitrary paths into labels)."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class Metrics:
    """The API's counters, histogram and gauges, in a registry of their own."""

    def __init__(self, cache=None, prefix: str = "vendome") -> None:
        """`cache`: a ResponseCache (anything with `stats()`) whose hits, misses and errors are exported."""
        self.registry = CollectorRegistry()
        self.cache = cache
        self.requests = Counter(f"{prefix}_http_requests", "HTTP requests answered, by route template and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram(f"{prefix}_http_request_duration_seconds", "Time to answer, by route template",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.events = Counter(f"{prefix}_events_accepted", "Events committed to the event log",
                              registry=self.registry)
        self.model = Gauge(f"{prefix}_model_info", "The model answering (1 for the active version)",
                           ["model", "version"], registry=self.registry)
        self.registry.register(_CacheCollector(self, prefix))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(int(status))).inc()
        self.latency.labels(route=route).observe(seconds)

    def events_accepted(self, n: int) -> None:
        self.events.inc(n)

    def model_activated(self, model: str, version: str | None) -> None:
        """Only the active version is exported, so a dashboard sees the switch."""
        self.model.clear()
        self.model.labels(model=model, version=str(version or "")).set(1)

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a `/metrics` answer (Prometheus text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _CacheCollector(Collector):
    """The response cache's own counts, read at scrape time."""

    def __init__(self, metrics: Metrics, prefix: str) -> None:
        self.metrics, self.prefix = metrics, prefix

    def collect(self) -> Iterator:
        cache = self.metrics.cache
        if cache is None:
            return
        stats = cache.stats()
        backend = str(stats.get("backend", ""))
        for what in ("hits", "misses", "errors"):
            family = CounterMetricFamily(f"{self.prefix}_cache_{what}", f"Response cache {what}", labels=["backend"])
            family.add_metric([backend], float(stats.get(what, 0)))
            yield family
        degraded = GaugeMetricFamily(f"{self.prefix}_cache_degraded",
                                     "1 while the cache's backend is failing and answers go uncached",
                                     labels=["backend"])
        degraded.add_metric([backend], 1.0 if stats.get("degraded") else 0.0)
        yield degraded
