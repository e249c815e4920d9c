"""The hybrid's stacked blender: component weights that depend on context, learned on several past months.

A fixed weighted blend cannot say "trust ALS on established pieces, trust content and recency on a piece launched
three weeks ago" (on the demo, ALS reaches 1% of the targets on pieces younger than 60 days, content 9%).
Feature-weighted linear stacking (Sill et al. 2009, the blend of the Netflix Prize) makes each component's weight
a linear function of the item's context and adds the context itself as evidence:

    score(u, i) = b + sum_m z_m(u, i) * (w_m + sum_f v_mf * item_f(i)) + sum_g c_g * context_g(u, i)

- z_m: the per-user z-scored component scores (as in the linear blend);
- item_f: item context: popularity, purchases, popularity of the last 14 days, age in months, new arrival
  (launched less than 60 days ago);
- context_g: the item context, the user's context (history length, orders) and the pair's: her past engagement
  with the piece, her purchases in its collection and its subcategory, her share of engagement with each of its
  attribute values (material, stone, colour, price tier, ...).

The coefficients are a logistic regression (scikit-learn) on candidate pools of several validation windows: each
window's components are fitted on what came before it and its positives are the purchases inside it, so the blend
learns how the components behave on the month after their training data, which is how they are served. The L2
strength is chosen by leave-one-window-out NDCG. Linear on purpose: a gradient-boosted ranker (LightGBM
lambdarank) overfits the few thousand positives a boutique has (measured on the demo: below ALS alone), and a
linear score splits exactly into per-component and per-context contributions, so every reason stays honest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.evaluate.metrics import per_user_metrics
from vendome.models.base import drop_rows, events_of, replace_rows
from vendome.recommend import launch_times, top_k

DAY = 86_400
RECENT_DAYS = 14
NEW_DAYS = 60
ITEM_FEATURES = ("popularity", "purchases", "recent_popularity", "age_months", "new_arrival")
USER_FEATURES = ("history", "orders")
SHARE_COLUMNS = ("category", "subcategory", "brand", "collection", "material", "stone_type", "color", "gender",
                 "price_tier")
C_GRID = (0.003, 0.03)  # the demo's leave-one-window-out NDCG moved < 1% over 0.001-0.03
# What each context feature says when it lifts a piece, for reasons: (code, sentence with {value}).
CONTEXT_REASONS = {
    "new_arrival": ("new_arrival", "a new arrival"),
    "recent_popularity": ("trending", "much looked at in the last two weeks"),
    "popularity": ("popular", "one of the boutique's most looked-at pieces"),
    "purchases": ("best_seller", "one of the boutique's best sellers"),
    "engagement": ("returning_interest", "a piece you have already looked at"),
    "collection_purchases": ("collection_loyalty", "from a collection you have bought from"),
    "subcategory_purchases": ("category_loyalty", "in a category you buy"),
}


@dataclass
class ContextFeatures:
    """Item, user and user-item context at time `now`, computed from one training set.

    item: (n_items, len(ITEM_FEATURES)); user: (n_users, len(USER_FEATURES)); engagement: signed log of the summed
    behavior weights per (user, item); groups: (name, item codes, users x values matrix) where the pair feature is
    matrix[u, codes[i]] (purchase counts per collection and subcategory, engagement shares per attribute value).
    """

    item: np.ndarray
    user: np.ndarray
    engagement: sp.csr_matrix
    groups: list[tuple[str, np.ndarray, sp.csr_matrix]]

    @classmethod
    def fit(cls, data: Dataset, now: float | None = None) -> ContextFeatures:
        inter = data.interactions
        n_users, n_items = data.n_users, data.n_items
        users, items = inter["user"].to_numpy(), inter["item"].to_numpy()
        ts = inter["timestamp"].to_numpy()
        now = float(ts.max()) if now is None and len(ts) else float(now or 0.0)
        bought = inter["behavior"].isin(data.target_behaviors).to_numpy()
        recent = ts >= now - RECENT_DAYS * DAY
        age = (now - launch_times(data)) / DAY
        age = np.where(np.isnan(age), 365.0, np.clip(age, 0.0, 365.0))
        item = np.stack([np.log1p(np.bincount(items, minlength=n_items)),
                         np.log1p(np.bincount(items[bought], minlength=n_items)),
                         np.log1p(np.bincount(items[recent], minlength=n_items)),
                         age / 30.0, (age < NEW_DAYS).astype(np.float64)], axis=1).astype(np.float32)
        user = np.stack([np.log1p(np.bincount(users, minlength=n_users)),
                         np.log1p(np.bincount(users[bought], minlength=n_users))], axis=1).astype(np.float32)
        weight = sp.csr_matrix((inter["weight"].to_numpy(np.float64), (users, items)), shape=(n_users, n_items))
        weight.sum_duplicates()
        engagement = weight.copy()
        engagement.data = (np.sign(weight.data) * np.log1p(np.abs(weight.data))).astype(np.float64)
        purchased = data.target_matrix().astype(np.float64)
        positive = weight.copy()
        positive.data = np.maximum(positive.data, 0.0)
        positive.eliminate_zeros()
        totals = np.asarray(positive.sum(axis=1)).ravel()
        share = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)) @ positive
        groups = []
        for col, name, source in (("collection", "collection_purchases", purchased),
                                  ("subcategory", "subcategory_purchases", purchased)):
            codes = _codes(data.products, col)
            if codes is not None:
                counts = (source @ _onehot(codes)).tocsr()
                counts.data = np.log1p(counts.data)
                groups.append((name, codes, counts.astype(np.float32)))
        for col in SHARE_COLUMNS:
            codes = _codes(data.products, col)
            if codes is not None:
                groups.append((f"taste_{col}", codes, (share @ _onehot(codes)).tocsr().astype(np.float32)))
        return cls(item, user, engagement.astype(np.float32).tocsr(), groups)

    def forget(self, users: np.ndarray) -> None:
        """These users' context becomes a client's with no history: zero counts, no engagement, no tastes."""
        users = np.asarray(users, dtype=np.int64)
        self.user[users] = 0.0
        self.engagement = drop_rows(self.engagement, users)
        self.groups = [(name, codes, drop_rows(matrix, users)) for name, codes, matrix in self.groups]

    def observe(self, data: Dataset, users: np.ndarray) -> None:
        """These users' context rebuilt from their events in `data`, as `fit` builds it (every user feature is a
        function of her own events); the item context stays as fitted, at the fit's `now`."""
        users = np.asarray(users, dtype=np.int64)
        fresh = ContextFeatures.fit(events_of(data, users))
        rows = {name: matrix for name, _, matrix in fresh.groups}
        self.user[users] = fresh.user[users]
        self.engagement = replace_rows(self.engagement, users, fresh.engagement)
        self.groups = [(name, codes, replace_rows(matrix, users, rows[name])) for name, codes, matrix in self.groups]

    @property
    def names(self) -> list[str]:
        return [*ITEM_FEATURES, *USER_FEATURES, "engagement", *(name for name, _, _ in self.groups)]

    def blocks(self, users: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        """(name, (len(users), n_items) float32) for each context feature, one at a time to bound memory."""
        users = np.asarray(users, dtype=np.int64)
        shape = (len(users), self.item.shape[0])
        for f, name in enumerate(ITEM_FEATURES):
            yield name, np.broadcast_to(self.item[:, f][None, :], shape)
        for f, name in enumerate(USER_FEATURES):
            yield name, np.broadcast_to(self.user[users, f][:, None], shape)
        yield "engagement", self.engagement[users].toarray()
        for name, codes, matrix in self.groups:
            yield name, matrix[users].toarray()[:, codes]


def _codes(products: pd.DataFrame, col: str) -> np.ndarray | None:
    """Integer code of each product's value in `col` (lower-cased whole cell), None without two distinct values."""
    if col not in products:
        return None
    codes, uniques = pd.factorize(products[col].fillna("").astype(str).str.strip().str.lower())
    return codes if len(uniques) >= 2 else None


def _onehot(codes: np.ndarray) -> sp.csr_matrix:
    n = len(codes)
    return sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, int(codes.max()) + 1))


