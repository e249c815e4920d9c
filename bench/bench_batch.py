"""Batch scoring throughput with 1 and 2 worker processes, measured in one run on the same workspace.

Each run is the whole `vendome batch --output OUT_DIR --workers N` job (`vendome.batch_sharded.run_sharded`): the
parent's selection, spawning the workers, each worker loading the data and the model, scoring its shards through
the serving rules, writing the parts. Customers per second is customers / wall seconds of that job; "scoring s" is
the sum over shards of the time a worker spent on it (so loading is the difference). The same `--threads` budget
is split between the workers (threads // N each), so the ratio is what a second process adds on the same cores.
The runs alternate (1, 2, 2, 1, ...) so a neighbour's load hits both; the best of each is kept, and the parts of
every run must be identical to the first one's.

    vendome demo --workspace /tmp/batch_ws --size full --no-serve --threads 2
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_batch.py --workspace /tmp/batch_ws [--model hybrid --repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from vendome.batch_sharded import MANIFEST, run_sharded
from vendome.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/batch_ws"))
    ap.add_argument("--model", default="hybrid")
    ap.add_argument("--placement", default="home", help="home scores every client; email only the consenting")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--workers", default="1,2", help="comma list of worker counts")
    ap.add_argument("--threads", type=int, default=2, help="thread budget split between the workers")
    ap.add_argument("--shards", type=int, default=None, help="default: from the customer count")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each worker count (alternating order)")
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    if not ws.db.exists():
        raise SystemExit(f"no workspace at {args.workspace}: run `vendome demo --workspace {args.workspace} "
                         f"--size full --no-serve` first")
    counts = [int(n) for n in args.workers.split(",") if n]
    order = [n for r in range(args.repeat) for n in (counts if r % 2 == 0 else counts[::-1])]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load before "
          f"{_load()}; model {args.model}, placement {args.placement}, k {args.k}, thread budget {args.threads}")
    best: dict[int, dict] = {}
    reference: pd.DataFrame | None = None
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        for i, n in enumerate(order):
            out = Path(tmp) / f"run{i}-w{n}"
            s = run_sharded(ws, out, args.model, args.placement, args.k, workers=n, shards=args.shards,
                            threads=args.threads, progress=False)
            table = pd.read_parquet(out)
            if reference is None:
                reference = table
            pd.testing.assert_frame_equal(table, reference)          # same rows whatever the worker count
            shards = json.loads((out / MANIFEST).read_text())["shards"].values()
            scoring = sum(p["seconds"] for p in shards)
            row = {"workers": n, "customers": s.customers, "shards": s.shards, "seconds": s.seconds,
                   "cps": s.customers / s.seconds, "scoring": scoring, "load": _load()}
            print(f"  run {i + 1}: {n} worker(s) {s.seconds:.1f} s, {row['cps']:.0f} customers/s "
                  f"(load {row['load']})", flush=True)
            if n not in best or row["seconds"] < best[n]["seconds"]:
                best[n] = row
            shutil.rmtree(out)
    print("\n| workers | customers | shards | wall s | customers/s | scoring s (sum over shards) |")
    print("|---|---|---|---|---|---|")
    for n in counts:
        r = best[n]
        print(f"| {n} | {r['customers']} | {r['shards']} | {r['seconds']:.1f} | {r['cps']:.0f} | {r['scoring']:.1f} |")
    if len(counts) > 1:
        base = best[counts[0]]["cps"]
        for n in counts[1:]:
            print(f"\n{n} workers / {counts[0]}: {best[n]['cps'] / base:.2f}x customers/s "
                  f"(identical rows in every run; load after {_load()})")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
