"""API replicas over one PostgreSQL store and one Redis: what following the other replicas costs, how fast a change
reaches another replica, and cold-list throughput with one and with two replica processes, measured in one run.

    sudo apt-get install wrk
    .venv/bin/vendome generate /tmp/demo_export          # or any export
    .venv/bin/python bench/bench_replicas.py --export /tmp/demo_export \
        --database-url postgresql://postgres@127.0.0.1:5432/vendome_bench --folder bench/out/ws_replicas

1. Ingests the export into PostgreSQL (schema `replicas`; skipped when the schema holds it) with the workspace
   folder `--folder` for features and models, and trains `--model` there if it has no version yet.
2. Following cost, in one process: a cached "for you" answer read with the replica's catch-up (one watermark
   query) against the same read with it switched off; the ratio of the medians.
3. Propagation: two `vendome serve` processes (A, B) sharing the store and Redis; for `--events` clients, B's list,
   a purchase of its top piece posted to A, then B's next list timed and checked (the piece must be gone).
4. Throughput of cold lists (`--no-warm`, every first request computes her list) with 1 replica, then with 2
   (one wrk per replica, at the same total connections), random clients, the same Redis namespace flushed
   before each phase: the ratio 2 / 1 is what a second replica buys on this machine's 2 cores (the load
   generator shares them).
Writes bench/out/replicas.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis

from bench_load import LUA, free_port, parse_wrk
from common import OUT
from vendome.artifacts import versions
from vendome.data.ingest import ingest_folder
from vendome.pipeline import train, training_data
from vendome.serve.cache import ResponseCache
from vendome.serve.replicas import wait_until
from vendome.serve.service import Recommendations
from vendome.workspace import Workspace

REDIS = "redis://127.0.0.1:6379/0"


def prepare(args) -> Workspace:
    sep = "&" if "?" in args.database_url else "?"
    ws = Workspace(args.folder, database_url=f"{args.database_url}{sep}schema=replicas").ensure()
    if not ws.exists():
        ingest_folder(Path(args.export), ws)
    if not versions(ws, args.model):
        train(ws, args.model, data=training_data(ws, threads=2), threads=2)
    return ws


def following_cost(ws: Workspace, model: str, n: int) -> dict:
    """Median seconds of a cached answer with and without the per-request catch-up, alternating rounds."""
    svc = Recommendations(ws, model, cache=ResponseCache())
    ids = svc.data.customers["customer_id"].astype(str).to_numpy()[:n]
    for cid in ids:
        svc.for_customer_json(cid)              # fill the in-process cache
    replica, timings = svc.replica, {"on": [], "off": []}
    for round_ in range(6):
        mode = "on" if round_ % 2 == 0 else "off"
        svc.replica = replica if mode == "on" else None
        for cid in ids:
            t = time.perf_counter()
            svc.for_customer_json(cid)
            timings[mode].append(time.perf_counter() - t)
    svc.replica = replica
    on, off = statistics.median(timings["on"]), statistics.median(timings["off"])
    return {"cached_answer_ms_following": on * 1e3, "cached_answer_ms_alone": off * 1e3, "ratio": on / off,
            "requests_each": len(timings["on"])}


def serve(ws: Workspace, model: str, namespace: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "VENDOME_API_KEY": "bench", "VENDOME_DATABASE_URL": ws.database_url,
           "VENDOME_REDIS_URL": REDIS, "VENDOME_CACHE_NAMESPACE": namespace, "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vendome.cli", "serve", "--workspace", str(ws.root),
                                 "--model", model, "--port", str(port), "--no-warm"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    if not wait_until(up, timeout=600, step=0.5):
        proc.kill()
        raise SystemExit(f"replica did not start:\n{log.read_text()[-2000:]}")
    return proc, base


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def propagation(a: str, b: str, ids: np.ndarray) -> dict:
    """B's next answer after A accepted a purchase: its latency and whether the piece is gone."""
    after, cold, gone = [], [], 0
    with httpx.Client(timeout=30) as http:
        for cid in ids:
            t = time.perf_counter()
            first = http.get(f"{b}/v1/customers/{cid}/recommendations", params={"k": 10}).json()
            cold.append(time.perf_counter() - t)
            piece = first["items"][0]["product_id"]
            r = http.post(f"{a}/v1/events", json={"customer_id": cid, "product_id": piece,
                                                   "interaction_type": "purchase"})
            r.raise_for_status()
            t = time.perf_counter()
            again = http.get(f"{b}/v1/customers/{cid}/recommendations", params={"k": 10}).json()
            after.append(time.perf_counter() - t)
            gone += piece not in {c["product_id"] for c in again["items"]}
    return {"clients": len(ids), "piece_gone_on_b": gone, "b_after_event_ms_median": statistics.median(after) * 1e3,
            "b_cold_ms_median": statistics.median(cold) * 1e3}


def throughput(urls: list[str], seconds: float, connections: int, lua: Path, namespace: str) -> dict:
    """Sum of wrk's req/s over the replicas, each driven by its own wrk with its share of the connections."""
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"vendome:{namespace}:*"):
        client.delete(key)
    runs: list[dict] = []
    procs = []
    for url in urls:
        cmd = ["wrk", "-t", "1", "-c", str(connections // len(urls)), "-d", f"{int(seconds)}s", "--latency",
               "--timeout", "10s", "-s", str(lua), url]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    for p in procs:
        runs.append(parse_wrk(p.communicate()[0]))
    return {"rps": sum(r["rps"] for r in runs), "p50_ms": max(r["p50_ms"] for r in runs),
            "p99_ms": max(r["p99_ms"] for r in runs), "non_2xx": sum(r["non_2xx"] for r in runs), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--folder", default=str(OUT / "ws_replicas"))
    ap.add_argument("--model", default="hybrid")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--events", type=int, default=50)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `apt-get install wrk` (Debian's package)")
    ws = prepare(args)
    out: dict = {"model": args.model, "date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(),
                 "load_before": os.getloadavg()}
    out["following"] = following_cost(ws, args.model, n=500)
    print(json.dumps(out["following"]), flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="vendome-replicas-"))
    ids = Recommendations(ws, args.model).data.customers["customer_id"].astype(str).to_numpy()
    (tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp / "random.lua").write_text(LUA % (tmp / "ids.txt", 7))
    namespace = f"bench-{os.getpid()}"
    (a, url_a), (b, url_b) = (serve(ws, args.model, namespace, tmp / f"{n}.log") for n in "ab")
    try:
        rng = np.random.default_rng(0)
        out["propagation"] = propagation(url_a, url_b, rng.choice(ids, args.events, replace=False))
        print(json.dumps(out["propagation"]), flush=True)
        one = throughput([url_a], args.seconds, args.connections, tmp / "random.lua", namespace)
        two = throughput([url_a, url_b], args.seconds, args.connections, tmp / "random.lua", namespace)
    finally:
        stop([a, b])
    out["cold_one_replica"], out["cold_two_replicas"] = one, two
    out["ratio_two_over_one"] = two["rps"] / one["rps"]
    print(f"cold lists: 1 replica {one['rps']:.1f} req/s, 2 replicas {two['rps']:.1f} req/s, "
          f"ratio {out['ratio_two_over_one']:.2f}; non-2xx {one['non_2xx'] + two['non_2xx']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "replicas.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
