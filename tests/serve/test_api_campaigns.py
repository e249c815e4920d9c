"""Segment campaigns through the API: admin only, queued at once, computed by the live model within the rules,
the file downloadable when done, a bad segment refused up front, and an erased client gone from every file."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serve.copies import trained_service
from vendome.data import store
from vendome.rules import Request
from vendome.rules.audit import Auditor
from vendome.serve.app import create_app
from vendome.serve.campaigns import Campaigns

KEY = {"X-API-Key": "campaign-key"}


@pytest.fixture(scope="module")
def shop(boutique_ws, tmp_path_factory):
    ws, svc = trained_service(boutique_ws, tmp_path_factory.mktemp("campaigns") / "ws")
    with TestClient(create_app(ws, api_key=KEY["X-API-Key"], svc=svc)) as client:
        yield ws, svc, client
    store.writer(ws).close()


def run(client, svc, body: dict) -> dict:
    r = client.post("/v1/campaigns", json=body, headers=KEY)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running", "done")
    return svc.campaigns.wait(r.json()["id"], timeout=300)


def test_campaigns_need_the_admin_key(shop):
    _, _, client = shop
    assert client.post("/v1/campaigns", json={}).status_code == 401
    assert client.get("/v1/campaigns").status_code == 401


def test_a_segment_campaign_is_the_live_lists_within_the_rules(shop):
    _, svc, client = shop
    data = svc.data
    segment = str(data.customers["customer_segment"].value_counts().index[0])
    members = data.customers[data.customers["customer_segment"] == segment]
    consenting = members["marketing_consent"].astype(str).str.lower().isin(["true", "1", "yes"])
    job = run(client, svc, {"segment": {"customer_segment": [segment]}, "k": 6})
    assert job["status"] == "done" and job["customers"] == int(consenting.sum())
    assert job["skipped_no_consent"] == int((~consenting).sum()) and job["done"] == job["total"]
    r = client.get(f"/v1/campaigns/{job['id']}/file", headers=KEY)
    assert r.status_code == 200
    table = pd.read_parquet(io.BytesIO(r.content))
    assert set(table["customer_id"]) == set(members.loc[consenting, "customer_id"]) and len(table) == job["rows"]
    auditor = Auditor(svc.policy, data)
    for cid, rows in table.groupby("customer_id"):
        items = [data.item_index[p] for p in rows.sort_values("rank")["product_id"]]
        assert auditor.violations(Request("email", data.user_index[cid]), items) == []
    one = str(table["customer_id"].iloc[0])                       # the same list the API serves her by e-mail
    served = [c["product_id"] for c in svc.for_customer(one, k=6, placement="email")["items"]]
    assert table[table["customer_id"] == one].sort_values("rank")["product_id"].tolist() == served
    assert job["id"] in [j["id"] for j in client.get("/v1/campaigns", headers=KEY).json()]


def test_a_bad_segment_is_refused_before_anything_runs(shop):
    _, _, client = shop
    r = client.post("/v1/campaigns", json={"segment": {"shoe_size": ["38"]}}, headers=KEY)
    assert r.status_code == 422 and "no column 'shoe_size'" in r.json()["detail"]
    assert client.post("/v1/campaigns", json={"k": 0}, headers=KEY).status_code == 422
    assert client.get("/v1/campaigns/cp_0123456789abcdef", headers=KEY).status_code == 404
    assert client.get("/v1/campaigns/not-an-id", headers=KEY).status_code == 422


def test_erasure_takes_her_out_of_every_campaign_file(shop):
    ws, svc, client = shop
    job = run(client, svc, {"placement": "home", "k": 3, "format": "csv"})
    table = pd.read_csv(svc.campaigns.path(job["id"]), dtype={"customer_id": str})
    her = str(table["customer_id"].iloc[0])
    assert client.delete(f"/v1/customers/{her}", headers=KEY).status_code == 200
    after = pd.read_csv(svc.campaigns.path(job["id"]), dtype={"customer_id": str})
    assert her not in set(after["customer_id"]) and len(after) == len(table) - (table["customer_id"] == her).sum()
    assert svc.campaigns.status(job["id"])["rows"] == len(after)


def test_a_campaign_cut_short_by_a_restart_says_so(shop):
    ws, svc, _ = shop
    job = svc.campaigns.start(None, "home", 2)
    svc.campaigns.wait(job["id"])
    state = svc.campaigns.dir / f"{job['id']}.json"
    state.write_text(state.read_text().replace('"status": "done"', '"status": "running"'))
    again = Campaigns(svc)
    assert again.status(job["id"])["status"] == "interrupted" and "start it again" in again.status(job["id"])["error"]
