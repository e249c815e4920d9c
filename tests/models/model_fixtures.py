"""Small hand-made boutiques for the model tests: contract tables built row by row, then `Dataset.from_tables`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vendome.data.dataset import Dataset

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def products(titles: list[str], categories: list[str] | None = None) -> pd.DataFrame:
    n = len(titles)
    return pd.DataFrame({
        "product_id": [f"P{i:03d}" for i in range(n)],
        "title": titles,
        "category": categories or ["jewelry"] * n,
        "brand": ["Maison A"] * n,
        "price": np.linspace(900.0, 9000.0, n),
        "image_url": [""] * n,
        "material": ["yellow gold"] * n,
        "stock_status": ["in_stock"] * n,
    })


def customers(n: int, **columns: list) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": [f"C{u:03d}" for u in range(n)],
                          "registration_date": [T0] * n, "location_country": ["France"] * n,
                          "last_active_date": [T0] * n})
    for name, values in columns.items():
        frame[name] = values
    return frame


def dataset(prods: pd.DataFrame, custs: pd.DataFrame, events: list[tuple[int, int, str, float]],
            name: str = "boutique") -> Dataset:
    """events: (user index, item index, interaction type, day since T0)."""
    frame = pd.DataFrame(events, columns=["u", "i", "interaction_type", "day"])
    interactions = pd.DataFrame({
        "interaction_id": [f"E{k}" for k in range(len(frame))],
        "customer_id": custs["customer_id"].to_numpy()[frame["u"].to_numpy(int)],
        "product_id": prods["product_id"].to_numpy()[frame["i"].to_numpy(int)],
        "interaction_type": frame["interaction_type"],
        "timestamp": T0 + pd.to_timedelta(frame["day"], unit="D"),
    })
    return Dataset.from_tables({"products": prods, "customers": custs, "interactions": interactions}, name=name)


def block_dataset(users_per_block: int = 20, items_per_block: int = 10, per_user: int = 5,
                  seed: int = 0) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Two tastes: block-A clients buy and view only block-A items, block-B clients only block-B items.

    Returns the Dataset, each user's block (0/1) and each item's block.
    """
    rng = np.random.default_rng(seed)
    item_block = np.repeat([0, 1], items_per_block)
    user_block = np.repeat([0, 1], users_per_block)
    events = []
    for u, b in enumerate(user_block):
        mine = np.flatnonzero(item_block == b)
        for day, i in enumerate(rng.choice(mine, per_user, replace=False)):
            events.append((u, int(i), "view", float(day)))
            events.append((u, int(i), "purchase", day + 0.5))
    titles = [f"{'Serpent' if b == 0 else 'Halo'} piece {i}" for i, b in enumerate(item_block)]
    return dataset(products(titles), customers(len(user_block)), events, name="blocks"), user_block, item_block


def clustered_features(item_cluster: np.ndarray, dim: int = 16, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """Embeddings around one random direction per cluster: items of a cluster look alike."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(int(item_cluster.max()) + 1, dim))
    return (centers[item_cluster] + noise * rng.normal(size=(len(item_cluster), dim))).astype(np.float32)


def launch_boutique(seed: int = 0, test_seed: int = 0, cold_clients: int = 0) -> Dataset:
    """Four looks; every season the house launches new pieces, and clients buy the new pieces of their look.

    Days 0-50: clients view and buy the permanent collection of their look. Days 62-85: they buy the first launch
    (the hybrid's own validation window). Days 95-118: the second launch (the caller's test). New pieces have no
    history when they are recommended, so only the visual component can find them. `cold_clients` adds clients
    with no event at all. Image and text features are both the looks (text noisier); each look has its metal.
    """
    rng = np.random.default_rng(seed)
    looks, old, new = 4, 6, 4
    cluster = np.concatenate([np.repeat(np.arange(looks), old), np.repeat(np.arange(looks), new),
                              np.repeat(np.arange(looks), new)])
    launch = np.concatenate([np.zeros(looks * old), np.ones(looks * new), np.full(looks * new, 2)]).astype(int)
    n_users = 80
    taste = np.arange(n_users) % looks
    events = []
    for u in range(n_users):
        mine = np.flatnonzero((cluster == taste[u]) & (launch == 0))
        for i in rng.choice(mine, 3, replace=False):
            events.append((u, int(i), "view", rng.uniform(0, 50)))
        for i in rng.choice(mine, 2, replace=False):
            events.append((u, int(i), "purchase", rng.uniform(0, 50)))
        first = np.flatnonzero((cluster == taste[u]) & (launch == 1))
        events.append((u, int(rng.choice(first)), "purchase", rng.uniform(62, 85)))
    test_rng = np.random.default_rng(100 + test_seed)
    for u in range(n_users):
        second = np.flatnonzero((cluster == taste[u]) & (launch == 2))
        events.append((u, int(test_rng.choice(second)), "purchase", test_rng.uniform(95, 118)))
    titles = [f"look {c} piece {i}" for i, c in enumerate(cluster)]
    n = n_users + cold_clients
    custs = customers(n, gender=["F"] * n, age_group=rng.choice(["25-34", "35-44", "45-54"], n))
    prods = products(titles)
    prods["material"] = np.array(["yellow gold", "white gold", "rose gold", "platinum"])[cluster]  # a look's metal
    data = dataset(prods, custs, events, name="launches")
    data.item_features["image"] = clustered_features(cluster, noise=0.3, seed=seed)
    data.item_features["text"] = clustered_features(cluster, noise=0.6, seed=seed + 1)
    return data
