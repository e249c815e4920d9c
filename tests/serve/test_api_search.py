"""Composed search over HTTP: picture cards with reasons, every hard constraint and house rule kept, the planner's
sessions, and clear 4xx answers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serve.copies import trained_service
from vendome.data import store
from vendome.rules import Request
from vendome.rules.audit import Auditor
from vendome.search.constraints import satisfies
from vendome.search.query import Constraint
from vendome.serve.app import create_app

KEY = "test-admin-key"


@pytest.fixture(scope="module")
def shop(boutique_ws, tmp_path_factory):
    ws, svc = trained_service(boutique_ws, tmp_path_factory.mktemp("api_search") / "ws")
    yield ws, svc, TestClient(create_app(ws, api_key=KEY, svc=svc))
    store.writer(ws).close()


def a_ring(svc, stone: str = "diamond") -> str:
    p = svc.data.products
    return str(p[(p["subcategory"] == "ring") & (p["stone_type"] == stone)]["product_id"].iloc[0])


def test_a_composed_search_answers_cards_within_every_constraint_and_rule(shop):
    _, svc, client = shop
    anchor = a_ring(svc)
    cid = str(svc.data.customers["customer_id"].iloc[3])
    r = client.post("/v1/search", json={"text": "like this, but in rose gold, no diamonds, under 30k",
                                        "anchor": anchor, "customer_id": cid, "k": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["personalised"] and body["planner"] is None
    hard = [Constraint(c["attribute"], c["op"], c["value"], c["hard"]) for c in body["constraints"] if c["hard"]]
    assert {c.attribute for c in hard} >= {"stone_type", "price", "subcategory"}
    items = [svc.data.item_index[c["product_id"]] for c in body["items"]]
    records = svc.data.products.to_dict("records")
    assert items and all(satisfies(records[i], c) for i in items for c in hard)
    u = svc.data.user_index[cid]
    assert Auditor(svc.policy, svc.data).violations(Request("product", u, (svc.data.item_index[anchor],)),
                                                    items) == []
    for card in body["items"]:
        assert card["reason"]["code"] == "composed_search" and card["reason"]["text"]
        assert card["image_url"] == f"/v1/products/{card['product_id']}/image"


def test_an_opted_out_client_gets_no_personal_reranking(shop):
    _, svc, client = shop
    cid = str(svc.data.customers["customer_id"].iloc[5])
    assert client.post(f"/v1/customers/{cid}/opt-out", headers={"X-API-Key": KEY}).status_code in (200, 201)
    body = client.post("/v1/search", json={"text": "a ring in white gold", "customer_id": cid}).json()
    assert body["personalised"] is False and body["items"]


def test_the_planner_keeps_a_session_and_never_shows_a_rejected_piece(shop):
    _, svc, client = shop
    anchor = a_ring(svc)
    first = client.post("/v1/search", json={"text": "like this, but in yellow gold", "anchor": anchor,
                                            "planner": True, "k": 5}).json()
    assert first["planner"] == "deterministic" and first["session_id"] and first["answer"]
    shown = [c["product_id"] for c in first["items"]]
    follow = client.post("/v1/search", json={"text": "no diamonds", "session_id": first["session_id"],
                                             "planner": True, "reject": shown[:2], "k": 5}).json()
    assert follow["session_id"] == first["session_id"]
    assert not set(shown[:2]) & {c["product_id"] for c in follow["items"]}
    stones = {svc.data.products.set_index("product_id").loc[c["product_id"], "stone_type"] for c in follow["items"]}
    assert "diamond" not in stones


@pytest.mark.parametrize("body, status", [
    ({"text": "in rose gold", "anchor": "NOPE"}, 404),
    ({"text": "in rose gold", "customer_id": "NOPE"}, 404),
    ({"text": ""}, 422),
    ({"text": "x" * 501}, 422),
    ({"text": "rings", "k": 0}, 422),
])
def test_bad_requests_get_a_clear_4xx(shop, body, status):
    _, _, client = shop
    r = client.post("/v1/search", json=body)
    assert r.status_code == status
    assert r.json()["detail"]


def test_the_warmer_loads_a_saved_engine_and_its_text_encoder_before_the_first_search(shop):
    from vendome.serve.warm import Warmer

    ws, svc, _ = shop
    svc.searcher()                                        # fitted and saved to WS/search/ (if no test did it yet)
    assert (ws.root / "search" / "engine.pkl").exists()
    svc._searcher = None
    Warmer(svc)._warm_search()
    assert svc._searcher is not None and svc._searcher.engine.space_._encoder is not None
