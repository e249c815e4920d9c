"""Popularity baselines (global, recent window, demographic segment), and the pieces every classic model shares.

Popularity is also the answer for a client with no history, so the helpers that the other models use for that
fallback, for user-index checks and for the sentences of their explanations live here too:
`popularity_vector`, `check_users`, `HistoryNotes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender, drop_rows, events_of, replace_rows

DAY = 86_400

# Strongest first: what a client did with an item, for sentences like "the Serpent pendant she wishlisted".
BEHAVIOR_ORDER = ("purchase", "add_to_wishlist", "add_to_cart", "view", "click", "remove_from_cart")
BEHAVIOR_VERBS = {
    "purchase": "bought",
    "add_to_wishlist": "wishlisted",
    "add_to_cart": "added to the cart",
    "view": "viewed",
    "click": "clicked on",
    "remove_from_cart": "removed from the cart",
}
AGE_GROUPS = ((0, 18, "under 18"), (18, 25, "18-24"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"),
              (55, 65, "55-64"), (65, 200, "65+"))


# ---------------------------------------------------------------------------------------------- shared helpers
def check_users(users: np.ndarray, n_users: int, model: str) -> np.ndarray:
    """Users as an int64 array of dense indices, with a clear error for ones the model was not fitted on."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    if len(users) and (users.min() < 0 or users.max() >= n_users):
        bad = users[(users < 0) | (users >= n_users)][:5].tolist()
        raise IndexError(f"{model}: user indices {bad} are outside the fitted dataset (0..{n_users - 1})")
    return users


def popularity_vector(data: Dataset, weighted: bool = False) -> np.ndarray:
    """Item popularity as float32: distinct target-behavior buyers per item, ties broken by all interest.

    `weighted=True` ranks by the behavior-weighted sum of all interactions instead. When the data has no target
    events at all (a click stream only), the weighted sum is used either way, so the ranking is never flat.
    """
    buyers = np.asarray(data.target_matrix().sum(0), dtype=np.float64).ravel()
    interest = np.asarray(data.matrix().sum(0), dtype=np.float64).ravel()
    if weighted or buyers.sum() == 0:
        return with_tiebreak(interest, buyers).astype(np.float32)
    return with_tiebreak(buyers, interest).astype(np.float32)


