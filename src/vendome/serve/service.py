"""Recommendations for one customer or one product, through the one recommend path, with product facts and reasons.

The CLI's `recommend` and the HTTP API both use this class, so what a developer sees in the terminal is what the
site gets.
"""

from __future__ import annotations

import time

import numpy as np

from vendome.artifacts import load_model
from vendome.data.dataset import Dataset
from vendome.recommend import Rules, eligible_items, exclusions, recommend
from vendome.workspace import Workspace

PRODUCT_FIELDS = ("product_id", "title", "category", "brand", "collection", "price", "material", "image_url")


class Recommendations:
    """Loads the workspace's data and the active version of a model once; answers many requests."""

    def __init__(self, ws: Workspace, model: str = "hybrid", rules: Rules | None = None,
                 data: Dataset | None = None) -> None:
        from vendome.pipeline import training_data

        self.ws = ws
        self.rules = rules or Rules()
        self.model, self.meta = load_model(ws, model)
        self.data = data if data is not None else training_data(ws, progress=False)
        self.eligible = eligible_items(self.data, self.rules, now=time.time())
        self.exclude = exclusions(self.data, self.rules)

    def product(self, i: int) -> dict:
        row = self.data.products.iloc[int(i)]
        out = {f: row[f] for f in PRODUCT_FIELDS if f in row.index}
        out["price"] = float(out.get("price") or 0.0)
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}

    def for_customer(self, customer_id: str, k: int = 10) -> dict:
        """Top-k for a known customer; raises KeyError for an unknown id."""
        u = self.data.user_index.get(str(customer_id))
        if u is None:
            raise KeyError(f"unknown customer {customer_id!r}")
        items, scores = recommend(self.model, np.array([u]), k, eligible=self.eligible, exclude=self.exclude)
        items, scores = items[0][items[0] >= 0], scores[0][items[0] >= 0]
        reasons = self.model.explain(u, items)
        return {
            "customer_id": str(customer_id),
            "model": self.model.name,
            "version": self.meta.get("version"),
            "items": [{**self.product(i), "score": float(s), "reason": r.to_dict()}
                      for i, s, r in zip(items, scores, reasons, strict=True)],
        }

    def similar(self, product_id: str, k: int = 10, modality: str = "image") -> dict:
        """Products that look (or read) most alike, from the catalog embeddings; in-stock only."""
        i = self.data.item_index.get(str(product_id))
        if i is None:
            raise KeyError(f"unknown product {product_id!r}")
        mods = [m for m in (modality, "text", "image") if m in self.data.item_features]
        if not mods:
            raise ValueError("the catalog has no image or text embeddings to compare products with")
        feats = self.data.item_features[mods[0]]
        norms = np.linalg.norm(feats, axis=1) + 1e-9
        sims = (feats @ feats[i]) / (norms * norms[i])
        sims[~self.eligible] = -np.inf
        sims[i] = -np.inf
        top = np.argsort(-sims, kind="stable")[:k]
        top = top[np.isfinite(sims[top])]
        return {"product_id": str(product_id), "signal": mods[0],
                "items": [{**self.product(j), "score": float(sims[j]),
                           "reason": {"code": f"similar_{mods[0]}",
                                      "text": f"similar in {'look' if mods[0] == 'image' else 'description'} to "
                                              f"{self.product(i).get('title', product_id)}"}} for j in top]}
