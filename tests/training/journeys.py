"""A boutique whose clients walk the catalog in a fixed order: after piece k comes piece k + 1 (mod n)."""

from __future__ import annotations

import numpy as np

from models.model_fixtures import customers, dataset, products
from vendome.data.dataset import Dataset


def cycle_boutique(n_items: int = 12, n_users: int = 60, length: int = 8, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for step in range(length):
            day = step * 2.0 + rng.uniform(0, 1)
            events.append((u, (start + step) % n_items, "view", day))
            if rng.random() < 0.5:  # a click on the same piece right after: the same step of the journey
                events.append((u, (start + step) % n_items, "click", day + 0.01))
    return dataset(products([f"piece {i}" for i in range(n_items)]), customers(n_users), events, name="cycle")
