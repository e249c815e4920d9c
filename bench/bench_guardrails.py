"""10,000 random requests across placements under the house's guardrails, each list checked by the independent
auditor: the count of violations must be zero. Also the cost of the guard per request, against the same requests
served without it, in the same run.

    .venv/bin/python bench/bench_guardrails.py --workspace workspace [--requests 10000] [--model hybrid]

Requests: a random placement (home, product, cart, email), a random client (or none, for product pages), random
anchors (one product for a product page, one to three pieces for a cart), a random day of the year around the
data's end (seasons and launch dates move with it) and a random k in 1..30. The policy is the workspace's
rules.yaml (the demo writes the house's: fine jewelry never beside the diffusion line, price band, diversity) plus,
for this run, a promotion and a season, so every kind of rule is exercised. Lists come from the one recommend
path (`recommend_lists` with the guard), scored by the active model; `vendome.rules.audit.Auditor` re-derives
every rule from the catalog rows and the history, one piece at a time.
Writes bench/out/guardrails.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import yaml
from tqdm import tqdm

from common import OUT
from vendome.artifacts import load_model
from vendome.pipeline import training_data
from vendome.recommend import recommend_lists
from vendome.rules import Guard, Request, load_policy, parse_policy
from vendome.rules.audit import Auditor
from vendome.serve.service import rules_path
from vendome.workspace import Workspace

DAY = 86400.0


def policy_for_run(ws: Workspace, data):
    """The workspace's rules, with a promotion of its newest collection and a winter season for boots added."""
    path = rules_path(ws)
    base = load_policy(path if path.exists() else None).model_dump(mode="json", exclude_none=True)
    newest = data.products.sort_values("created_date")["collection"].dropna().iloc[-1]
    base["promotions"] = [{"name": "new collection", "match": {"collection": [newest]}, "share": 0.2,
                           "placements": ["home", "email", "cart"]}]
    subs = set(data.products.get("subcategory", []))
    if "boots" in subs:
        base["seasons"] = [{"match": {"subcategory": ["boots"]}, "start": "10-01", "end": "03-15"}]
    return parse_policy(yaml.safe_dump(base, allow_unicode=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="workspace")
    ap.add_argument("--model", default="hybrid")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    data = training_data(ws, progress=False)
    model, _ = load_model(ws, args.model)
    policy = policy_for_run(ws, data)
    guard, auditor = Guard(policy, data), Auditor(policy, data)
    rng = np.random.default_rng(args.seed)
    end = float(data.interactions["timestamp"].max())
    placements = ("home", "product", "cart", "email")
    counts = {p: 0 for p in placements}
    violations: list[str] = []
    guarded_ms, bare_ms = [], []
    for _ in tqdm(range(args.requests), desc="random requests", unit="req"):
        placement = placements[int(rng.integers(4))]
        n_anchors = {"product": 1, "cart": int(rng.integers(1, 4))}.get(placement, 0)
        anchors = tuple(int(a) for a in rng.choice(data.n_items, n_anchors, replace=False))
        user = int(rng.integers(data.n_users)) if placement != "product" or rng.random() < 0.5 else None
        now = end + float(rng.integers(-180, 180)) * DAY
        k = int(rng.integers(1, 31))
        req = Request(placement, user, anchors, now)
        scored_user = np.array([user if user is not None else 0])
        t0 = time.perf_counter()
        items, _, labels = recommend_lists(model, scored_user, k, guard=guard, request=req)
        guarded_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        recommend_lists(model, scored_user, k)
        bare_ms.append((time.perf_counter() - t0) * 1000)
        row = [int(i) for i in items[0] if i >= 0]
        found = auditor.violations(req, row, labels[0][:len(row)])
        violations += [f"{req}: {v}" for v in found]
        counts[placement] += 1
    g, b = np.array(guarded_ms), np.array(bare_ms)
    out = {"requests": args.requests, "by_placement": counts, "violations": len(violations),
           "examples": violations[:20], "model": args.model, "catalog": data.n_items,
           "guarded_ms": {"median": float(np.median(g)), "p99": float(np.percentile(g, 99))},
           "bare_ms": {"median": float(np.median(b)), "p99": float(np.percentile(b, 99))},
           "ratio_median": float(np.median(g) / np.median(b))}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "guardrails.json").write_text(json.dumps(out, indent=2))
    print(f"{args.requests} requests {counts}: {len(violations)} violations")
    for v in violations[:10]:
        print("  ", v)
    print(f"per request: guarded median {out['guarded_ms']['median']:.2f} ms (p99 {out['guarded_ms']['p99']:.2f}), "
          f"same model without guardrails {out['bare_ms']['median']:.2f} ms: ratio {out['ratio_median']:.2f}")


if __name__ == "__main__":
    main()
