"""Several API replicas over one PostgreSQL store and one Redis (the real servers on this machine): what one replica
accepts changes the answers of another, at once for events, opt-outs and erasures, within a poll for a model
activation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from data.pgserver import SERVER
from serve.copies import copy_boutique
from serve.test_api_live import free_port
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.serve.replicas import wait_until
from vendome.serve.service import Recommendations
from vendome.workspace import Workspace

ADMIN = f"{SERVER}/postgres"
REDIS = "redis://127.0.0.1:6379/0"
KEY = "replica-admin-key"
MODEL = "itemknn"


@pytest.fixture(scope="module")
def database():
    """A throwaway database on the machine's PostgreSQL, dropped after the module."""
    name = f"vendome_replicas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"{SERVER}/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shared_ws(boutique_ws, database, tmp_path_factory):
    """The boutique copied into PostgreSQL (the workspace folder keeps features and models), an item-kNN trained on
    it twice (two versions: the first active)."""
    local = copy_boutique(boutique_ws, tmp_path_factory.mktemp("replicas") / "ws")
    ws = Workspace(local.root, database_url=database)
    store.write_tables(ws, store.read_tables(local), meta={"source": "test_replicas"})
    store.writer(local).close()
    local.db.unlink()                       # the folder keeps features and models; the data is in PostgreSQL only
    data = training_data(ws, threads=2, progress=False)
    first = train(ws, MODEL, data=data)[1]
    train(ws, MODEL, data=data)
    from vendome.artifacts import activate_version

    activate_version(ws, MODEL, first.name)
    return ws


def a_buyer(svc: Recommendations, k: int = 0) -> str:
    buyers = svc.data.interactions.query("behavior == 'purchase'")["user"].value_counts().index
    return str(svc.data.customers["customer_id"].iloc[int(buyers[k])])


def ids(answer: dict) -> list[str]:
    return [c["product_id"] for c in answer["items"]]


# ------------------------------------------------------------------------------------------ in one process
@pytest.fixture(scope="module")
def pair(shared_ws):
    """Two services over the same store, as two replicas would be (each its own memory)."""
    from vendome.serve.cache import ResponseCache

    namespace = f"test-{uuid.uuid4().hex[:8]}"
    a = Recommendations(shared_ws, MODEL, cache=ResponseCache.from_url(REDIS, namespace=namespace))
    b = Recommendations(shared_ws, MODEL, cache=ResponseCache.from_url(REDIS, namespace=namespace))
    assert a.replica is not None and b.replica is not None
    yield a, b
    redis.Redis.from_url(REDIS).delete(*redis.Redis.from_url(REDIS).keys(f"vendome:{namespace}:*") or ["-"])


def test_a_purchase_accepted_by_one_replica_changes_the_other_replicas_next_answer(pair):
    a, b = pair
    cid = a_buyer(b, 0)
    before = b.for_customer(cid, k=10)                      # now cached in the shared Redis
    bought = ids(before)[0]
    a.record_events([{"customer_id": cid, "product_id": bought, "interaction_type": "purchase"}])
    after = b.for_customer(cid, k=10)
    assert bought not in ids(after)                         # B folded A's purchase in before answering
    assert b.replica.caught_up["events"] >= 1
    assert len(b.data.interactions) == len(a.data.interactions)


def test_a_replica_does_not_fold_its_own_events_twice(pair):
    a, b = pair
    cid = a_buyer(a, 1)
    piece = ids(a.for_customer(cid, k=5))[-1]
    n = len(a.data.interactions)
    a.record_events([{"customer_id": cid, "product_id": piece, "interaction_type": "view"}])
    a.for_customer(cid, k=5)                                # catch_up meets its own event in the log
    assert len(a.data.interactions) == n + 1
    b.for_customer(cid, k=5)
    assert len(b.data.interactions) == n + 1


def test_an_opt_out_on_one_replica_holds_on_the_other_at_once(pair):
    a, b = pair
    cid = a_buyer(b, 2)
    assert b.for_customer(cid)["personalised"]
    a.opt_out(cid)
    assert not b.for_customer(cid)["personalised"]
    a.opt_out(cid, opted_out=False)
    assert b.for_customer(cid)["personalised"]


