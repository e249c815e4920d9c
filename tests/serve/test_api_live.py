"""Live traffic against the API: an acknowledged event survives a killed server and changes the client's next
answer; an opt-out turns personalisation off; an erasure leaves nothing of her in the store, the models or the
answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve.copies import copy_boutique
from vendome.artifacts import load_model, versions
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.serve.app import create_app
from vendome.serve.service import Recommendations

KEY = "live-admin-key"
SASREC = {"epochs": 3, "hidden": 16, "heads": 1, "layers": 1, "validate": False, "max_len": 20}


@pytest.fixture(scope="module")
def live(boutique_ws, tmp_path_factory):
    ws = copy_boutique(boutique_ws, tmp_path_factory.mktemp("live") / "ws")
    data = training_data(ws, threads=2, progress=False)
    train(ws, "sasrec", params=SASREC, data=data, threads=2)
    svc = Recommendations(ws, "sasrec", data=data)
    yield ws, svc, TestClient(create_app(ws, api_key=KEY, svc=svc))
    store.writer(ws).close()


def a_client(svc: Recommendations, k: int = 0) -> str:
    buyers = svc.data.interactions.query("behavior == 'purchase'")["user"].value_counts().index
    return str(svc.data.customers["customer_id"].iloc[int(buyers[k])])


def top(client: TestClient, cid: str, k: int = 10) -> list[dict]:
    r = client.get(f"/v1/customers/{cid}/recommendations", params={"k": k})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_an_event_is_acknowledged_with_its_id_and_changes_her_next_answer(live):
    _, svc, client = live
    cid = a_client(svc, 0)
    before = top(client, cid)
    piece = before[-1]["product_id"]
    r = client.post("/v1/events", json={"customer_id": cid, "product_id": piece, "interaction_type": "view"})
    assert r.status_code == 201 and r.json()["ids"][0].startswith("ev_")
    after = top(client, cid)
    assert [c["score"] for c in after] != [c["score"] for c in before]       # her journey now ends on that piece
    bought = after[0]["product_id"]
    r = client.post("/v1/events/batch", json={"events": [
        {"customer_id": cid, "product_id": bought, "interaction_type": "add_to_cart"},
        {"customer_id": cid, "product_id": bought, "interaction_type": "purchase"}]})
    assert r.status_code == 201 and len(r.json()["ids"]) == 2
    assert bought not in {c["product_id"] for c in top(client, cid)}          # bought: not offered again


def test_a_bad_batch_is_refused_whole_naming_the_event_and_field(live):
    _, svc, client = live
    cid = a_client(svc, 1)
    logged = len(svc.events)
    pid = svc.data.products["product_id"].iloc[0]
    r = client.post("/v1/events/batch", json={"events": [
        {"customer_id": cid, "product_id": pid, "interaction_type": "view"},
        {"customer_id": cid, "product_id": "no-such-piece", "interaction_type": "view"},
        {"customer_id": cid, "product_id": pid, "interaction_type": "like"}]})
    assert r.status_code == 422
    problems = r.json()["detail"]
    assert {(p["index"], p["field"]) for p in problems} == {(1, "product_id"), (2, "interaction_type")}
    assert len(svc.events) == logged
    assert client.post("/v1/events", json={"customer_id": cid, "product_id": pid}).status_code == 422


def test_an_opted_out_client_gets_best_sellers_until_she_opts_back_in(live):
    _, svc, client = live
    cid = a_client(svc, 2)
    personal = top(client, cid)
    assert client.post(f"/v1/customers/{cid}/opt-out").json() == {"customer_id": cid, "opted_out": True}
    r = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 10}).json()
    assert r["personalised"] is False and all(c["reason"]["code"] == "not_personalised" for c in r["items"])
    other = a_client(svc, 3)
    client.post(f"/v1/customers/{other}/opt-out")
    assert [c["product_id"] for c in top(client, other)] == [c["product_id"] for c in r["items"]]  # nothing of hers
    assert client.delete(f"/v1/customers/{cid}/opt-out").json()["opted_out"] is False
    assert [c["product_id"] for c in top(client, cid)] == [c["product_id"] for c in personal]
    assert client.post("/v1/customers/nobody/opt-out").status_code == 404


def test_erasure_needs_the_key_and_leaves_nothing_of_her(live):
    ws, svc, client = live
    cid = a_client(svc, 4)
    u = svc.data.user_index[cid]
    pid = svc.data.products["product_id"].iloc[1]
    client.post("/v1/events", json={"customer_id": cid, "product_id": pid, "interaction_type": "view"})
    assert client.delete(f"/v1/customers/{cid}").status_code == 401
    r = client.delete(f"/v1/customers/{cid}", headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    assert r.json()["model_versions_rewritten"]["sasrec"] == versions(ws, "sasrec")
    assert client.get(f"/v1/customers/{cid}/recommendations").status_code == 404
    assert client.post("/v1/events", json={"customer_id": cid, "product_id": pid,
                                           "interaction_type": "view"}).status_code == 422
    assert client.delete(f"/v1/customers/{cid}", headers={"X-API-Key": KEY}).status_code == 404
    for name, frame in store.read_tables(ws).items():
        for col in frame.columns:
            assert not frame[col].astype(str).eq(cid).any(), (name, col)
    assert not store.read_dataframe(ws, "event_log")["customer_id"].eq(cid).any()
    stored, _ = load_model(ws, "sasrec")                     # the version on disk forgot her too
    assert len(stored.sequences_.items[u]) == 0 and len(svc.model.sequences_.items[u]) == 0
    cold = int(np.flatnonzero([len(s) == 0 for s in stored.sequences_.items])[0])
    assert np.array_equal(stored.score([u]), stored.score([cold]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(ws, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "vendome.cli", "serve", "--workspace", str(ws.root), "--port",
                             str(port), "--model", "sasrec"], env={**os.environ, "VENDOME_API_KEY": KEY},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
    proc.kill()
    raise AssertionError("the server did not start within 120 s")


def test_an_acknowledged_event_survives_a_killed_server(live, tmp_path):
    ws, svc, _ = live
    store.writer(ws).close()                                  # the server process owns the store from now on
    port = free_port()
    proc = serve(ws, port)
    cid, pid = a_client(svc, 5), str(svc.data.products["product_id"].iloc[2])
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/events",
                       json={"customer_id": cid, "product_id": pid, "interaction_type": "add_to_wishlist"})
        assert r.status_code == 201
        [event_id] = r.json()["ids"]
    finally:
        proc.send_signal(signal.SIGKILL)                     # no shutdown, no checkpoint
        proc.wait()
    logged = store.read_dataframe(ws, "event_log")
    assert logged.set_index("interaction_id").loc[event_id, "customer_id"] == cid
    data = store.load_dataset(ws)                            # what a restarted server (or a retraining) reads
    mine = data.interactions[(data.interactions["user"] == data.user_index[cid])]
    assert (mine["behavior"] == "add_to_wishlist").any()
    store.writer(ws).close()
    proc = serve(ws, port)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/v1/customers/{cid}/recommendations", params={"k": 5})
        assert r.status_code == 200 and len(r.json()["items"]) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
