"""The estimator surface every model shares (DESIGN §4), so the evaluator, the API and the hybrid treat them alike.

    model = ALS(factors=64).fit(train)     # train: a vendome Dataset
    scores = model.score(users)            # (len(users), n_items) float32, higher is better
    model.explain(user, items)             # per-item reasons
    model.save(path); Recommender.load(path)

Hyper-parameters live in `__init__` (keyword arguments, stored unchanged); learned state ends in `_` and is set by
`fit` only. `score` takes dense user indices of the Dataset the model was fitted on.
"""

from __future__ import annotations

import inspect
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

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
