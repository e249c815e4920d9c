"""Load test of "for you" on loopback with wrk: latency percentiles and throughput against a bare endpoint of the
same server, cold and warm, an overload run at twice the saturation rate, and Redis killed in the middle of a run.

    sudo apt-get install wrk         # Debian's package; the bench refuses to run without it
    .venv/bin/python bench/bench_load.py --workspace workspace [--model hybrid] [--seconds 30] [--connections 8]

1. Starts `vendome serve` (one uvicorn process, as production runs it: the store has one writer) on a free port,
   and waits until its warmer has computed every client's home list (`vendome.serve.warm`).
2. Reference, same server, same run: wrk on `/livez` (an `async def` returning a dict: FastAPI's routing, our
   middleware and JSON, nothing of ours).
3. "For you": wrk on `/v1/customers/{id}/recommendations?placement=home&k=10` with ids drawn at random from all the
   workspace's customers by a Lua script (every request a different client).
4. Overload: wrk is closed-loop, so the overload run paces many connections (`--overload-connections`, each waiting
   between its requests) to offer twice the rate measured in 3; the server cannot keep up, so it runs saturated
   with a queue as deep as the connections, for `--overload-seconds` (60). Every non-2xx answer is counted
   (must be 0).
5. Cold: a second server started with `--no-warm` (every first request for a client computes her list: scoring,
   guardrails, diversity, reasons), same random clients.
6. Redis: a private `redis-server` on a free port as the service's cache (warmed); killed halfway through a run;
   counts non-2xx (must be 0) and shows the latency before and after.
Ratios are against the reference measured in the same run; absolute numbers are context. Writes
bench/out/load[-TAG].json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import OUT
from vendome.data.store import load_dataset
from vendome.workspace import Workspace

LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
math.randomseed(%d)
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/v1/customers/" .. id .. "/recommendations?placement=home&k=10")
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ws: Path, model: str, port: int, env: dict, warm: bool = True) -> subprocess.Popen:
    """`vendome serve` on `port`; with `warm`, returns once the warmer's first round is over."""
    proc = subprocess.Popen([sys.executable, "-m", "vendome.cli", "serve", "--workspace", str(ws), "--model", model,
                             "--port", str(port), "--warm" if warm else "--no-warm"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 1800
    while time.time() < deadline:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            if health.status_code == 200:
                w = health.json().get("warmer")
                if not warm or (w and w["rounds"] >= 1 and not w["running"]):
                    return proc
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
    proc.kill()
    raise SystemExit("the server did not start (and warm) within 30 min")


def wrk(url: str, seconds: float, connections: int, script: Path | None = None) -> dict:
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{int(seconds)}s", "--latency", "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    """requests/s, p50/p90/p99 in ms, total requests and non-2xx/3xx answers (and socket errors) from wrk's text."""
    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"), "requests": total,
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="workspace")
    ap.add_argument("--model", default="hybrid")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--overload-seconds", type=float, default=60)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--overload-connections", type=int, default=256)
    ap.add_argument("--tag", default="", help="suffix of the output file (load-TAG.json)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `apt-get install wrk` (Debian's package)")
    ws = Workspace(args.workspace)
    ids = load_dataset(ws).customers["customer_id"].astype(str)
    tmp = Path(tempfile.mkdtemp(prefix="vendome-load-"))
    (tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp / "random.lua").write_text(LUA % (tmp / "ids.txt", 1))
    out: dict = {"model": args.model, "customers": int(len(ids)), "connections": args.connections,
                 "date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count()}
    env = {**os.environ, "VENDOME_API_KEY": "bench"}
    env.pop("VENDOME_REDIS_URL", None)
    port = free_port()
    t0 = time.perf_counter()
    server = start_server(ws.root, args.model, port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        health = httpx.get(f"{base}/healthz").json()
        out["products"], out["warmer"] = health["products"], health["warmer"]
        out["start_and_warm_seconds"] = time.perf_counter() - t0
        wrk(f"{base}/livez", 3, args.connections)                                    # warm-up
        out["bare"] = wrk(f"{base}/livez", args.seconds, args.connections)
        out["for_you"] = wrk(base, args.seconds, args.connections, tmp / "random.lua")
        # twice the saturation rate, offered by paced connections: each waits `pause` ms between requests
        target = 2 * out["for_you"]["rps"]
        pause = max(1, round(1000 * args.overload_connections / target))
        (tmp / "paced.lua").write_text(LUA % (tmp / "ids.txt", 3) + f"delay = function() return {pause} end\n")
        out["overload"] = {"target_rps": target, "pause_ms": pause, "connections": args.overload_connections,
                           **wrk(base, args.overload_seconds, args.overload_connections, tmp / "paced.lua")}
        out["after_overload"] = wrk(base, 5, args.connections, tmp / "random.lua")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    port = free_port()
    server = start_server(ws.root, args.model, port, env, warm=False)
    try:
        out["for_you_cold"] = wrk(f"http://127.0.0.1:{port}", args.seconds, args.connections, tmp / "random.lua")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    out["ratio_rps_for_you_over_bare"] = out["for_you"]["rps"] / out["bare"]["rps"]
    out["ratio_rps_cold_over_bare"] = out["for_you_cold"]["rps"] / out["bare"]["rps"]
    out["redis_killed"] = redis_run(ws, args, env, tmp)
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"load-{args.tag}.json" if args.tag else "load.json"
    (OUT / name).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def redis_run(ws: Workspace, args, env: dict, tmp: Path) -> dict:
    """A run with a private Redis as the cache, killed halfway: every answer must still be a 2xx."""
    rport, port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    server = start_server(ws.root, args.model, port, {**env, "VENDOME_REDIS_URL": f"redis://127.0.0.1:{rport}/0"})
    try:
        killer = threading.Timer(args.seconds / 2, redis.kill)
        killer.start()
        result = wrk(f"http://127.0.0.1:{port}", args.seconds, args.connections, tmp / "random.lua")
        killer.join()
        result["redis_alive_after"] = redis.poll() is None
        result["after_kill"] = wrk(f"http://127.0.0.1:{port}", 5, args.connections, tmp / "random.lua")
        return result
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        if redis.poll() is None:
            redis.kill()


if __name__ == "__main__":
    main()
