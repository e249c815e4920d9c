"""Home lists computed ahead: a warmed list is the one a fresh request computes, her events drop it at once, the
warmer refills after a global invalidation, and the API sends it as the schema documents it."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve.copies import trained_service
from vendome.data import store
from vendome.serve.app import create_app
from vendome.serve.schemas import CustomerRecommendations
from vendome.serve.service import Recommendations
from vendome.serve.warm import Warmer


@pytest.fixture(scope="module")
def shop(boutique_ws, tmp_path_factory):
    ws, svc = trained_service(boutique_ws, tmp_path_factory.mktemp("warm") / "ws", "hybrid")
    yield ws, svc
    store.writer(ws).close()


def fresh(svc: Recommendations, customer_id: str) -> dict:
    """Her list computed now, bypassing the cache."""
    return svc._for_customer(svc.user_of(customer_id), customer_id, 10, "home", svc.model, svc.meta)


@contextmanager
def running_warmer(svc: Recommendations, limit: int):
    """A warmer over the first `limit` clients, its first round done; stopped and detached afterwards."""
    svc.cache.invalidate_all()
    warmer = Warmer(svc, limit=limit).start()
    try:
        assert warmer.wait_idle(120)
        yield warmer
    finally:
        warmer.stop()
        svc.warmer = None


def same_list(a: dict, b: dict) -> bool:
    return ([c["product_id"] for c in a["items"]] == [c["product_id"] for c in b["items"]]
            and [c["reason"]["text"] for c in a["items"]] == [c["reason"]["text"] for c in b["items"]]
            and np.allclose([c["score"] for c in a["items"]], [c["score"] for c in b["items"]], atol=1e-5))


def test_warmed_lists_are_the_ones_a_request_would_compute(shop):
    _, svc = shop
    svc.cache.invalidate_all()
    clients = svc._clients_by_recency()[:40]
    assert svc.warm(limit=40, batch=16) == 40
    assert svc.warm(limit=40, batch=16) == 0                     # already there: nothing computed twice
    for c in clients:
        text = svc.ready_for_customer_json(c)
        assert text is not None, c
        assert same_list(json.loads(text), fresh(svc, c))


def test_the_most_recently_active_clients_are_warmed_first(shop):
    _, svc = shop
    order = svc._clients_by_recency()
    last = svc.data.interactions.groupby("user")["timestamp"].max()
    seen = [last.get(svc.data.user_index[c], -np.inf) for c in order]
    assert seen == sorted(seen, reverse=True)


def test_her_event_drops_her_warmed_list_and_her_next_answer_sees_it(shop):
    _, svc = shop
    svc.cache.invalidate_all()
    c = svc._clients_by_recency()[0]
    svc.warm(limit=5)
    top = json.loads(svc.ready_for_customer_json(c))["items"][0]["product_id"]
    svc.record_events([{"customer_id": c, "product_id": top, "interaction_type": "purchase"}])
    assert svc.ready_for_customer_json(c) is None
    after = svc.for_customer(c)
    assert top not in [x["product_id"] for x in after["items"]]            # she bought it: the house rules
    assert svc.ready_for_customer_json(c) is not None


def test_the_warmer_thread_refills_after_a_rules_reload(shop):
    _, svc = shop
    with running_warmer(svc, 30) as warmer:
        assert warmer.rounds == 1 and warmer.computed == 30
        c = svc._clients_by_recency()[3]
        assert svc.ready_for_customer_json(c) is not None
        svc.reload_rules()                                          # invalidates everything, wakes the warmer
        assert svc.ready_for_customer_json(c) is None or warmer.rounds == 2
        assert warmer.wait_idle(120)
        assert warmer.rounds == 2 and warmer.computed == 60
        assert svc.ready_for_customer_json(c) is not None


def test_the_api_sends_the_warmed_list_as_its_schema_documents_it(shop):
    ws, svc = shop
    svc.cache.invalidate_all()
    with TestClient(create_app(ws, svc=svc, warm=True)) as client:
        assert svc.warmer.wait_idle(300)
        health = client.get("/healthz").json()["warmer"]
        assert health["rounds"] >= 1 and not health["running"]
        c = svc._clients_by_recency()[1]
        r = client.get(f"/v1/customers/{c}/recommendations")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert CustomerRecommendations.model_validate(body).model_dump(mode="json") == body
        assert same_list(body, fresh(svc, c)) and all(x["reason"]["text"] for x in body["items"])
        assert client.get("/v1/customers/nobody/recommendations").status_code == 404
    svc.warmer = None


def test_after_her_event_the_warmer_computes_her_list_before_she_asks(shop):
    _, svc = shop
    with running_warmer(svc, 20) as warmer:
        c = svc._clients_by_recency()[0]
        top = json.loads(svc.ready_for_customer_json(c))["items"][0]["product_id"]
        svc.record_events([{"customer_id": c, "product_id": top, "interaction_type": "purchase"}])
        deadline = time.monotonic() + 30
        while svc.ready_for_customer_json(c) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = svc.ready_for_customer_json(c)
        assert ready is not None and top not in [x["product_id"] for x in json.loads(ready)["items"]]
        assert warmer.rounds == 1                                    # her list only, not a whole round
