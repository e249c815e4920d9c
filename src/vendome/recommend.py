"""The one recommendation path: score, apply guardrails and exclusions, take the top k.

The evaluator, the batch job and the API all call `recommend`, so offline metrics measure exactly what is served.
`Rules` are the guardrails every path needs (stock, launch date, what the client already bought), as a mask and
an exclusion matrix. A merchandiser's guardrail file (`vendome.rules`, compiled into a `Guard`) adds per-request
masks (placement, seasons, price band, anchors' lines) and list rules (lines kept apart, promotion slots,
diversity); `recommend(..., guard=guard, request=Request(...))` applies them on the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Recommender
from vendome.rules.guard import OUT_OF_STOCK, Guard, Request, in_stock
from vendome.rules.guard import launch_times as _launch_times

__all__ = ["OUT_OF_STOCK", "Guard", "Request", "Rules", "eligible_items", "exclusions", "launch_times", "recommend",
           "recommend_lists", "top_k"]


@dataclass
class Rules:
    """Guardrails applied on every path.

    in_stock_only:      never recommend an out-of-stock or discontinued product.
    exclude_purchased:  do not recommend what the client already bought (target behaviors of the history).
    launched_only:      never recommend a product before its created_date (brands upload pieces ahead of an
                        embargoed launch). The evaluator applies it at the split's cutoff, so a list "served" at
                        the cutoff cannot hold a piece that did not exist yet.
    """

    in_stock_only: bool = True
    exclude_purchased: bool = True
    launched_only: bool = True


def eligible_items(data: Dataset, rules: Rules, now: float | None = None) -> np.ndarray:
    """Boolean mask over items that may be recommended at all, at unix time `now` (None: no launch check)."""
    mask = np.ones(data.n_items, dtype=bool)
    if rules.in_stock_only:
        mask &= in_stock(data.products)
    if rules.launched_only and now is not None:
        mask &= ~(launch_times(data) > now)
    return mask


def launch_times(data: Dataset) -> np.ndarray:
    """Unix seconds of each product's created_date (float, NaN where unknown)."""
    return _launch_times(data.products)


def exclusions(history: Dataset, rules: Rules) -> sp.csr_matrix | None:
    """User x item matrix of what must not be recommended to each user (None when nothing is excluded)."""
    return history.target_matrix() if rules.exclude_purchased else None


def recommend(
    model: Recommender,
    users: np.ndarray,
    k: int = 10,
    *,
    eligible: np.ndarray | None = None,
    exclude: sp.csr_matrix | None = None,
    batch_size: int = 2048,
    progress: bool = False,
    guard: Guard | None = None,
    request: Request | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items and scores per user, best first: arrays of shape (len(users), k).

    Slots that cannot be filled (fewer than k eligible items) hold item -1 and score -inf. With a `guard`, the
    request's rules apply on top of `eligible` and `exclude` (`request.user` is ignored: each row is its user).
    """
    items, scores, _ = recommend_lists(model, users, k, eligible=eligible, exclude=exclude, batch_size=batch_size,
                                       progress=progress, guard=guard, request=request)
    return items, scores


def recommend_lists(
    model: Recommender,
    users: np.ndarray,
    k: int = 10,
    *,
    eligible: np.ndarray | None = None,
    exclude: sp.csr_matrix | None = None,
    batch_size: int = 2048,
    progress: bool = False,
    guard: Guard | None = None,
    request: Request | None = None,
) -> tuple[np.ndarray, np.ndarray, list[list[str | None]]]:
    """`recommend`, plus per slot the promotion that filled it (None for an organic slot)."""
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    request = request or Request()
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    labels: list[list[str | None]] = [[None] * k for _ in range(n)]
    starts = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=f"recommend {model.name}", unit="batch", leave=False)
    for start in starts:
        batch = users[start:start + batch_size]
        scores = np.asarray(model.score(batch), dtype=np.float32)
        if not scores.flags.writeable or scores.base is not None:
            scores = scores.copy()
        if eligible is not None:
            scores[:, ~eligible] = -np.inf
        if exclude is not None:
            rows = exclude[batch]
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
        if guard is None:
            items, top = top_k(scores, k)
            out_items[start:start + len(batch), :items.shape[1]] = items
            out_scores[start:start + len(batch), :items.shape[1]] = top
            continue
        allowed = guard.allowed(batch, request) & np.isfinite(scores)
        if not guard.has_list_rules(request):
            scores[~allowed] = -np.inf
            items, top = top_k(scores, k)
            out_items[start:start + len(batch), :items.shape[1]] = items
            out_scores[start:start + len(batch), :items.shape[1]] = top
            continue
        for row, u in enumerate(batch):
            items, top, why = guard.select(scores[row], allowed[row], request_for(request, int(u)), k)
            out_items[start + row, :len(items)] = items
            out_scores[start + row, :len(items)] = top
            labels[start + row][:len(why)] = why
    out_items[~np.isfinite(out_scores)] = -1
    return out_items, out_scores, labels


def request_for(request: Request, user: int) -> Request:
    return request if request.user == user else Request(request.placement, user, request.anchors, request.now)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top k (argpartition, then a sort of the k), best first.

    Partitioning at n - k (rather than negating the scores) avoids a copy of the whole score block.
    """
    n = scores.shape[1]
    k = min(k, n)
    part = np.argpartition(scores, n - k, axis=1)[:, n - k:]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
