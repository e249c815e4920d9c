"""How much does honest evaluation cost on top of ranking? Full ranking of 20,000 users over 12,000 items.

(a) bare reference, measured in the same run: the user x item matrix product and an argpartition top-20, batched;
(b) `vendome.evaluate.run.evaluate`: the same ranking through `vendome.recommend.recommend` with the stock mask and
    the purchased-item exclusions, then every accuracy metric at 5/10/20, beyond-accuracy measures, guardrail
    check, slices and exposure.

    .venv/bin/python bench/bench_eval_speed.py [--users 20000 --items 12000 --factors 64 --repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.data.splits import Split
from vendome.evaluate.run import evaluate
from vendome.models.base import Recommender

TOP = 20


class DotProduct(Recommender):
    """A factor model with random factors: the cost of scoring is the cost of a real MF model's scoring."""

    name = "dot"

    def __init__(self, factors: int = 64, seed: int = 0) -> None:
        self.factors = factors
        self.seed = seed

    def fit(self, data: Dataset) -> DotProduct:
        rng = np.random.default_rng(self.seed)
        self.user_factors_ = rng.standard_normal((data.n_users, self.factors), dtype=np.float32)
        self.item_factors_ = rng.standard_normal((data.n_items, self.factors), dtype=np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T


def make_split(n_users: int, n_items: int, seed: int = 0) -> Split:
    """A catalog with 5% out-of-stock items, ~4 training purchases and ~4 views per user, 1-3 test targets each."""
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n_items)],
        "title": "item",
        "category": rng.choice(["rings", "necklaces", "bags", "shoes", "ready-to-wear", "watches"], n_items),
        "brand": rng.choice([f"maison{b}" for b in range(40)], n_items),
        "price": np.round(np.exp(rng.normal(7, 1, n_items)), 2),
        "stock_status": np.where(rng.random(n_items) < 0.05, "out_of_stock", "in_stock"),
    })
    customers = pd.DataFrame({
        "customer_id": [f"c{u}" for u in range(n_users)],
        "gender": rng.choice(["female", "male", "unknown"], n_users, p=[0.6, 0.3, 0.1]),
        "age_group": rng.choice(["18-24", "25-34", "35-44", "45+"], n_users),
    })
    n_events = n_users * 8
    users = rng.integers(0, n_users, n_events)
    items = rng.zipf(1.3, n_events) % n_items
    interactions = pd.DataFrame({
        "customer_id": np.char.add("c", users.astype(str)),
        "product_id": np.char.add("p", items.astype(str)),
        "interaction_type": rng.choice(["purchase", "view"], n_events),
        "timestamp": 1_700_000_000 + rng.integers(0, 180 * 86_400, n_events),
    })
    train = Dataset.from_tables({"products": products, "customers": customers, "interactions": interactions},
                                name="bench")
    n_targets = rng.integers(1, 4, n_users)
    rows = np.repeat(np.arange(n_users), n_targets)
    test = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, rng.integers(0, n_items, len(rows)))),
                         shape=(n_users, n_items))
    test.sum_duplicates()
    test.data[:] = 1.0
    return Split(train=train, test=test, users=np.arange(n_users), protocol="temporal",
                 info={"n_test_targets": int(test.nnz)})


def bare(model: DotProduct, users: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Reference: matrix product and argpartition top-20 per batch, nothing else."""
    out = np.empty((len(users), TOP), dtype=np.int64)
    for start in range(0, len(users), batch_size):
        scores = model.score(users[start:start + batch_size])
        n = scores.shape[1]
        out[start:start + len(scores)] = np.argpartition(scores, n - TOP, axis=1)[:, n - TOP:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=12_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1, help="take the best of this many runs of each")
    args = ap.parse_args()

    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible, "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable; "
          f"numpy {np.__version__}")
    t = time.perf_counter()
    split = make_split(args.users, args.items)
    model = DotProduct(args.factors).fit(split.train)
    print(f"fixture: {args.users} users x {args.items} items, {split.test.nnz} test targets, "
          f"{len(split.train.interactions)} training events ({time.perf_counter() - t:.1f} s to build)")

    bare_s, eval_s = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        bare(model, split.users)
        bare_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = evaluate(split, {"dot": model}, progress=False)
        eval_s.append(time.perf_counter() - t)
    a, b = min(bare_s), min(eval_s)
    entry = report["models"]["dot"]
    print(f"(a) bare matmul + argpartition top-{TOP}: {a:6.2f} s")
    print(f"(b) full evaluate() through recommend:   {b:6.2f} s   (eval_seconds in report {entry['eval_seconds']:.2f})")
    print(f"ratio (b)/(a): {b / a:.2f}   target: (b) < 15 s -> {'OK' if b < 15 else 'SLOW'}")
    print(f"ndcg@10 {entry['ndcg@10']:.5f} (random factors: about chance), guardrail violations "
          f"{entry['guardrail_violations']}")


if __name__ == "__main__":
    main()