# ------------------------------------------------------------------------------------------ separate processes
def serve(ws: Workspace, port: int, namespace: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "VENDOME_API_KEY": KEY, "VENDOME_DATABASE_URL": ws.database_url,
           "VENDOME_REDIS_URL": REDIS, "VENDOME_CACHE_NAMESPACE": namespace, "VENDOME_SYNC_INTERVAL": "0.2"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vendome.cli", "serve", "--workspace", str(ws.root),
                                 "--port", str(port), "--model", MODEL, "--no-warm"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    if not wait_until(lambda: _healthy(port), timeout=90, step=0.2):
        proc.kill()
        raise AssertionError(f"replica on port {port} did not start:\n{log.read_text()[-3000:]}")
    return proc


def _show_log(log: Path):
    def hook(response: httpx.Response) -> None:
        if response.status_code >= 500:
            time.sleep(0.5)                     # the server logs the traceback after it answered
            raise AssertionError(f"{response.request.url}: {response.status_code}\n{log.read_text()[-3000:]}")
    return hook


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def replicas(shared_ws, tmp_path_factory):
    """Two `vendome serve` processes on the shared store and Redis; a failed assertion shows their logs."""
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    ports, logs = (free_port(), free_port()), tmp_path_factory.mktemp("replica-logs")
    procs = [serve(shared_ws, p, namespace, logs / f"{p}.log") for p in ports]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", headers={"X-API-Key": KEY}, timeout=30,
                            event_hooks={"response": [_show_log(logs / f"{p}.log")]}) for p in ports]
    yield clients
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)


def test_two_replica_processes_share_events_opt_outs_activations_and_erasures(shared_ws, replicas):
    a, b = replicas
    svc = Recommendations(shared_ws, MODEL)
    cid = a_buyer(svc, 3)

    def top(client: httpx.Client, who: str = cid) -> dict:
        r = client.get(f"/v1/customers/{who}/recommendations", params={"k": 10})
        assert r.status_code == 200, r.text
        return r.json()

    bought = ids(top(b))[0]
    r = a.post("/v1/events", json={"customer_id": cid, "product_id": bought, "interaction_type": "purchase"})
    assert r.status_code == 201
    assert bought not in ids(top(b))                        # no wait: B catches up before it answers

    assert a.post(f"/v1/customers/{cid}/opt-out").status_code == 200
    assert top(b)["personalised"] is False
    assert a.delete(f"/v1/customers/{cid}/opt-out").status_code == 200
    assert top(b)["personalised"] is True

    versions = [v["version"] for v in a.get("/v1/models").json()[0]["versions"]]
    assert b.get("/healthz").json()["version"] == versions[0]
    r = a.post(f"/v1/models/{MODEL}/versions/{versions[-1]}/activate")
    assert r.status_code == 200, r.text
    assert wait_until(lambda: b.get("/healthz").json()["version"] == versions[-1], timeout=5)
    assert top(b)["version"] == versions[-1]

    other = a_buyer(svc, 4)
    assert top(b, other)["items"]
    r = a.delete(f"/v1/customers/{other}")
    assert r.status_code == 200, r.text
    assert b.get(f"/v1/customers/{other}/recommendations").status_code == 404
    status = b.get("/healthz").json()["replica"]
    assert status["caught_up"]["events"] >= 1 and status["caught_up"]["erasures"] >= 1


# ------------------------------------------------------------------------------------------ batch on the shared store
def test_sharded_batch_workers_read_the_postgresql_store_they_were_given(shared_ws, tmp_path, monkeypatch):
    """The workers are spawned processes: they must get the store's URL from the workspace, not from the
    environment (which does not name it here)."""
    import pandas as pd

    from vendome.batch import run_batch
    from vendome.batch_sharded import run_sharded

    monkeypatch.delenv("VENDOME_DATABASE_URL", raising=False)
    summary = run_sharded(shared_ws, tmp_path / "out", MODEL, "email", 5, workers=2, shards=4, threads=2,
                          progress=False)
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    run_batch(shared_ws, tmp_path / "single.parquet", MODEL, "email", 5, progress=False, now=manifest["now"])
    parts = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "out").glob("part-*.parquet"))],
                      ignore_index=True)
    assert summary.shards == 4 and len(parts) > 0
    pd.testing.assert_frame_equal(parts, pd.read_parquet(tmp_path / "single.parquet"))
