"""Full-ranking accuracy metrics from top-k lists (pure numpy; per-user arrays for significance tests).

Definitions (the RecBole / S3-Rec conventions, so numbers compare with published tables):
  HR@k     1 if any target is in the top k
  Recall@k hits in top k / number of targets
  NDCG@k   DCG@k / ideal DCG@k, binary relevance, log2(rank + 1) discount, ideal over min(|T|, k)
  MRR@k    1 / rank of the first hit in the top k (0 if none)
  MAP@k    mean over hit ranks of precision at that rank, divided by min(|T|, k)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

KS = (5, 10, 20)
ACCURACY = ("hr", "recall", "ndcg", "mrr", "map")


def hit_matrix(items: np.ndarray, test: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Boolean (n_users, k): is the item at each rank a test target of that user. Item -1 (empty slot) never hits."""
    rows = test[users]
    safe = np.where(items >= 0, items, 0)
    hits = np.asarray(rows[np.arange(len(users))[:, None], safe].todense()).astype(bool)
    return hits & (items >= 0)


def per_user_metrics(hits: np.ndarray, n_targets: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, np.ndarray]:
    """Per-user metric arrays, keys like 'ndcg@10'."""
    n_targets = np.asarray(n_targets, dtype=np.float64)
    kmax = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    ranks = np.arange(1, kmax + 1)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k > kmax:
            raise ValueError(f"metrics at k={k} need top-{k} lists, got top-{kmax}")
        h = hits[:, :k]
        n_hit = h.sum(1)
        ideal_n = np.minimum(n_targets, k).astype(int)
        idcg = np.concatenate([[0.0], np.cumsum(discount[:k])])[ideal_n]
        dcg = (h * discount[:k]).sum(1)
        first = np.where(h.any(1), h.argmax(1) + 1, 0)
        prec_at_hit = np.cumsum(h, 1) / ranks[:k]
        out[f"hr@{k}"] = (n_hit > 0).astype(np.float64)
        out[f"recall@{k}"] = n_hit / np.maximum(n_targets, 1)
        out[f"ndcg@{k}"] = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
        out[f"mrr@{k}"] = np.divide(1.0, first, out=np.zeros(len(h)), where=first > 0)
        out[f"map@{k}"] = (prec_at_hit * h).sum(1) / np.maximum(ideal_n, 1)
    return out


def summarize(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v.mean()) if len(v) else 0.0 for k, v in per_user.items()}
