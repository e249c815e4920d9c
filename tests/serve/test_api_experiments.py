"""An A/B test through the API: clients are split by their hashed id, each arm's model answers, exposures are
logged, outcomes come from the events the site sends, and the report compares the arms."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serve.copies import KNN_VS_POP, copy_boutique
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.serve.app import create_app
from vendome.serve.experiments import assign, experiments_path
from vendome.serve.service import Recommendations

KEY = "ab-key"
EXPERIMENTS = KNN_VS_POP


@pytest.fixture(scope="module")
def ab(boutique_ws, tmp_path_factory):
    ws = copy_boutique(boutique_ws, tmp_path_factory.mktemp("ab") / "ws")
    data = training_data(ws, threads=2, progress=False)
    train(ws, "pop", data=data)
    train(ws, "itemknn", data=data)
    experiments_path(ws).write_text(EXPERIMENTS)
    svc = Recommendations(ws, "pop", data=data)
    yield ws, svc, TestClient(create_app(ws, api_key=KEY, svc=svc))
    store.writer(ws).close()


def test_each_client_is_served_by_her_arms_model_every_time(ab):
    _, svc, client = ab
    exp = svc.experiments.experiment("home-knn-vs-pop")
    seen = {}
    for cid in svc.data.customers["customer_id"].head(60):
        body = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 5}).json()
        arm = body["experiment"]["arm"]
        assert arm == assign(exp, cid) and body["model"] == exp.arm(arm).model
        again = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 5}).json()
        assert again["experiment"]["arm"] == arm and again["items"] == body["items"]
        seen[arm] = seen.get(arm, 0) + 1
    assert set(seen) == {"control", "knn"} and min(seen.values()) >= 15
    shown = svc.exposures.exposures("home-knn-vs-pop")
    assert len(shown) == 120 and shown["customer_id"].nunique() == 60
    email = client.get(f"/v1/customers/{cid}/recommendations", params={"placement": "email"}).json()
    assert email["experiment"] is None                     # the experiment covers the home page only


def test_the_report_counts_outcomes_after_exposure_per_arm(ab):
    _, svc, client = ab
    exposed = svc.exposures.exposures("home-knn-vs-pop").drop_duplicates("customer_id")
    buyers = exposed.groupby("arm").head(4)
    events = [{"customer_id": row.customer_id, "product_id": list(row.product_ids)[0], "interaction_type": kind}
              for row in buyers.itertuples() for kind in ("click", "purchase")]
    assert client.post("/v1/events/batch", json={"events": events}).status_code == 201
    assert client.get("/v1/experiments/home-knn-vs-pop/report").status_code == 401
    report = client.get("/v1/experiments/home-knn-vs-pop/report", headers={"X-API-Key": KEY}).json()
    arms = {a["arm"]: a for a in report["arms"]} if isinstance(report["arms"], list) else report["arms"]
    for name in ("control", "knn"):
        arm = arms[name]
        assert arm["visitors"] == int((exposed["arm"] == name).sum())
        assert arm["conversion_rate"] == pytest.approx(4 / arm["visitors"])
        assert arm["click_through"] == pytest.approx(4 / arm["visitors"]) and arm["revenue_per_visitor"] > 0
    uplift = arms["knn"]["vs_control"]["conversion_rate"]
    assert uplift["difference"] == pytest.approx(4 / arms["knn"]["visitors"] - 4 / arms["control"]["visitors"])
    assert uplift["ci95"][0] <= uplift["difference"] <= uplift["ci95"][1]
    assert client.get("/v1/experiments/nothing/report", headers={"X-API-Key": KEY}).status_code == 404
    assert [e["name"] for e in client.get("/v1/experiments").json()] == ["home-knn-vs-pop"]


def test_a_bad_experiments_file_is_refused_on_reload(ab):
    ws, svc, client = ab
    experiments_path(ws).write_text(EXPERIMENTS.replace("model: itemknn", "model: transformer9000"))
    r = client.post("/v1/experiments/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 422 and "transformer9000" in str(r.json()["detail"])
    assert [a.model for a in svc.experiments.experiment("home-knn-vs-pop").arms] == ["pop", "itemknn"]
    experiments_path(ws).write_text(EXPERIMENTS)
