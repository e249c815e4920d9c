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

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """The history item whose latent factors are closest to each recommendation, weighted by her signal."""
        self._check_fitted("item_factors_")
        h = self.history_[user]
        if h.nnz == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        y = self.item_factors_
        norms = np.linalg.norm(y, axis=1) + 1e-12
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
