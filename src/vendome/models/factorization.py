"""Matrix factorization with `implicit` 0.7 (CPU): ALS on behavior confidences, and BPR.

ALS (Hu, Koren and Volinsky 2008) minimises  sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (|x_u|^2 + |y_i|^2)
with p_ui = 1 where she interacted and the confidence c_ui = 1 + alpha * w_ui, w_ui her behavior-weighted signal
(purchase 10, wishlist 4, ...). implicit reads the matrix values as c_ui directly, so we hand it 1 + alpha * w and
leave its own alpha at 1. BPR (Rendle et al. 2009) ranks her positives above sampled negatives; implicit's BPR
ignores values, so `min_weight` chooses which interactions count as positives.

Both take implicit's orientation of 0.7: a user x item csr. We keep only the factor arrays (not the implicit
object), so artifacts are plain numpy and load without implicit's native code. Items never seen in training get
zero factors (collaborative filtering knows nothing of them); clients with no history get popularity.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender
from vendome.models.popularity import (
    BEHAVIOR_VERBS,
    HistoryScorer,
    check_users,
)


class _Factorization(HistoryScorer, Recommender):
    """Shared scoring and explanation: score(u, i) = x_u . y_i."""

    def _finish_fit(self, data: Dataset, x: sp.csr_matrix, user_factors: np.ndarray,
                    item_factors: np.ndarray) -> None:
        item_factors = np.array(item_factors, dtype=np.float32)
        item_factors[np.diff(x.tocsc().indptr) == 0] = 0.0
        self.user_factors_ = np.array(user_factors, dtype=np.float32)
        self.item_factors_ = item_factors
        self._remember_history(data, x)

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("item_factors_")
        users = check_users(users, self.n_users_, self.name)
        scores = self.user_factors_[users] @ self.item_factors_.T
        scores = self._cold_to_popularity(scores, self.history_[users])
        return scores

    def forget(self, users: np.ndarray) -> Self:
        """Her history goes and her factor row becomes zeros (a cold client's), so she falls back to popularity."""
        super().forget(users)
        self.user_factors_[self._users_to_forget(users)] = 0.0
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Her history is rebuilt from `data` as `fit` builds it, then her factor is solved again from it with the
        item factors fixed (each model's `_fold_in`): her next scores follow what she did a moment ago."""
        super().observe(data, users)
        users = self._users_to_forget(users)
        with threadpool_limits(1, "blas"):  # small solves: a BLAS pool costs more than it saves, on a busy server
            self.user_factors_[users] = self._fold_in(self.history_[users])
        return self

    def _item_norms(self) -> np.ndarray:
        """Norms of the item factors, computed once per factor matrix (a per-call norm of 100k x 64 costs 5 ms)."""
        cached = getattr(self, "_norms", None)
        if cached is None or cached[0] is not self.item_factors_:
            cached = self._norms = (self.item_factors_, np.linalg.norm(self.item_factors_, axis=1) + 1e-12)
        return cached[1]

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """The history item whose latent factors are closest to each recommendation, weighted by her signal."""
        self._check_fitted("item_factors_")
        h = self.history_[user]
        if h.nnz == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        y = self.item_factors_
        norms = self._item_norms()
        items = np.asarray(items)
        sims = (y[h.indices] @ y[items].T) / np.outer(norms[h.indices], norms[items])  # (history, items)
        contrib = h.data[:, None] * sims
        scores = self.user_factors_[user] @ y[items].T
        reasons = []
        pronoun = self.notes_.pronouns[user]
        taste = {"she": "hers", "he": "his"}.get(pronoun, "this client's")
        for k in range(len(items)):
            best = int(np.argmax(contrib[:, k]))
            anchor = int(h.indices[best])
            if anchor == int(items[k]):  # the piece itself is in her history (viewed, wishlisted, in the cart)
                verb = BEHAVIOR_VERBS.get(self.notes_.behavior(user, anchor), "looked at")
                text = f"{pronoun} {verb} it, and clients with tastes like {taste} chose it"
            else:
                text = (f"clients with tastes like {taste} chose it; closest to "
                        f"{self.notes_.phrase(user, anchor)}")
            reasons.append(Reason("collaborative", text, {"score": float(scores[k]),
                                                          "anchor_similarity": float(sims[best, k])}))
        return reasons


class ALS(_Factorization):
    """Implicit-feedback ALS with confidence 1 + alpha * behavior weight."""

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.1, alpha: float = 1.0, iterations: int = 15,
                 seed: int = 0, threads: int = 1, show_progress: bool = False) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.threads = threads
        self.show_progress = show_progress

    def fit(self, data: Dataset) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        x = data.matrix()
        confidence = x.copy()
        confidence.data = (1.0 + self.alpha * confidence.data).astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; a BLAS pool would fight them
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=1.0,
                                            iterations=self.iterations, num_threads=self.threads,
                                            random_state=self.seed)
            model.fit(confidence, show_progress=self.show_progress)
        self._finish_fit(data, x, model.user_factors, model.item_factors)
        return self

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """ALS's user step (`als_user_factors`), solved exactly where implicit's fit takes 3 CG steps from the last
        factor."""
        return als_user_factors(history, self.item_factors_, self.alpha, self.regularization)


