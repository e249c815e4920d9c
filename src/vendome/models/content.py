"""Content kNN on item embeddings: the client's taste as the weighted mean of what she engaged with.

    profile(u) = sum_j w(u, j) * e_j / ||e_j||,   w(u, j) = sum over her events on j of
                 behavior weight * 0.5 ** (age in days / half_life_days)
    score(u, i) = cos(profile(u), e_i)

The embeddings are centred on the catalog mean first (`center`): sentence and image encoders put every product
in one narrow cone (the mean of unit text vectors has norm ~0.65 on the demo catalog), so raw cosines mostly say
"this is a product description" and the profile's taste (a technique, a motif, a material) is a small ripple on
that shared part. Centring keeps only what tells products apart.

Only the catalog's own embeddings are needed, so a product launched yesterday, with no interaction at all, is
scored like any other: this is the model that finds new products. Clients with no history get popularity.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender
from vendome.models.popularity import DAY, HistoryScorer, check_users


class ContentKNN(HistoryScorer, Recommender):
    """Cosine between the user's recency- and behavior-weighted embedding profile and every item."""

    name = "content"
    modality: ClassVar[str] = ""
    reason_code: ClassVar[str] = "similar_content"
    similarity_phrase: ClassVar[str] = "similar to"

    def __init__(self, half_life_days: float | None = 90.0, center: bool = True) -> None:
        self.half_life_days = half_life_days
        self.center = center

    def item_vectors(self, data: Dataset) -> np.ndarray:
        """(n_items, d) content vectors; the encoder features of `modality` by default."""
        return np.asarray(data.features(self.modality), dtype=np.float32)

    def fit(self, data: Dataset) -> Self:
        emb = self.item_vectors(data)
        if emb.shape[0] != data.n_items:
            raise ValueError(f"{self.name}: {self.modality!r} features have {emb.shape[0]} rows, "
                             f"expected one per product ({data.n_items})")
        emb = np.nan_to_num(emb, nan=0.0, posinf=0.0, neginf=0.0)
        present = np.linalg.norm(emb, axis=1) > 0  # a product without features stays a zero row
        if self.center and present.sum() > 1:
            emb[present] -= emb[present].mean(axis=0, keepdims=True)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.embeddings_ = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        self._remember_history(data, decayed_history(data, self.half_life_days))
        return self

    def _history(self, data: Dataset) -> sp.csr_matrix:
        """Her decayed history, as `fit` builds it. Given only her events, the decay counts back from her own latest
        one rather than the catalog's: a common factor on her row, which her unit-norm profile does not see."""
        return decayed_history(data, self.half_life_days)

    def profiles(self, users: np.ndarray) -> np.ndarray:
        """Unit-norm taste vectors, (len(users), d); zero rows for users with no history."""
        p = np.asarray(self.history_[users] @ self.embeddings_, dtype=np.float32)
        norms = np.linalg.norm(p, axis=1, keepdims=True)
        return np.divide(p, norms, out=np.zeros_like(p), where=norms > 0)

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("embeddings_")
        users = check_users(users, self.n_users_, self.name)
        scores = self.profiles(users) @ self.embeddings_.T
        # popularity in [0, 1], the range of a cosine, so mixed batches stay comparable in magnitude
        scores = self._cold_to_popularity(scores, self.history_[users])
        return scores

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        self._check_fitted("embeddings_")
        row = self.history_[user]
        if row.nnz == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        hist, w = row.indices, row.data
        sims = self.embeddings_[np.asarray(items)] @ self.embeddings_[hist].T  # (len(items), len(hist))
        profile = self.profiles(np.array([user]))[0]
        reasons = []
        for k, i in enumerate(items):
            best = int(np.argmax(w * sims[k]))  # the history item that pulls this one up the most
            text = f"{self.similarity_phrase} {self.notes_.phrase(user, hist[best])}"
            reasons.append(Reason(self.reason_code, text, {
                f"{self.modality}_similarity": float(profile @ self.embeddings_[i]),
                "anchor_similarity": float(sims[k, best]),
                "anchor_weight": float(w[best] / w.sum()),
            }))
        return reasons


class VisualContent(ContentKNN):
    """Content kNN on image embeddings: 'similar in look to the Serpent pendant she wishlisted'."""

    name = "content-visual"
    modality = "image"
    reason_code = "similar_look"
    similarity_phrase = "similar in look to"


class TextContent(ContentKNN):
    """Content kNN on text embeddings (title, description, attributes)."""

    name = "content-text"
    modality = "text"
    reason_code = "similar_description"
    similarity_phrase = "close in description to"


class AttributeContent(ContentKNN):
    """Content kNN on the catalog's structured attributes: the merchandiser's view of taste.

    Each product is a one-hot vector over the values of its attribute columns (collection, material, stone,
    colour, price tier, ...), each column one unit of weight, so "she buys rose gold from the Serpent collection
    at the high-jewelry tier" becomes a profile over those values. Encoders blur exactly these facts (a sentence
    embedding barely separates "rose gold" from "yellow gold"), so on catalogs with clean attributes this is the
    strongest content signal; it also scores a new product from its attributes alone. Multi-valued cells
    ("gold, diamond", "Jewelry > Rings") count each value.
    """

    name = "content-attributes"
    modality = "attributes"
    reason_code = "shared_attributes"
    similarity_phrase = "shares its attributes with"
    columns: ClassVar[tuple[str, ...]] = ("category", "subcategory", "brand", "collection", "material",
                                          "stone_type", "color", "gender", "price_tier")

    def item_vectors(self, data: Dataset) -> np.ndarray:
        return attribute_matrix(data.products, self.columns)


def attribute_matrix(products: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """(n_products, n_values) one-hot of attribute values; a cell with several values splits its unit weight."""
    blocks = []
    for col in columns:
        if col not in products:
            continue
        values = products[col].fillna("").astype(str).str.lower()
        tokens = values.str.split(r"\s*(?:,|;|\||>)\s*", regex=True).apply(lambda t: [v for v in t if v])
        vocab = sorted({v for t in tokens for v in t})
        if len(vocab) < 2:  # a column with one value says nothing about taste
            continue
        index = {v: j for j, v in enumerate(vocab)}
        block = np.zeros((len(products), len(vocab)), dtype=np.float32)
        for row, t in enumerate(tokens):
            for v in t:
                block[row, index[v]] = 1.0 / len(t)
        blocks.append(block)
    if not blocks:
        raise ValueError(f"content-attributes: the catalog has none of the attribute columns {', '.join(columns)} "
                         "with at least two distinct values")
    return np.hstack(blocks)


def decayed_history(data: Dataset, half_life_days: float | None) -> sp.csr_matrix:
    """Users x items of summed behavior weight x recency decay (reference: the last training event), clipped >= 0."""
    inter = data.interactions
    w = inter["weight"].to_numpy(np.float64)
    if half_life_days and len(inter):
        ts = inter["timestamp"].to_numpy(np.float64)
        w = w * 0.5 ** ((ts.max() - ts) / (half_life_days * DAY))
    m = sp.csr_matrix((w, (inter["user"].to_numpy(), inter["item"].to_numpy())),
                      shape=(data.n_users, data.n_items), dtype=np.float64)
    m.sum_duplicates()
    m.data = np.maximum(m.data, 0.0)
    m.eliminate_zeros()
    return m.astype(np.float32)
