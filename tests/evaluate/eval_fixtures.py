"""A small boutique with a known shape, and tiny models whose behavior the evaluator's numbers must reflect.

Fixtures, not mocks: each model is a real Recommender with a behavior chosen so the expected numbers are known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Recommender

DAY = 86_400
T0 = 1_700_000_000
OUT_OF_STOCK = (0, 1, 2, 3)          # sold-out pieces, bought in training by some clients
NEW_ITEMS = (44, 45, 46, 47)         # a new collection: first bought in the test month
COLD_USERS = range(50, 60)           # clients whose first event is in the test month
HEAVY_USERS = range(0, 5)            # clients with a long training history


def boutique_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """48 products in 3 categories, 60 clients, 100 days; the last 30 days are the test month."""
    rng = np.random.default_rng(seed)
    n_items, n_users = 48, 60
    categories = np.repeat(["rings", "necklaces", "bags"], 16)
    products = pd.DataFrame({
        "product_id": [f"P{i:03d}" for i in range(n_items)],
        "title": [f"{c} {i}" for i, c in enumerate(categories)],
        "category": categories,
        "brand": [f"maison {i % 4}" for i in range(n_items)],
        "price": np.tile(np.linspace(200.0, 9_000.0, 16), 3),
        "stock_status": ["out_of_stock" if i in OUT_OF_STOCK else "in_stock" for i in range(n_items)],
    })
    customers = pd.DataFrame({
        "customer_id": [f"C{u:03d}" for u in range(n_users)],
        "gender": np.where(np.arange(n_users) % 3 == 0, "male", "female"),
        "age_group": np.where(np.arange(n_users) % 2 == 0, "25-34", "35-44"),
    })
    rows = []
    old_items = np.arange(4, 44)
    for u in range(n_users):
        bought: set[int] = set()
        if u not in COLD_USERS:
            n_train = 25 if u in HEAVY_USERS else int(rng.integers(2, 8))
            for _ in range(n_train):
                item = int(rng.integers(0, 44))
                kind = "purchase" if rng.random() < 0.5 else "view"
                bought |= {item} if kind == "purchase" else set()
                rows.append((u, item, kind, T0 + int(rng.integers(0, 69 * DAY))))
        if u < 40 or u in COLD_USERS:
            pool = np.concatenate([old_items, NEW_ITEMS])
            choices = [int(i) for i in rng.permutation(pool) if int(i) not in bought][:int(rng.integers(1, 3))]
            for item in choices:
                rows.append((u, item, "purchase", T0 + int(rng.integers(71 * DAY, 100 * DAY))))
    rows.append((0, 10, "view", T0 + 100 * DAY))  # pins the end of the data, hence the cut-off
    inter = pd.DataFrame(rows, columns=["user", "item", "interaction_type", "timestamp"])
    interactions = pd.DataFrame({
        "interaction_id": np.arange(len(inter)),
        "customer_id": customers["customer_id"].to_numpy()[inter["user"]],
        "product_id": products["product_id"].to_numpy()[inter["item"]],
        "interaction_type": inter["interaction_type"],
        "timestamp": inter["timestamp"],
    })
    return {"products": products, "customers": customers, "interactions": interactions}


class Popularity(Recommender):
    """Deterministic: training interaction counts."""

    name = "popularity"

    def fit(self, data: Dataset) -> Popularity:
        self.counts_ = np.bincount(data.interactions["item"], minlength=data.n_items).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts_, (len(users), 1))


class RandomScores(Recommender):
    """Stochastic: a fixed random score table drawn at fit time from `seed`."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, data: Dataset) -> RandomScores:
        self.table_ = np.random.default_rng(self.seed).random((data.n_users, data.n_items), dtype=np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.table_[users]


class Oracle(Recommender):
    """Knows the test targets: the upper bound every metric must report as perfect."""

    name = "oracle"

    def __init__(self, test: sp.csr_matrix | None = None) -> None:
        self.test = test

    def fit(self, data: Dataset) -> Oracle:
        self.n_items_ = data.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.test[users].toarray().astype(np.float32) + np.linspace(0, 0.5, self.n_items_, dtype=np.float32)


class Forbidden(Recommender):
    """Prefers exactly what the guardrails forbid: sold-out pieces and what each client already bought."""

    name = "forbidden"

    def fit(self, data: Dataset) -> Forbidden:
        self.bought_ = data.target_matrix()
        self.sold_out_ = (data.products["stock_status"] == "out_of_stock").to_numpy(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return 10.0 * self.bought_[users].toarray() + 5.0 * self.sold_out_ + 0.0


class Broken(Recommender):
    """Fails the way a model without the features it needs fails."""

    name = "broken"

    def fit(self, data: Dataset) -> Broken:
        raise ValueError("dataset has no 'image' item features")

    def score(self, users: np.ndarray) -> np.ndarray:
        raise RuntimeError("scoring failed")


class Tunable(Recommender):
    """A hybrid-like model: remembers which validation protocol it was given when fitted."""

    name = "tunable"
    seen_validation: list[str] = []

    def __init__(self, validation: str = "temporal", seed: int = 0) -> None:
        self.validation = validation
        self.seed = seed

    def fit(self, data: Dataset) -> Tunable:
        Tunable.seen_validation.append(self.validation)
        self.table_ = np.random.default_rng(self.seed).random((data.n_users, data.n_items), dtype=np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.table_[users]


REGISTRY = {"popularity": Popularity, "random": RandomScores, "broken": Broken, "tunable": Tunable,
            "forbidden": Forbidden}


def make(name: str, **params) -> Recommender:
    """The registry's contract (`make_model(name, **params)`) over the fixture models."""
    return REGISTRY[name](**params)
