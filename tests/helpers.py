"""Small hand-made contract tables for unit tests (a jewelry house with five products and three clients)."""

from __future__ import annotations

import pandas as pd

from vendome.data.dataset import Dataset

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def tiny_tables() -> dict[str, pd.DataFrame]:
    products = pd.DataFrame({
        "product_id": ["R1", "R2", "N1", "E1", "W1"],
        "title": ["Serpent ring", "Halo ring", "Serpent pendant", "Serpent earrings", "Tourbillon watch"],
        "category": ["rings", "rings", "necklaces", "earrings", "watches"],
        "brand": ["Maison A"] * 5,
        "price": [2400.0, 3100.0, 5200.0, 2800.0, 41000.0],
        "stock_status": ["in_stock", "in_stock", "in_stock", "in_stock", "out_of_stock"],
        "image_url": [""] * 5,
        "material": ["yellow gold"] * 4 + ["steel"],
    })
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "gender": ["F", "F", "M"]})
    rows = [
        ("c1", "R1", "view", 0), ("c1", "R1", "purchase", 1), ("c1", "N1", "view", 2), ("c1", "E1", "purchase", 9),
        ("c2", "R2", "add_to_wishlist", 3), ("c2", "R2", "purchase", 4), ("c2", "R1", "purchase", 10),
        ("c3", "W1", "view", 5), ("c3", "R2", "click", 6),
    ]
    interactions = pd.DataFrame(rows, columns=["customer_id", "product_id", "interaction_type", "day"])
    interactions["timestamp"] = T0 + pd.to_timedelta(interactions.pop("day"), unit="D")
    interactions.insert(0, "interaction_id", [f"i{k}" for k in range(len(interactions))])
    return {"products": products, "customers": customers, "interactions": interactions}


def tiny_dataset() -> Dataset:
    return Dataset.from_tables(tiny_tables(), name="tiny")
