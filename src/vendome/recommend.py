"""The one recommendation path: score, apply guardrails and exclusions, take the top k.

The evaluator, the batch job and the API all call `recommend`, so offline metrics measure exactly what is served.
Guardrails here are the ones every path needs (eligibility: stock; exclusion of what the client already bought);
the declarative rule file of the serving layer compiles down to the same eligibility mask and exclusions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Recommender

OUT_OF_STOCK = frozenset({"out_of_stock", "outofstock", "discontinued", "sold_out", "unavailable"})


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
    if rules.in_stock_only and "stock_status" in data.products:
        status = data.products["stock_status"].astype(str).str.lower().str.replace(" ", "_")
        mask &= ~status.isin(OUT_OF_STOCK).to_numpy()
    if rules.launched_only and now is not None:
        mask &= ~(launch_times(data) > now)
    return mask


def launch_times(data: Dataset) -> np.ndarray:
    """Unix seconds of each product's created_date (float, NaN where unknown)."""
    created = data.products.get("created_date")
    if created is None:
        return np.full(data.n_items, np.nan)
    ts = pd.to_datetime(created, utc=True, errors="coerce", format="mixed")
    out = ts.astype("datetime64[s, UTC]").astype("int64").to_numpy().astype(np.float64)
    out[ts.isna().to_numpy()] = np.nan
    return out


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
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items and scores per user, best first: arrays of shape (len(users), k).

    Slots that cannot be filled (fewer than k eligible items) hold item -1 and score -inf.
    """
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
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
        items, top = top_k(scores, k)
        out_items[start:start + len(batch), :items.shape[1]] = items
        out_scores[start:start + len(batch), :items.shape[1]] = top
    out_items[~np.isfinite(out_scores)] = -1
    return out_items, out_scores


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
