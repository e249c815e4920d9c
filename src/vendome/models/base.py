"""The estimator surface every model shares (DESIGN §4), so the evaluator, the API and the hybrid treat them alike.

    model = ALS(factors=64).fit(train)     # train: a vendome Dataset
    scores = model.score(users)            # (len(users), n_items) float32, higher is better
    model.explain(user, items)             # per-item reasons
    model.save(path); Recommender.load(path)
    model.forget(users)                    # erase what it holds about these users (right to be forgotten)
    model.observe(live, users)             # refresh their per-user state from their latest events, no refit

Hyper-parameters live in `__init__` (keyword arguments, stored unchanged); learned state ends in `_` and is set by
`fit` only (scrubbed by `forget`, refreshed per user by `observe`). `score` takes dense user indices of the Dataset
the model was fitted on.
"""

from __future__ import annotations

import inspect
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from vendome.data.dataset import Dataset


@dataclass
class Reason:
    """Why an item is recommended: a short machine code, a sentence for people, and the signal weights."""

    code: str
    text: str
    signals: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "signals": self.signals or {}}


class Recommender(ABC):
    """Base class: parameter handling, persistence and a default explanation."""

    name: ClassVar[str] = "base"
    reason_code: ClassVar[str] = "model"
    reason_text: ClassVar[str] = "recommended by the {name} model"

    @abstractmethod
    def fit(self, data: Dataset) -> Self:
        """Learn from `data`; returns self."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores, higher is better."""

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """One reason per item; models override with their own signals."""
        return [Reason(self.reason_code, self.reason_text.format(name=self.name)) for _ in items]

    def explain_many(self, users: np.ndarray, items: list[np.ndarray]) -> list[list[Reason]]:
        """`explain` for a batch (`items[r]`: the list of `users[r]`); models whose reasons need a full scoring
        pass override it to score the batch once (the serving warmer explains thousands of lists)."""
        return [self.explain(int(u), np.asarray(i)) for u, i in zip(users, items, strict=True)]

    # -------------------------------------------------------------- erasure
    def forget(self, users: np.ndarray) -> Self:
        """Erase what the model holds about these users, in place; returns self.

        Afterwards `score(users)` is what a client with no history gets and `explain` names none of their items.
        This default is for models that keep nothing per user (global popularity); models with per-user state
        (histories, user factors, segments, journeys) override it. Parameters learned from everyone (item factors,
        similarities, popularity) keep the users' share of the aggregate until the next fit on data without them.
        """
        self._users_to_forget(users)
        return self

    def _users_to_forget(self, users: np.ndarray, action: str = "forget") -> np.ndarray:
        """Distinct dense user indices, checked against the fitted data when the model records its size."""
        users = np.unique(np.asarray(users, dtype=np.int64).reshape(-1))
        n_users = getattr(self, "n_users_", None)
        if n_users is not None and len(users) and (users[0] < 0 or users[-1] >= n_users):
            bad = users[(users < 0) | (users >= n_users)][:5].tolist()
            raise IndexError(f"{self.name}: cannot {action} user indices {bad}: outside the fitted dataset "
                             f"(0..{n_users - 1})")
        return users

    # -------------------------------------------------------------- fresh events
    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Refresh these users' per-user state from `data`, in place; returns self (`forget`'s twin).

        `data` is the catalog and clientele the model was fitted on (same dense indices) with their latest events.
        Afterwards their histories, journeys and factors are rebuilt from `data` exactly as `fit` builds them, so
        the next `score(users)` reflects a view, a cart or a purchase logged a moment ago, while every parameter
        learned from everyone (item factors, networks, similarities, popularity, blend weights) stays as fitted:
        no refit on the serving path. This default is for models that keep nothing per user (global popularity).
        """
        self._users_to_observe(data, users)
        return self

    def _users_to_observe(self, data: Dataset, users: np.ndarray) -> np.ndarray:
        """Distinct dense user indices, after checking that `data` has the fitted catalog and clientele: per-user
        state is indexed by position, so another Dataset's rows would land on the wrong clients."""
        n_users, n_items = getattr(self, "n_users_", None), self._fitted_n_items()
        if n_users is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit(data) first")
        if data.n_users != n_users or (n_items is not None and data.n_items != n_items):
            raise ValueError(f"{self.name}: cannot observe dataset {data.name!r} ({data.n_users} customers x "
                             f"{data.n_items} products): the model was fitted on {n_users} customers x "
                             f"{n_items} products; refit it on the new catalog or clientele")
        return self._users_to_forget(users, action="observe")

    def _fitted_n_items(self) -> int | None:
        """Products the model was fitted on, read from the per-item state it keeps (None if it keeps none)."""
        if hasattr(self, "n_items_"):
            return int(self.n_items_)
        for attr in ("popularity_", "scores_", "shares_"):
            if hasattr(self, attr):
                return int(np.shape(getattr(self, attr))[-1])
        return None

    # -------------------------------------------------------------- sklearn-like parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{self.name}: unknown parameter {k!r}; valid: {', '.join(sorted(valid))}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)  # never leave a half-written artifact behind
        return path

    @staticmethod
    def load(path: str | Path) -> Recommender:
        with open(path, "rb") as f:
            model = pickle.load(f)
        if not isinstance(model, Recommender):
            raise TypeError(f"{path} does not hold a vendome model")
        return model

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise RuntimeError(f"{self.name} is not fitted: call fit(data) first")


def drop_rows(matrix: sp.spmatrix, rows: np.ndarray) -> sp.csr_matrix:
    """The matrix (as csr, same shape and dtype) with every stored entry of `rows` removed: those users' rows become
    empty, exactly as for a user who never had any; other rows are untouched."""
    m = matrix.tocsr()
    gone = np.zeros(m.shape[0], dtype=bool)
    gone[np.asarray(rows, dtype=np.int64)] = True
    counts = np.where(gone, 0, np.diff(m.indptr))
    keep = ~np.repeat(gone, np.diff(m.indptr))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(m.indptr.dtype)
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape, dtype=m.dtype)


def replace_rows(matrix: sp.spmatrix, rows: np.ndarray, source: sp.spmatrix) -> sp.csr_matrix:
    """The matrix (as csr, same shape and dtype) with `rows` taken from `source` (same shape; its other rows are
    ignored), every other row untouched: `drop_rows`' counterpart for refreshing a few users."""
    rows = np.asarray(rows, dtype=np.int64)
    others = np.ones(matrix.shape[0], dtype=bool)
    others[rows] = False
    fresh = drop_rows(sp.csr_matrix(source, dtype=matrix.dtype), np.flatnonzero(others))
    return (drop_rows(matrix, rows) + fresh).tocsr()


def events_of(data: Dataset, users: np.ndarray) -> Dataset:
    """`data` with only these users' interactions, so refreshing a few clients builds their rows alone."""
    inter = data.interactions
    return data.with_interactions(inter[np.isin(inter["user"].to_numpy(), users)])
