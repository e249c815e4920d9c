"""Prometheus metrics: requests counted and timed by route template (never by the raw path, which holds client
ids), status codes and latency buckets in the exposition, the cache's counts, and one registry per app."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from vendome.serve.cache import ResponseCache
from vendome.serve.metrics import LATENCY_BUCKETS, Metrics, route_template

RECOMMENDATIONS = "/v1/customers/{customer_id}/recommendations"
SIMILAR = "/v1/products/{product_id}/similar"


def tiny_app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def observe(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        metrics.observe_request(route_template(request), response.status_code, time.perf_counter() - t0)
        return response

    @app.get(RECOMMENDATIONS)
    def recommendations(customer_id: str) -> dict:
        if customer_id == "nobody":
            raise HTTPException(404, "unknown customer")
        return {"customer_id": customer_id, "items": []}

    @app.get(SIMILAR)
    def similar(product_id: str) -> dict:
        return {"product_id": product_id, "items": []}

    @app.get("/metrics")
    def exposition() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition, by name and labels (parsed as Prometheus would)."""
    body, _ = metrics.render()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def requests_of(metrics: Metrics, route: str, status: int) -> float:
    return samples(metrics).get(("vendome_http_requests_total",
                                 frozenset({"route": route, "status": str(status)}.items())), 0.0)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def client(metrics: Metrics) -> TestClient:
    return TestClient(tiny_app(metrics))


def test_requests_are_counted_by_route_template_and_status_never_by_raw_path(metrics, client):
    for path in ("/v1/customers/C000123/recommendations", "/v1/customers/C000456/recommendations",
                 "/v1/customers/nobody/recommendations", "/v1/products/R1/similar", "/no/such/page"):
        client.get(path)
    assert requests_of(metrics, RECOMMENDATIONS, 200) == 2
    assert requests_of(metrics, RECOMMENDATIONS, 404) == 1
    assert requests_of(metrics, SIMILAR, 200) == 1
    assert requests_of(metrics, "unmatched", 404) == 1
    body = metrics.render()[0].decode()
    assert all(raw not in body for raw in ("C000123", "C000456", "nobody", "R1", "/no/such/page"))


def test_latency_lands_in_millisecond_buckets(metrics, client):
    client.get("/v1/products/R1/similar")
    metrics.observe_request(SIMILAR, 200, 0.004)
    buckets = {dict(labels)["le"]: v for (name, labels), v in samples(metrics).items()
               if name == "vendome_http_request_duration_seconds_bucket" and dict(labels)["route"] == SIMILAR}
    assert set(buckets) == {str(float(b)) for b in LATENCY_BUCKETS} | {"+Inf"}
    assert buckets["+Inf"] == 2
    assert buckets["0.0025"] <= 1 <= buckets["0.005"]         # the 4 ms observation is between these bounds


def test_the_metrics_endpoint_serves_the_prometheus_text_format(client):
    client.get("/v1/customers/C000123/recommendations")
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert f'vendome_http_requests_total{{route="{RECOMMENDATIONS}",status="200"}} 1.0' in answer.text


def test_two_apps_do_not_share_counts():
    one, two = Metrics(), Metrics()
    TestClient(tiny_app(one)).get("/v1/products/R1/similar")
    assert requests_of(one, SIMILAR, 200) == 1
    assert requests_of(two, SIMILAR, 200) == 0


def test_the_cache_counts_are_read_from_the_cache():
    cache = ResponseCache()
    metrics = Metrics(cache=cache)
    k = cache.key("for_you", "c1")
    cache.get(k)
    cache.set(k, {"items": []})
    cache.get(k)
    cache.get(k)
    got = samples(metrics)
    memory = frozenset({"backend": "memory"}.items())
    assert got[("vendome_cache_hits_total", memory)] == 2
    assert got[("vendome_cache_misses_total", memory)] == 1
    assert got[("vendome_cache_errors_total", memory)] == 0
    assert got[("vendome_cache_degraded", memory)] == 0


def test_events_and_the_active_model_are_exported(metrics):
    metrics.events_accepted(3)
    metrics.events_accepted(2)
    metrics.model_activated("hybrid", "v1")
    metrics.model_activated("hybrid", "v2")
    got = samples(metrics)
    assert got[("vendome_events_accepted_total", frozenset())] == 5
    models = {dict(labels)["version"]: v for (name, labels), v in got.items() if name == "vendome_model_info"}
    assert models == {"v2": 1.0}
