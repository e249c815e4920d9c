"""Serving cost of the sequence models: top-20 for one client with a 50-event journey over the full demo catalog.

    .venv/bin/python bench/bench_serving_latency.py --workspace workspace [--models sasrec,cammsr] [--repeats 300]

Trains each model briefly on the demo workspace (latency does not depend on how long it trained: one epoch,
no validation), picks clients whose journey has at least 50 steps, and times the serving call
`recommend(model, [client], k=20, eligible=..., exclude=...)` one client at a time, as the API makes it.
The reference, measured in the same run: the bare dot product of one 64-d state with the catalog table plus
argpartition, i.e. the floor any model pays. Prints median and p95 in ms and the ratio to the reference.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vendome.models import make_model
from vendome.pipeline import training_data
from vendome.recommend import Rules, eligible_items, exclusions, recommend
from vendome.workspace import Workspace


def timed(fn, repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r)
        out[r] = (time.perf_counter() - t0) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="workspace")
    ap.add_argument("--models", default="sasrec")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = training_data(Workspace(args.workspace), progress=False)
    rules = Rules()
    eligible, exclude = eligible_items(data, rules, now=time.time()), exclusions(data, rules)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((data.n_items, 64)).astype(np.float32)
    state = rng.standard_normal(64).astype(np.float32)
    ref = timed(lambda r: np.argpartition(-(table @ state), 20)[:20], args.repeats)
    print(f"catalog {data.n_items} items; reference (64-d dot product with the catalog + argpartition): "
          f"median {np.median(ref):.3f} ms")
    for name in args.models.split(","):
        model = make_model(name, epochs=1, validate=False, threads=args.threads).fit(data)
        lengths = np.array([len(s) for s in model.sequences_.items])
        clients = np.flatnonzero(lengths >= 50)
        if len(clients) == 0:
            raise SystemExit("no client with a 50-step journey in this workspace")
        picks = rng.choice(clients, args.repeats)
        ms = timed(lambda r, m=model, p=picks: recommend(m, p[r:r + 1], k=20, eligible=eligible, exclude=exclude),
                   args.repeats)
        print(f"{name}: top-20 for one client ({len(clients)} clients with >= 50 steps, journey cut at "
              f"{model.max_len}): median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
              f"ratio to reference {np.median(ms) / np.median(ref):.1f}x")


if __name__ == "__main__":
    main()
