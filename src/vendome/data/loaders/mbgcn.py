"""The multi-behavior benchmark folders released with MB-CGCN (Tmall view/cart/buy, Cheng et al., WWW 2023).

Files "u i1 i2 ..." per user (0-indexed ids, tab or space separated): view_train.txt, cart_train.txt,
buy_train.txt and buy_test.txt (one held-out purchase per user). view_test.txt and cart_test.txt are held-out
auxiliary pairs that the benchmark protocol does not use; they are not read.

Mapping and what is derived rather than read:
- view -> `view`, cart -> `add_to_cart`, buy -> `purchase`;
- column `split` is "test" on buy_test rows and "train" elsewhere: the benchmark's own split, read by the
  evaluator's `given` protocol (carve validation out of train);
- timestamps are synthetic, NOT real times (the format has none): 2014-01-01 UTC plus, in seconds,
  phase * span + the item's position on its line, with phase 0 for views, 1 carts, 2 training buys, 3 test buys and
  span one more than the longest line. So every view precedes every cart, then buys, then the test buys;
- products are the item ids seen in the files read (title "item <id>", category "unknown", defaults elsewhere);
  customers are the users, registration/last-active = their first/last synthetic time, country "unknown".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    customers_from_events,
    epoch_seconds,
    finish_interactions,
    finish_products,
    read_id_lists,
    require_dir,
    require_file,
    utc_seconds,
)

SYNTHETIC_START = "2014-01-01"
# (file, interaction type, split), in the synthetic time order.
FILES = (
    ("view_train.txt", "view", "train"),
    ("cart_train.txt", "add_to_cart", "train"),
    ("buy_train.txt", "purchase", "train"),
    ("buy_test.txt", "purchase", "test"),
)


def load_mbgcn(path: str | Path, start: str = SYNTHETIC_START) -> dict[str, pd.DataFrame]:
    """Load an MB-CGCN benchmark folder (e.g. Tmall) into contract tables with a `split` column."""
    folder = require_dir(path, "an MB-CGCN folder with view_train.txt, cart_train.txt, buy_train.txt, buy_test.txt")
    parts = []
    for name, behavior, split in FILES:
        users, items, position = read_id_lists(require_file(folder / name, f"the {behavior} file of the benchmark"),
                                               "user_id item_id item_id ...")
        parts.append((users, items, position, behavior, split))
    span = 1 + max((int(p[2].max()) + 1 if len(p[2]) else 0) for p in parts)
    base = epoch_seconds(start)
    seconds = np.concatenate([base + phase * span + p[2] for phase, p in enumerate(parts)])
    users = np.concatenate([p[0] for p in parts])
    items = np.concatenate([p[1] for p in parts])
    interactions = finish_interactions(pd.DataFrame({
        "customer_id": pd.Series(users).astype(str),
        "product_id": pd.Series(items).astype(str),
        "interaction_type": _repeat([p[3] for p in parts], [len(p[0]) for p in parts]),
        "timestamp": utc_seconds(seconds),
        "split": _repeat([p[4] for p in parts], [len(p[0]) for p in parts]),
    }))

    ids = np.unique(items)
    products = finish_products(pd.DataFrame({
        "product_id": ids.astype(str),
        "title": [f"item {i}" for i in ids],
        "category": "unknown",
    }))
    order = np.argsort(users, kind="stable")
    customers = customers_from_events(interactions["customer_id"].iloc[order], interactions["timestamp"].iloc[order])
    return {"products": products, "customers": customers, "interactions": interactions}


def _repeat(labels: list[str], counts: list[int]) -> pd.Series:
    """Each label repeated count times, as text (taken from a small text series, which is fast)."""
    return pd.Series(labels, dtype=str).take(np.repeat(np.arange(len(labels)), counts)).reset_index(drop=True)