class BPR(_Factorization):
    """Bayesian personalised ranking; interactions with behavior weight >= `min_weight` are the positives."""

    name = "bpr"

    def __init__(self, factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 100, min_weight: float = 0.0, seed: int = 0, threads: int = 1,
                 show_progress: bool = False) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.min_weight = min_weight
        self.seed = seed
        self.threads = threads
        self.show_progress = show_progress

    def fit(self, data: Dataset) -> Self:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        x = data.matrix()
        positives = x.copy()
        positives.data = (positives.data >= self.min_weight).astype(np.float32)
        positives.eliminate_zeros()
        if positives.nnz == 0:
            raise ValueError(f"bpr: no interaction has behavior weight >= min_weight={self.min_weight}")
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                                regularization=self.regularization, iterations=self.iterations,
                                                num_threads=self.threads, random_state=self.seed)
            model.fit(positives, show_progress=self.show_progress)
        # implicit's BPR appends an item-bias column to the item factors and a matching 1 to the user factors
        self._finish_fit(data, positives, model.user_factors, model.item_factors)
        return self

    def _history(self, data: Dataset) -> sp.csr_matrix:
        """Her positives, as `fit` builds them: interactions with behavior weight >= min_weight, as 1."""
        positives = data.matrix()
        positives.data = (positives.data >= self.min_weight).astype(np.float32)
        positives.eliminate_zeros()
        return positives

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """The maximiser of BPR's objective for her alone, item factors fixed (`bpr_user_factor`), rather than a
        few sampled SGD steps: deterministic, and the point implicit's steps on her factor drift to."""
        counts = np.bincount(self.history_.indices, minlength=self.item_factors_.shape[0])
        return np.stack([bpr_user_factor(history.indices[history.indptr[r]:history.indptr[r + 1]],
                                         self.item_factors_, counts, self.regularization)
                         for r in range(history.shape[0])]).reshape(history.shape[0], -1)


# ------------------------------------------------------------------------------------------------ solvers
def als_user_factors(history: sp.csr_matrix, item_factors: np.ndarray, alpha: float,
                     regularization: float) -> np.ndarray:
    """Implicit ALS's user step (Hu, Koren and Volinsky 2008, eq. 4) for each row of behavior weights w:

        x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p_u,   c_ui = 1 + alpha w_ui and p_ui = 1 on her items, c = 1, p = 0 off

    with Y^T C_u Y = Y^T Y + Y_u^T (C_u - I) Y_u, so a row costs O(her items x factors^2). No history: x_u = 0.
    """
    y = np.asarray(item_factors, dtype=np.float64)
    gram = y.T @ y + regularization * np.eye(y.shape[1])
    out = np.zeros((history.shape[0], y.shape[1]), dtype=np.float32)
    for r in range(history.shape[0]):
        span = slice(history.indptr[r], history.indptr[r + 1])
        if span.start == span.stop:
            continue
        yu, c = y[history.indices[span]], 1.0 + alpha * history.data[span].astype(np.float64)
        out[r] = np.linalg.solve(gram + (yu.T * (c - 1.0)) @ yu, yu.T @ c)
    return out


def bpr_user_factor(positives: np.ndarray, item_factors: np.ndarray, counts: np.ndarray, regularization: float,
                    max_steps: int = 50) -> np.ndarray:
    """One client's BPR factor (bias column = 1, as implicit keeps it) with the item factors fixed:

        max_x  F(x) = mean_{i in P} sum_{j not in P} q_j ln sigmoid(s_i - s_j) - reg/2 |x|^2,   s = Y x + b

    P her positives, q_j proportional to j's count of positives: implicit draws each step's negative from all
    positive entries and skips her own, and its SGD step on x follows the gradient of F at that sample (Rendle et
    al. 2009). F is strictly concave, so Newton's method with backtracking from x = 0 finds its unique maximum.
    Each step costs O(|P| x items x factors). No positives (or nothing to rank them above): x = 0.
    """
    y = np.asarray(item_factors, dtype=np.float64)
    d = y.shape[1] - 1
    x = np.zeros(d)
    negative = np.asarray(counts) > 0
    negative[positives] = False
    if len(positives) and negative.any():
        negatives = np.flatnonzero(negative)
        yp, bp, yn, bn = y[positives, :d], y[positives, d], y[negatives, :d], y[negatives, d]
        q = counts[negatives] / counts[negatives].sum() / len(positives)   # pair weights, summing to 1

        def margins(x: np.ndarray) -> np.ndarray:
            return (yp @ x + bp)[:, None] - (yn @ x + bn)[None, :]

        def objective(x: np.ndarray) -> float:
            return float((q * log_expit(margins(x))).sum() - 0.5 * regularization * x @ x)

        value = objective(x)
        for _ in range(max_steps):
            m = margins(x)
            a = q * expit(-m)                                  # dF/dm per pair
            grad = yp.T @ a.sum(1) - yn.T @ a.sum(0) - regularization * x
            h = a * expit(m)                                   # -d2F/dm2 per pair
            cross = (yp.T @ h) @ yn
            curvature = (yp.T * h.sum(1)) @ yp + (yn.T * h.sum(0)) @ yn - cross - cross.T
            step = np.linalg.solve(curvature + regularization * np.eye(d), grad)
            decrement = float(grad @ step)
            if decrement < 1e-12:
                break
            t = 1.0
            while t > 1e-6 and objective(x + t * step) < value + 0.25 * t * decrement:
                t *= 0.5
            x = x + t * step
            value = objective(x)
    return np.append(x, 1.0).astype(np.float32)