def with_tiebreak(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """primary + a secondary score scaled below half the smallest gap between distinct primary values.

    The order by primary never changes; items with equal primary are ordered by secondary.
    """
    levels = np.unique(primary)
    gap = float(np.diff(levels).min()) if len(levels) > 1 else 1.0
    top = float(np.abs(secondary).max()) if len(secondary) else 0.0
    return primary if top == 0 else primary + 0.5 * gap * secondary / (top * (1 + 1e-6))


def has_history(matrix: sp.csr_matrix) -> np.ndarray:
    """Boolean per user: at least one positive entry in the (behavior-weighted) matrix."""
    return np.diff(matrix.indptr) > 0


def item_titles(data: Dataset) -> np.ndarray:
    """Readable product names for sentences: the title when present, else the product id."""
    ids = data.products["product_id"].astype(str)
    if "title" not in data.products:
        return ids.to_numpy(dtype=object)
    titles = data.products["title"].astype("string").str.strip()
    return titles.where(titles.notna() & (titles != ""), ids).to_numpy(dtype=object)


@dataclass
class HistoryNotes:
    """What each client did with each item (her strongest behavior), so reasons can name it in plain words.

    strongest: users x items, data = 1 + index into BEHAVIOR_ORDER of the strongest behavior (0 means none).
    titles:    product names; pronouns: "she", "he" or "the client" per user, from the customers' gender.
    """

    strongest: sp.csr_matrix
    titles: np.ndarray
    pronouns: np.ndarray

    @classmethod
    def from_data(cls, data: Dataset) -> HistoryNotes:
        return cls(strongest_behaviors(data), item_titles(data), client_pronouns(data.customers))

    def items(self, user: int) -> np.ndarray:
        return self.strongest.indices[self.strongest.indptr[user]:self.strongest.indptr[user + 1]]

    def behavior(self, user: int, item: int) -> str | None:
        code = int(self.strongest[user, item])
        return BEHAVIOR_ORDER[code - 1] if code else None

    def forget(self, users: np.ndarray) -> None:
        """No more notes on these clients: what they did, and their gender behind the pronoun."""
        self.strongest = drop_rows(self.strongest, users)
        self.pronouns[users] = "the client"

    def observe(self, data: Dataset, users: np.ndarray) -> None:
        """These clients' notes rebuilt from `data` (their events, their gender), as `from_data` builds them."""
        self.strongest = replace_rows(self.strongest, users, strongest_behaviors(data))
        self.pronouns[users] = client_pronouns(data.customers.iloc[users])

    def phrase(self, user: int, item: int) -> str:
        """'the Serpent pendant she wishlisted' (or '... she viewed', or just 'the Serpent pendant')."""
        behavior = self.behavior(user, item)
        title = f"the {self.titles[item]}"
        return f"{title} {self.pronouns[user]} {BEHAVIOR_VERBS[behavior]}" if behavior else title


def strongest_behaviors(data: Dataset) -> sp.csr_matrix:
    """Users x items int16: 1 + index into BEHAVIOR_ORDER of each pair's strongest behavior (0: none)."""
    inter = data.interactions
    rank = pd.Series({b: k + 1 for k, b in enumerate(BEHAVIOR_ORDER)})
    code = inter["behavior"].map(rank).fillna(len(BEHAVIOR_ORDER)).to_numpy(np.int16)
    frame = pd.DataFrame({"u": inter["user"].to_numpy(), "i": inter["item"].to_numpy(), "c": code})
    best = frame.groupby(["u", "i"], sort=False)["c"].min().reset_index()  # smallest code = strongest
    return sp.csr_matrix((best["c"].to_numpy(np.int16), (best["u"], best["i"])),
                         shape=(data.n_users, data.n_items), dtype=np.int16)


def client_pronouns(customers: pd.DataFrame) -> np.ndarray:
    if "gender" not in customers:
        return np.full(len(customers), "the client", dtype=object)
    g = customers["gender"].astype("string").str.strip().str.lower().fillna("")
    out = np.full(len(customers), "the client", dtype=object)
    out[g.isin(["f", "female", "woman", "women", "w"]).to_numpy()] = "she"
    out[g.isin(["m", "male", "man", "men"]).to_numpy()] = "he"
    return out


# ---------------------------------------------------------------------------------------------- models
class HistoryScorer:
    """State shared by the models that score a client from her history: the history itself, a popularity fallback
    (scaled to [0, 1]) for clients who have none, and the notes that let reasons name what she did."""

    history_: sp.csr_matrix
    popularity_: np.ndarray

    def _remember_history(self, data: Dataset, history: sp.csr_matrix) -> None:
        self.history_ = history
        pop = popularity_vector(data)
        self.popularity_ = pop / max(float(pop.max()), 1e-12)
        self.notes_ = HistoryNotes.from_data(data)
        self.n_users_ = data.n_users

    def forget(self, users: np.ndarray) -> Self:
        """Her history and notes go, so she is scored and explained as a client with no history (popularity)."""
        users = self._users_to_forget(users)
        self.history_ = drop_rows(self.history_, users)
        self.notes_.forget(users)
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Her history and notes are rebuilt from her events in `data`, the way `fit` builds them (`_history`);
        what the model learned from everyone (similarities, factors, the popularity fallback) stays as fitted."""
        users = self._users_to_observe(data, users)
        mine = events_of(data, users)
        self.history_ = replace_rows(self.history_, users, self._history(mine))
        self.notes_.observe(mine, users)
        return self

    def _history(self, data: Dataset) -> sp.csr_matrix:
        """The users x items history `fit` hands to `_remember_history`: the behavior-weighted matrix unless the
        model weighs her events its own way."""
        return data.matrix()

    def _cold_to_popularity(self, scores: np.ndarray, history_rows: sp.csr_matrix) -> np.ndarray:
        cold = ~has_history(history_rows)
        if cold.any():
            scores[cold] = self.popularity_
        return scores


class _ItemVectorModel(Recommender):
    """A model whose score is one vector per group of users (everyone, or everyone in a segment).

    By default the group is everyone: `fit` sets `scores_` (one value per item) and every user gets it.
    """

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("scores_")
        users = check_users(users, self.n_users_, self.name)
        return self._tile(self.scores_, len(users))

    def _tile(self, row: np.ndarray, n: int) -> np.ndarray:
        return np.repeat(row[None, :], n, axis=0)


class Popularity(_ItemVectorModel):
    """Global best sellers: how many clients bought each item (or the behavior-weighted interest, if `weighted`)."""

    name = "pop"

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted

    def fit(self, data: Dataset) -> Self:
        self.scores_ = popularity_vector(data, self.weighted)
        self.buyers_ = np.asarray(data.target_matrix().sum(0), dtype=np.int64).ravel()
        self.n_users_ = data.n_users
        return self

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        self._check_fitted("scores_")
        rank = _ranks(self.scores_)
        reasons = []
        for i in items:
            text = (f"one of the house's best sellers (#{rank[i]}, bought by {self.buyers_[i]} clients)"
                    if self.buyers_[i] else f"one of the most sought-after pieces (#{rank[i]})")
            reasons.append(Reason("bestseller", text, {"popularity": float(self.scores_[i]), "rank": float(rank[i])}))
        return reasons


class RecentPopularity(_ItemVectorModel):
    """Best sellers of the last `days` before the end of the training data, optionally with exponential decay.

    `half_life_days` (None: a flat window) makes a sale `half_life_days` old count half as much as one today.
    All-time popularity only breaks ties, so items unsold in the window still come in a sensible order.
    """

    name = "pop-recent"

    def __init__(self, days: float = 30.0, half_life_days: float | None = None, weighted: bool = False) -> None:
        self.days = days
        self.half_life_days = half_life_days
        self.weighted = weighted

    def fit(self, data: Dataset) -> Self:
        if self.days <= 0:
            raise ValueError(f"pop-recent: days must be positive, got {self.days}")
        inter = data.interactions
        self.end_ = int(inter["timestamp"].max()) if len(inter) else 0
        recent = inter[inter["timestamp"].to_numpy() >= self.end_ - self.days * DAY]
        is_target = recent["behavior"].isin(data.target_behaviors).to_numpy()
        if not self.weighted and is_target.any():
            recent, value = recent[is_target], np.ones(int(is_target.sum()))
        else:
            value = np.maximum(recent["weight"].to_numpy(np.float64), 0.0)
        if self.half_life_days:
            age_days = (self.end_ - recent["timestamp"].to_numpy(np.float64)) / DAY
            value = value * 0.5 ** (age_days / self.half_life_days)
        self.recent_ = np.bincount(recent["item"].to_numpy(), weights=value, minlength=data.n_items)
        overall = popularity_vector(data, self.weighted).astype(np.float64)
        self.scores_ = with_tiebreak(self.recent_, overall).astype(np.float32)
        self.n_users_ = data.n_users
        return self

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        self._check_fitted("scores_")
        rank = _ranks(self.scores_)
        window = f"{self.days:g} days"
        return [Reason("trending", f"trending: #{rank[i]} in the last {window}",
                       {"recent_popularity": float(self.recent_[i]), "rank": float(rank[i])}) for i in items]


class SegmentPopularity(_ItemVectorModel):
    """Best sellers within the client's demographic segment, shrunk toward the global best sellers.

    Segment share of item i, with m = `shrinkage` pseudo-purchases spread like the global shares g(i):
        p_s(i) = (c_s(i) + m * g(i)) / (N_s + m)
    so a segment with few purchases stays close to global taste. `segment_by` names customer columns; those
    missing from the data are skipped (an `age_group` missing but an `age` present is binned into groups), and
    clients with a missing value, or when no column is usable, get the global shares.
    """

    name = "pop-segment"

    def __init__(self, segment_by: tuple[str, ...] = ("age_group", "gender"), shrinkage: float = 20.0,
                 weighted: bool = False) -> None:
        self.segment_by = segment_by
        self.shrinkage = shrinkage
        self.weighted = weighted

    def fit(self, data: Dataset) -> Self:
        if self.shrinkage < 0:
            raise ValueError(f"pop-segment: shrinkage must be >= 0, got {self.shrinkage}")
        if isinstance(self.segment_by, str):
            raise TypeError(f"pop-segment: segment_by must be a tuple of column names, got {self.segment_by!r}")
        columns, values = segment_columns(data.customers, tuple(self.segment_by))
        self.columns_ = columns
        m = data.matrix() if self.weighted else data.target_matrix()
        if m.nnz == 0:
            m = data.matrix()
        counts_global = np.asarray(m.sum(0), dtype=np.float64).ravel()
        g = counts_global / counts_global.sum() if counts_global.sum() > 0 else np.full(data.n_items, 1 / data.n_items)
        if columns:  # one code per distinct combination of values; a missing value means no segment (-1)
            codes = values.groupby(columns, dropna=True, sort=True).ngroup().fillna(-1).to_numpy(np.int64)
        else:
            codes = np.full(data.n_users, -1, dtype=np.int64)
        n_seg = int(codes.max()) + 1
        segment = np.where(codes < 0, n_seg, codes)  # row n_seg = no segment: global shares
        onehot = sp.csr_matrix((np.ones(data.n_users, np.float64), (segment, np.arange(data.n_users))),
                               shape=(n_seg + 1, data.n_users))
        counts = np.asarray((onehot @ m).todense())[:n_seg]
        totals = counts.sum(1, keepdims=True)
        shares = (counts + self.shrinkage * g) / np.maximum(totals + self.shrinkage, 1e-12)
        self.shares_ = np.vstack([shares, g[None, :]]).astype(np.float32)
        self.segment_ = segment.astype(np.int32)
        first = pd.Series(np.arange(data.n_users))[codes >= 0].groupby(codes[codes >= 0]).first().to_numpy()
        self.segment_values_ = [{c: str(v) for c, v in row.items()} for _, row in values.iloc[first].iterrows()]
        self.segment_sizes_ = np.bincount(segment, minlength=n_seg + 1)
        self.segment_purchases_ = np.concatenate([totals.ravel(), [counts_global.sum()]])
        self.n_users_ = data.n_users
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("shares_")
        users = check_users(users, self.n_users_, self.name)
        return self.shares_[self.segment_[users]]

    def forget(self, users: np.ndarray) -> Self:
        """Her demographics go with her: she gets the shares of clients without a segment (the global ones)."""
        users = self._users_to_forget(users)
        self.segment_[users] = len(self.shares_) - 1
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Her segment is read again from the customers table, which events do not change: nothing moves for a
        client the model knows, and a forgotten client whom `data` still holds gets her segment back. Shares stay
        as fitted (they are everyone's purchases)."""
        users = self._users_to_observe(data, users)
        columns, values = segment_columns(data.customers, tuple(self.segment_by))
        no_segment = len(self.shares_) - 1
        if columns != self.columns_ or not len(users):  # a segment column gone from the table: none can match
            self.segment_[users] = no_segment
            return self
        code_of = {tuple(v[c] for c in columns): s for s, v in enumerate(self.segment_values_)}
        mine = values.iloc[users]
        known = mine.notna().all(axis=1).to_numpy()
        keys = mine.astype(object).itertuples(index=False, name=None)
        self.segment_[users] = [code_of.get(tuple(map(str, k)), no_segment) if ok else no_segment
                                for k, ok in zip(keys, known, strict=True)]
        return self

    def segment_label(self, user: int) -> str | None:
        """'women 35-44 in France', or None for a client without a segment."""
        s = self.segment_[user]
        return describe_segment(self.segment_values_[s]) if s < len(self.segment_values_) else None

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        self._check_fitted("shares_")
        label = self.segment_label(user)
        glob = self.shares_[-1]
        row = self.shares_[self.segment_[user]]
        reasons = []
        for i in items:
            signals = {"segment_share": float(row[i]), "global_share": float(glob[i]),
                       "lift": float(row[i] / glob[i]) if glob[i] > 0 else 0.0}
            text = f"popular with {label}" if label else "popular with clients overall"
            reasons.append(Reason("segment_popular" if label else "bestseller", text, signals))
        return reasons


def segment_columns(customers: pd.DataFrame, wanted: tuple[str, ...]) -> tuple[list[str], pd.DataFrame]:
    """The usable segment columns and their per-customer values (strings; missing stays NA)."""
    columns, frame = [], {}
    for col in wanted:
        if col in customers and customers[col].notna().any():
            values = customers[col]
        elif col == "age_group" and "age" in customers and customers["age"].notna().any():
            values = age_group(customers["age"])
        else:
            continue
        v = values.astype("string").str.strip()
        frame[col] = v.where(v != "")
        columns.append(col)
    return columns, pd.DataFrame(frame, index=customers.index)


def age_group(age: pd.Series) -> pd.Series:
    age = pd.to_numeric(age, errors="coerce")
    out = pd.Series(pd.NA, index=age.index, dtype="string")
    for lo, hi, label in AGE_GROUPS:
        out[(age >= lo) & (age < hi)] = label
    return out


def describe_segment(values: dict[str, str]) -> str:
    """Readable segment: 'women 35-44 in France'."""
    gender = {"f": "women", "female": "women", "w": "women", "woman": "women", "women": "women",
              "m": "men", "male": "men", "man": "men", "men": "men"}
    g = values.get("gender")
    noun = gender.get(str(g).lower(), f"{g} clients") if g is not None else "clients"
    parts = [noun]
    for col, v in values.items():
        if col == "gender":
            continue
        if col == "age_group":
            parts.append(str(v))
        elif col == "location_country":
            parts.append(f"in {v}")
        else:
            parts.append(f"({col.replace('_', ' ')}: {v})")
    return " ".join(parts)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each item by score (best = 1)."""
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)
    return rank
