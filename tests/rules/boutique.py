"""A small house with the lines a merchandiser keeps apart: fine jewelry, a diffusion line, watches, leather goods
and fragrance, four price tiers per category, pieces out of stock and not yet launched, twelve clients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vendome.data.dataset import Dataset

NOW = pd.Timestamp("2026-06-15", tz="UTC").timestamp()
FINE, DIFFUSION = "Maison Haute Joaillerie", "Rive"
LINES = {  # brand -> (category, subcategories, collections, base price)
    FINE: ("Jewelry", ("ring", "necklace", "earrings"), ("Serpent", "Halo"), 4000.0),
    DIFFUSION: ("Jewelry", ("ring", "bracelet"), ("Rive Classics",), 300.0),
    "Manufacture": ("Watches", ("dress watch", "chronograph"), ("Heritage",), 9000.0),
    "Maroquinerie": ("Leather Goods", ("handbag", "wallet"), ("Resort", "Atelier"), 2500.0),
    "Parfums": ("Fragrance", ("eau de parfum",), ("Signature",), 180.0),
}


def boutique(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for brand, (cat, subs, colls, base) in LINES.items():
        for k in range(12):
            rows.append({
                "product_id": f"{brand[:3].upper()}{k:02d}", "title": f"{brand} piece {k}", "category": cat,
                "subcategory": subs[k % len(subs)], "brand": brand, "collection": colls[k % len(colls)],
                "price": round(base * (1 + k / 3), 2), "material": ("yellow gold", "rose gold", "steel")[k % 3],
                "stock_status": "out_of_stock" if k == 11 else "in_stock",
                "created_date": "2026-09-01" if k == 10 else "2025-01-01",
                "image_url": "",
            })
    products = pd.DataFrame(rows)
    customers = pd.DataFrame({"customer_id": [f"c{u}" for u in range(12)]})
    events = []
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    for u in range(12):
        for j in range(6):
            i = int(rng.integers(len(products)))
            kind = ("view", "view", "add_to_wishlist", "add_to_cart", "purchase", "view")[j]
            events.append((f"c{u}", products.product_id[i], kind, t0 + pd.Timedelta(days=int(u * 7 + j))))
    inter = pd.DataFrame(events, columns=["customer_id", "product_id", "interaction_type", "timestamp"])
    return Dataset.from_tables({"products": products, "customers": customers, "interactions": inter},
                               name="boutique")


def index_of(data: Dataset, product_id: str) -> int:
    return data.item_index[product_id]