@dataclass
class Pool:
    """One validation window's candidates: z (rows, M) component scores, context (rows, G), hits (rows,), and
    `group` (rows,) the row's user within the window, so NDCG can be computed per user."""

    z: np.ndarray
    context: np.ndarray
    hits: np.ndarray
    group: np.ndarray
    n_targets: np.ndarray   # per user of the window

    @classmethod
    def build(cls, z_scores, context: ContextFeatures, users: np.ndarray, test: sp.csr_matrix, *,
              blocked, size: int, batch_size: int = 256) -> Pool:
        """z_scores(batch) -> list of (B, n_items) normalised component scores; blocked(batch) -> (B, n_items)
        mask of what serving would never show (purchased, out of stock, not launched)."""
        zs, cs, hs, gs = [], [], [], []
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            z = z_scores(batch)
            block = blocked(batch)
            cand = np.concatenate([top_k(np.where(block, -np.inf, s), size)[0] for s in z], axis=1)
            cand.sort(axis=1)
            keep = np.ones(cand.shape, dtype=bool)
            keep[:, 1:] = cand[:, 1:] != cand[:, :-1]
            keep &= ~np.take_along_axis(block, cand, axis=1)
            zs.append(np.stack([np.take_along_axis(s, cand, axis=1)[keep] for s in z], axis=1))
            cs.append(np.stack([np.take_along_axis(np.asarray(b), cand, axis=1)[keep]
                                for _, b in context.blocks(batch)], axis=1))
            hit = np.asarray(test[batch][np.arange(len(batch))[:, None], cand].todense()) > 0
            hs.append(hit[keep])
            gs.append(np.broadcast_to(np.arange(start, start + len(batch))[:, None], cand.shape)[keep])
        return cls(np.concatenate(zs).astype(np.float32), np.concatenate(cs).astype(np.float32),
                   np.concatenate(hs), np.concatenate(gs), np.diff(test[users].indptr))

    def ndcg(self, scores: np.ndarray, k: int) -> np.ndarray:
        """Per-user NDCG@k of ranking each user's candidates by `scores` (rows aligned with the pool)."""
        n_users = len(self.n_targets)
        width = int(np.bincount(self.group, minlength=n_users).max())
        grid = np.full((n_users, width), -np.inf, dtype=np.float64)
        hits = np.zeros((n_users, width), dtype=bool)
        starts = np.searchsorted(self.group, np.arange(n_users))
        col = np.arange(len(self.group)) - starts[self.group]
        grid[self.group, col] = scores
        hits[self.group, col] = self.hits
        pos, vals = top_k(grid, min(k, width))
        h = np.take_along_axis(hits, pos, axis=1) & np.isfinite(vals)
        if h.shape[1] < k:
            h = np.pad(h, ((0, 0), (0, k - h.shape[1])))
        return np.asarray(per_user_metrics(h, self.n_targets, ks=(k,))[f"ndcg@{k}"])


