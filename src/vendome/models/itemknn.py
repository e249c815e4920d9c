"""Item co-occurrence kNN: 'clients who chose X also chose this'.

    sim(i, j)   = <x_i, x_j> / (||x_i|| ||x_j|| + shrinkage)      x_i: column i of the behavior-weighted matrix
    S           = sim with the diagonal removed and only the `neighbors` largest entries of each row kept
    score(u, :) = h_u S                                            h_u: her behavior-weighted history

The shrinkage term pulls similarities built on few co-occurrences toward zero (Sarwar et al. 2001; Koren 2008).
Items with no evidence for a client are ordered by popularity below every item with evidence, and clients with
no history get popularity.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender
from vendome.models.popularity import HistoryScorer, check_users


class ItemKNN(HistoryScorer, Recommender):
    """Item-item cosine on the behavior-weighted interaction matrix, top `neighbors` per item."""

    name = "itemknn"

    def __init__(self, neighbors: int = 100, shrinkage: float = 0.0) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage

    def fit(self, data: Dataset) -> Self:
        if self.neighbors < 1:
            raise ValueError(f"itemknn: neighbors must be >= 1, got {self.neighbors}")
        x = data.matrix()
        self.similarity_ = item_cosine(x, self.neighbors, self.shrinkage)
        self._remember_history(data, x)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("similarity_")
        users = check_users(users, self.n_users_, self.name)
        h = self.history_[users]
        evidence = (h @ self.similarity_).tocsr()  # h >= 0 and S > 0: every stored value is positive evidence
        evidence.eliminate_zeros()
        counts = np.diff(evidence.indptr)
        # items without evidence sit below the weakest evidence of the row, ordered by popularity
        weakest = np.ones(len(users), dtype=np.float32)
        if evidence.nnz:
            mins = np.minimum.reduceat(evidence.data, evidence.indptr[:-1][counts > 0])
            weakest[counts > 0] = 0.5 * mins
        scores = weakest[:, None] * self.popularity_[None, :]
        rows = np.repeat(np.arange(len(users)), counts)
        scores[rows, evidence.indices] = evidence.data
        scores = self._cold_to_popularity(scores, h)
        return scores

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        self._check_fitted("similarity_")
        h = self.history_[user]
        if h.nnz == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        sims = np.asarray(self.similarity_[h.indices][:, np.asarray(items)].todense())  # (history, items)
        contrib = h.data[:, None] * sims
        reasons = []
        for k, i in enumerate(items):
            if contrib[:, k].max() <= 0:
                reasons.append(Reason("bestseller", "a best seller among clients with a history like hers",
                                      {"popularity": float(self.popularity_[i])}))
                continue
            best = int(np.argmax(contrib[:, k]))
            j = h.indices[best]
            text = f"often chosen by clients who also chose {self.notes_.phrase(user, j)}"
            reasons.append(Reason("co_chosen", text, {
                "item_similarity": float(sims[best, k]),
                "anchor_share": float(contrib[best, k] / contrib[:, k].sum()),
            }))
        return reasons


def item_cosine(x: sp.csr_matrix, neighbors: int, shrinkage: float = 0.0) -> sp.csr_matrix:
    """Items x items shrunk cosine of the columns of x, diagonal removed, top `neighbors` per row, float32 csr."""
    xc = x.tocsc().astype(np.float32)
    gram = (xc.T @ xc).tocoo()
    norms = np.sqrt(np.asarray(xc.multiply(xc).sum(0), dtype=np.float64).ravel())
    off = gram.row != gram.col
    r, c = gram.row[off], gram.col[off]
    sim = gram.data[off] / (norms[r] * norms[c] + shrinkage)
    keep = sim > 0
    return top_per_row(sp.csr_matrix((sim[keep].astype(np.float32), (r[keep], c[keep])), shape=gram.shape), neighbors)


def top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (vectorised: one lexsort, no loop over rows)."""
    m = m.tocsr()
    m.sum_duplicates()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, rows))
    rank = np.arange(len(order)) - m.indptr[rows[order]]
    keep = order[rank < k]
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype)
    out.sort_indices()
    return out
