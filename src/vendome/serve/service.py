"""Recommendations for a client, a product page and a cart, through the one recommend path, with the workspace's
guardrails, product facts and a reason on every piece.

The CLI's `recommend` and the HTTP API both use this class, so what a developer sees in the terminal is what the
site gets. Guardrails come from `WORKSPACE/rules.yaml` (the shipped default when there is none); `reload_rules`
swaps in a new file only when it parses and compiles against this catalog, so a bad file never replaces a good one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from vendome.artifacts import load_model
from vendome.data.dataset import Dataset
from vendome.recommend import Request, recommend_lists
from vendome.rules import Guard, Policy, load_policy
from vendome.rules.guard import N_TIERS
from vendome.workspace import Workspace

PRODUCT_FIELDS = ("product_id", "title", "category", "subcategory", "brand", "collection", "price", "material",
                  "image_url")


def rules_path(ws: Workspace) -> Path:
    return ws.root / "rules.yaml"


class Recommendations:
    """Loads the workspace's data, rules and the active version of a model once; answers many requests."""

    def __init__(self, ws: Workspace, model: str = "hybrid", data: Dataset | None = None,
                 policy: Policy | None = None) -> None:
        from vendome.pipeline import training_data

        self.ws = ws
        self.model, self.meta = load_model(ws, model)
        self.data = data if data is not None else training_data(ws, progress=False)
        path = rules_path(ws)
        self.policy = policy or load_policy(path if path.exists() else None)
        self.guard = Guard(self.policy, self.data)
        self._lock = threading.Lock()
        self._cooccurrence: sp.csr_matrix | None = None

    # ------------------------------------------------------------------------------------ rules
    def reload_rules(self, path: Path | None = None) -> Policy:
        """Compile the rules file (default: the workspace's) and swap it in; on any problem (PolicyError) the rules
        in force stay as they were."""
        path = path or rules_path(self.ws)
        policy = load_policy(path if path.exists() else None)
        guard = Guard(policy, self.data)
        with self._lock:
            self.policy, self.guard = policy, guard
        return policy

    # ------------------------------------------------------------------------------------ facts
    def product(self, i: int) -> dict:
        row = self.data.products.iloc[int(i)]
        out = {f: row[f] for f in PRODUCT_FIELDS if f in row.index}
        out["price"] = float(out.get("price") or 0.0)
        tier = int(self.guard.tiers[int(i)])
        out["price_tier"] = tier if 0 <= tier < N_TIERS else None
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}

    def item_of(self, product_id: str) -> int:
        i = self.data.item_index.get(str(product_id))
        if i is None:
            raise KeyError(f"unknown product {product_id!r}")
        return i

    def user_of(self, customer_id: str) -> int:
        u = self.data.user_index.get(str(customer_id))
        if u is None:
            raise KeyError(f"unknown customer {customer_id!r}")
        return u

    # ------------------------------------------------------------------------------------ placements
    def for_customer(self, customer_id: str, k: int = 10, placement: str = "home") -> dict:
        """Top-k for a known customer ("for you" on the home page, or an e-mail); KeyError for an unknown id."""
        u = self.user_of(customer_id)
        req = Request(placement, u, (), time.time())
        items, scores, labels = recommend_lists(self.model, np.array([u]), k, guard=self.guard, request=req)
        keep = items[0] >= 0
        labels = [x for x, ok in zip(labels[0], keep, strict=True) if ok]
        items, scores = items[0][keep], scores[0][keep]
        reasons = [r.to_dict() for r in self.model.explain(u, items)]
        return {"customer_id": str(customer_id), "placement": placement, "model": self.model.name,
                "version": self.meta.get("version"),
                "items": self._cards(items, scores, reasons, labels)}

    def similar(self, product_id: str, k: int = 10, modality: str = "image") -> dict:
        """The product page: pieces that look (or read) most alike, from the catalog embeddings, within the rules
        (the anchor's line boundaries included)."""
        i = self.item_of(product_id)
        mods = [m for m in (modality, "text", "image") if m in self.data.item_features]
        if not mods:
            raise ValueError("the catalog has no image or text embeddings to compare products with")
        feats = np.asarray(self.data.item_features[mods[0]], np.float32)
        feats = feats - feats.mean(0)                      # centred: encoders put every product in one cone
        norms = np.linalg.norm(feats, axis=1) + 1e-9
        sims = (feats @ feats[i]) / (norms * norms[i])
        items, scores, labels = self._select(sims, Request("product", None, (i,), time.time()), k)
        title = self.product(i).get("title", product_id)
        what = "look" if mods[0] == "image" else "description"
        reasons = [{"code": f"similar_{mods[0]}", "text": f"similar in {what} to {title}",
                    "signals": {f"{mods[0]}_similarity": float(s)}} for s in scores]
        return {"product_id": str(product_id), "placement": "product", "signal": mods[0],
                "items": self._cards(items, scores, reasons, labels)}

    def complete_the_look(self, product_ids: list[str], k: int = 10, customer_id: str | None = None) -> dict:
        """The cart: pieces of other subcategories that clients bought with these ones (co-purchase counts), or,
        for a known client, her model's scores; never a look-alike of what the cart holds."""
        cart = tuple(self.item_of(p) for p in product_ids)
        if not cart:
            raise ValueError("complete the look needs at least one product in the cart")
        u = self.user_of(customer_id) if customer_id is not None else None
        co = np.asarray(self.cooccurrence()[list(cart)].sum(0)).ravel().astype(np.float32)
        if u is not None:
            scores = self.model.score(np.array([u]))[0].astype(np.float32)
            scores = scores + 1e-3 * co / max(float(co.max()), 1.0)    # ties broken by what is bought together
        else:
            scores = co + 1e-6 * self._popularity()
        items, out, labels = self._select(scores, Request("cart", u, cart, time.time()), k)
        reasons = []
        if u is not None:
            reasons = [r.to_dict() for r in self.model.explain(u, items)]
        else:
            for i in items:
                with_ = [c for c in cart if self.cooccurrence()[c, i] > 0]
                text = (f"clients who bought {self.product(with_[0]).get('title')} bought this" if with_
                        else "a best seller to complete the look")
                reasons.append({"code": "bought_together" if with_ else "bestseller", "text": text,
                                "signals": {"co_purchases": float(co[i])}})
        return {"cart": list(product_ids), "placement": "cart", "customer_id": customer_id,
                "items": self._cards(items, out, reasons, labels)}

    # ------------------------------------------------------------------------------------ helpers
    def _select(self, scores: np.ndarray, req: Request, k: int):
        guard = self.guard
        allowed = guard.allowed(None if req.user is None else np.array([req.user]), req)[0]
        return guard.select(scores, allowed & np.isfinite(scores), req, k)

    def _cards(self, items, scores, reasons: list[dict], labels: list[str | None]) -> list[dict]:
        cards = []
        for i, s, r, promo in zip(items, scores, reasons, labels, strict=True):
            if promo is not None:
                r = {**r, "code": "promotion", "promotion": promo,
                     "text": f"{r['text']} (featured: {promo})"}
            cards.append({**self.product(i), "score": float(s), "reason": r})
        return cards

    def cooccurrence(self) -> sp.csr_matrix:
        """Item x item counts of clients who bought both (built once, on first use)."""
        if self._cooccurrence is None:
            x = self.data.target_matrix().astype(np.float32)
            co = (x.T @ x).tocsr()
            co.setdiag(0)
            co.eliminate_zeros()
            self._cooccurrence = co
        return self._cooccurrence

    def _popularity(self) -> np.ndarray:
        return np.asarray(self.data.matrix().sum(0)).ravel().astype(np.float32)