class StackedBlender:
    """The feature-weighted linear stack of the module docstring, fitted by L2 logistic regression.

    After `fit`: w_ (M,), v_ (M, len(ITEM_FEATURES)), c_ (G,), b_ in raw feature units (the standardisation is
    folded in), context_mean_ (G,) for contributions relative to the average candidate, C_ and cv_ndcg_ (per C).
    """

    def __init__(self, k: int = 10, negatives: int = 50, seed: int = 0, c_grid: tuple[float, ...] = C_GRID) -> None:
        self.k, self.negatives, self.seed, self.c_grid = k, negatives, seed, c_grid

    @staticmethod
    def design(z: np.ndarray, context: np.ndarray) -> np.ndarray:
        item = context[:, :len(ITEM_FEATURES)]
        cross = (z[:, :, None] * item[:, None, :]).reshape(len(z), -1)
        return np.concatenate([z, cross, context], axis=1)

    def _sample(self, pool: Pool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """All positives and up to `negatives` random negatives per user: the negatives only shift the intercept
        of a logistic model, and 50 per user keep the fits fast enough to cross-validate."""
        keys = rng.random(len(pool.hits)) + pool.hits  # positives sort last within their user
        order = np.lexsort((keys, pool.group))
        ends = np.cumsum(np.bincount(pool.group, minlength=len(pool.n_targets)))
        rank_from_end = np.empty(len(order), dtype=np.int64)
        rank_from_end[order] = ends[pool.group[order]] - 1 - np.arange(len(order))
        keep = pool.hits | (rank_from_end < pool.n_targets[pool.group] + self.negatives)
        return self.design(pool.z[keep], pool.context[keep]), pool.hits[keep]

    def _fit_lr(self, x: np.ndarray, y: np.ndarray, c: float):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        lr = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        coef = lr.coef_[0] / scale
        return coef, float(lr.intercept_[0] - np.sum(coef * scaler.mean_))

    def fit(self, pools: list[Pool]) -> StackedBlender:
        pools = [p for p in pools if p.hits.any()]
        if not pools:
            raise ValueError("stacked blender: no validation window has a purchase among its candidates")
        rng = np.random.default_rng(self.seed)
        folds = pools if len(pools) >= 2 else _split_users(pools[0], rng)
        samples = [self._sample(p, rng) for p in folds]
        self.cv_ndcg_ = {}
        for c in self.c_grid:  # leave one window (or half of the users) out
            values = []
            for f, held in enumerate(folds):
                y = np.concatenate([s[1] for g, s in enumerate(samples) if g != f])
                if not y.any():
                    continue
                x = np.concatenate([s[0] for g, s in enumerate(samples) if g != f])
                coef, intercept = self._fit_lr(x, y, c)
                values.append(held.ndcg(self.design(held.z, held.context) @ coef + intercept, self.k))
            self.cv_ndcg_[c] = float(np.concatenate(values).mean()) if values else 0.0
        self.C_ = max(self.c_grid, key=lambda c: self.cv_ndcg_[c])
        coef, self.b_ = self._fit_lr(np.concatenate([s[0] for s in samples]),
                                     np.concatenate([s[1] for s in samples]), self.C_)
        m, f = pools[0].z.shape[1], len(ITEM_FEATURES)
        self.w_, self.v_, self.c_ = coef[:m], coef[m:m + m * f].reshape(m, f), coef[m + m * f:]
        self.context_mean_ = np.concatenate([p.context for p in pools]).mean(axis=0)
        return self

    def effective_weights(self, item_context: np.ndarray) -> np.ndarray:
        """(M, n_items): each component's weight on each item, w_m + v_m . item_context(i)."""
        return self.w_[:, None] + self.v_ @ item_context.T

    def score(self, z: list[np.ndarray], context: ContextFeatures, users: np.ndarray) -> np.ndarray:
        eff = self.effective_weights(context.item)
        out = np.full(z[0].shape, self.b_, dtype=np.float32)
        for m, s in enumerate(z):
            out += s * eff[m][None, :].astype(np.float32)
        for g, (_, block) in enumerate(context.blocks(users)):
            if self.c_[g] != 0.0:
                out += np.float32(self.c_[g]) * block
        return out


def _split_users(pool: Pool, rng: np.random.Generator) -> list[Pool]:
    """Two halves of one window's users, for choosing C when there is a single window (leave-one-out data)."""
    half = rng.random(len(pool.n_targets)) < 0.5
    out = []
    for side in (half, ~half):
        users = np.flatnonzero(side)
        remap = np.full(len(side), -1)
        remap[users] = np.arange(len(users))
        rows = side[pool.group]
        out.append(Pool(pool.z[rows], pool.context[rows], pool.hits[rows], remap[pool.group[rows]],
                        pool.n_targets[users]))
    return out
