"""Beyond-accuracy measures of top-k lists: coverage, concentration, diversity, novelty, price tiers, guardrails,
exposure, and the user / item slices where averages hide failures (DESIGN §5).

Every function takes the recommended lists as an int array `items` of shape (n_users, k), best first, with -1 in
slots that could not be filled; -1 is ignored everywhere. Popularity, price tiers and slices are read from the
*training* Dataset, so nothing from the test period leaks into what "popular" or "cold" means.

Definitions (stated once here; the report carries them too):
  coverage        distinct recommended items / eligible catalog items
  gini            Gini coefficient of slot counts over the eligible catalog (0 = every item equally shown,
                  1 = every slot on one item)
  ild_<attr>      per list, share of distinct item pairs whose attribute differs; mean over lists with >= 2 items
  ild_embedding   per list, mean cosine distance (1 - cos) over distinct item pairs of an item feature matrix
  novelty         mean over recommended items of -log2 p(i), p(i) = (training users who touched i + 1) /
                  (training users + 1); the +1 keeps never-seen items finite
  price tiers     catalog price quartiles per category: tier 0 (entry) .. 3 (top); -1 (unknown) when the price is
                  missing or not positive, or when the whole category has a single price
  price_tier_consistency  per user who bought in training, share of recommended items (of known tier) whose tier
                  is within one of a tier the user bought; mean over those users
  guardrail_violations    recommended slots that are out of stock or already bought (target behavior) in training,
                  recomputed here from the catalog and the history, not from the mask `recommend` was given
  user slices     by training interactions of any behavior: cold 0, warm 1-4, heavy >= 5 and in the top 10% of
                  users with training interactions, regular the rest; the four are disjoint and add up
  new items       test targets whose product was launched in the NEW_ITEM_DAYS before the end of training (by the
                  catalog's created_date) or has no training interaction at all; recall and NDCG restricted to them
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.evaluate.metrics import hit_matrix, per_user_metrics, summarize
from vendome.recommend import OUT_OF_STOCK
from vendome.rules.guard import price_tiers  # noqa: F401  (the report's tiers are the price band's)

TIER_NAMES = ("entry", "mid", "high", "top")
WARM_MAX = 4            # warm users have 1..WARM_MAX training interactions
HEAVY_QUANTILE = 0.9    # heavy users: at or above this quantile of training interactions per active user
TOP_BRANDS = 20         # exposure by brand lists this many brands, the rest as "(other)"
AGE_BANDS = (0, 18, 25, 35, 45, 55, 65, 200)


# ---------------------------------------------------------------------------------------------- catalog measures
def coverage(items: np.ndarray, eligible: np.ndarray) -> float:
    """Share of the eligible catalog that appears in at least one list."""
    shown = np.unique(items[items >= 0])
    return float(len(shown) / max(int(eligible.sum()), 1))


def exposure_counts(items: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(items[items >= 0].ravel(), minlength=n_items).astype(np.float64)


def gini(items: np.ndarray, eligible: np.ndarray) -> float:
    """Gini coefficient of how slots are spread over the eligible catalog."""
    counts = np.sort(exposure_counts(items, len(eligible))[eligible])
    n, total = len(counts), counts.sum()
    if n == 0 or total == 0:
        return 0.0
    rank = np.arange(1, n + 1)
    return float(2.0 * (rank * counts).sum() / (n * total) - (n + 1) / n)


def item_popularity(train: Dataset) -> np.ndarray:
    """p(i): share of training users who interacted with item i (add-one smoothed)."""
    inter = train.interactions
    pairs = inter[["user", "item"]].drop_duplicates()
    users = np.bincount(pairs["item"].to_numpy(), minlength=train.n_items)
    n_users = inter["user"].nunique()
    return (users + 1.0) / (n_users + 1.0)


def novelty(items: np.ndarray, popularity: np.ndarray) -> float:
    valid = items >= 0
    if not valid.any():
        return 0.0
    return float(-np.log2(popularity[items[valid]]).mean())


# ---------------------------------------------------------------------------------------------- diversity
def _pair_mask(items: np.ndarray) -> np.ndarray:
    """(n, k, k) mask of distinct filled pairs i < j."""
    k = items.shape[1]
    valid = items >= 0
    upper = np.triu(np.ones((k, k), bool), 1)
    return valid[:, :, None] & valid[:, None, :] & upper


def intra_list_diversity(items: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per list, the share of item pairs whose label differs (NaN for lists with fewer than two items).

    `labels` are integer codes per item (e.g. factorized categories); missing attributes are their own code.
    """
    codes = labels[np.where(items >= 0, items, 0)]
    pairs = _pair_mask(items)
    differ = (codes[:, :, None] != codes[:, None, :]) & pairs
    n_pairs = pairs.sum((1, 2))
    return np.divide(differ.sum((1, 2)), n_pairs, out=np.full(len(items), np.nan), where=n_pairs > 0)


def embedding_diversity(items: np.ndarray, features: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Per list, mean cosine distance over item pairs (NaN for lists with fewer than two items)."""
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    unit = (features / np.where(norm > 0, norm, 1.0)).astype(np.float32)
    out = np.full(len(items), np.nan)
    for start in range(0, len(items), batch):
        block = items[start:start + batch]
        vec = unit[np.where(block >= 0, block, 0)]
        cos = np.einsum("nid,njd->nij", vec, vec)
        pairs = _pair_mask(block)
        n_pairs = pairs.sum((1, 2))
        dist = ((1.0 - cos) * pairs).sum((1, 2))
        out[start:start + len(block)] = np.divide(dist, n_pairs, out=np.full(len(block), np.nan),
                                                  where=n_pairs > 0)
    return out


def nanmean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


# ---------------------------------------------------------------------------------------------- price tiers
def price_tier_consistency(items: np.ndarray, users: np.ndarray, train: Dataset, tiers: np.ndarray) -> np.ndarray:
    """Per user, share of recommended items within one tier of a tier bought in training (NaN if not defined)."""
    bought = train.target_matrix().tocoo()
    known = tiers[bought.col] >= 0
    has_tier = np.zeros((train.n_users, 4), bool)
    has_tier[bought.row[known], tiers[bought.col[known]]] = True
    allowed = has_tier.copy()
    allowed[:, 1:] |= has_tier[:, :-1]
    allowed[:, :-1] |= has_tier[:, 1:]
    rec_tier = np.where(items >= 0, tiers[np.where(items >= 0, items, 0)], -1)
    counted = rec_tier >= 0
    ok = allowed[users[:, None], np.maximum(rec_tier, 0)] & counted
    n = counted.sum(1)
    defined = (n > 0) & has_tier[users].any(1)
    return np.divide(ok.sum(1), n, out=np.full(len(users), np.nan), where=defined)


# ---------------------------------------------------------------------------------------------- guardrails
def guardrail_violations(items: np.ndarray, users: np.ndarray, train: Dataset, *, in_stock_only: bool = True,
                         exclude_purchased: bool = True, now: float | None = None) -> dict[str, int]:
    """Count slots that break the guardrails, recomputed from the catalog and the training history.

    Deliberately independent of `eligible_items` / `exclusions`, so a bug in those shows up here.
    """
    filled = items >= 0
    safe = np.where(filled, items, 0)
    out_of_stock = 0
    if in_stock_only and "stock_status" in train.products:
        status = train.products["stock_status"].astype(str).str.strip().str.lower().str.replace(" ", "_")
        blocked = status.isin(OUT_OF_STOCK).to_numpy()
        out_of_stock = int((blocked[safe] & filled).sum())
    not_launched = 0
    if now is not None and "created_date" in train.products:
        created = pd.to_datetime(train.products["created_date"], utc=True, errors="coerce", format="mixed")
        future = (created > pd.Timestamp(int(now), unit="s", tz="UTC")).to_numpy()
        not_launched = int((future[safe] & filled).sum())
    purchased = 0
    if exclude_purchased:
        inter = train.interactions
        buys = inter[inter["behavior"].isin(train.target_behaviors)]
        bought = set(zip(buys["user"].to_numpy().tolist(), buys["item"].to_numpy().tolist(), strict=True))
        if bought:
            rows, cols = np.nonzero(filled)
            pairs = zip(users[rows].tolist(), items[rows, cols].tolist(), strict=True)
            purchased = sum(p in bought for p in pairs)
    srt = np.sort(np.where(filled, items, -1 - np.arange(items.shape[1])[None, :]), axis=1)
    duplicates = int((srt[:, 1:] == srt[:, :-1]).sum())
    return {"total": out_of_stock + not_launched + purchased, "out_of_stock": out_of_stock,
            "not_launched": not_launched, "purchased": purchased, "duplicates": duplicates}


# ---------------------------------------------------------------------------------------------- exposure
def _attribute(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series("(none)", index=frame.index)
    return frame[column].astype("string").fillna("(missing)").astype(str)


def _shares(labels: np.ndarray, items: np.ndarray, top: int | None = None) -> dict[str, float]:
    """Share of filled slots per label, largest first; beyond `top` labels, lumped into "(other)"."""
    shown = items[items >= 0]
    if len(shown) == 0:
        return {}
    counts = pd.Series(labels[shown]).value_counts()
    shares = counts / counts.sum()
    if top is not None and len(shares) > top:
        shares = pd.concat([shares.iloc[:top], pd.Series({"(other)": shares.iloc[top:].sum()})])
    return {str(k): float(v) for k, v in shares.items()}


def tier_labels(tiers: np.ndarray) -> np.ndarray:
    names = np.array(list(TIER_NAMES) + ["(unknown)"], dtype=object)
    return names[np.where(tiers >= 0, tiers, 4)]


def customer_groups(customers: pd.DataFrame) -> dict[str, np.ndarray]:
    """Demographic group label per user: gender, and age_group (or banded age when only age is given)."""
    groups: dict[str, np.ndarray] = {}
    if "gender" in customers:
        groups["gender"] = _attribute(customers, "gender").to_numpy()
    if "age_group" in customers:
        groups["age_group"] = _attribute(customers, "age_group").to_numpy()
    elif "age" in customers:
        age = pd.to_numeric(customers["age"], errors="coerce")
        bands = pd.cut(age, AGE_BANDS, right=False,
                       labels=[f"{lo}-{hi - 1}" if hi < 200 else f"{lo}+" for lo, hi in zip(AGE_BANDS[:-1],
                                                                                             AGE_BANDS[1:],
                                                                                             strict=True)])
        groups["age_group"] = bands.astype("string").fillna("(missing)").astype(str).to_numpy()
    return groups


def exposure(items: np.ndarray, users: np.ndarray, train: Dataset, tiers: np.ndarray, eligible: np.ndarray,
             per_user: dict[str, np.ndarray] | None = None, metric: str = "ndcg@10") -> dict:
    """Slot shares by category, brand and price tier (with the eligible catalog's shares beside them), and per
    customer gender / age group: users, the group's accuracy and the categories it is shown."""
    category = _attribute(train.products, "category").to_numpy()
    brand = _attribute(train.products, "brand").to_numpy()
    tier = tier_labels(tiers)
    catalog = np.flatnonzero(eligible)[:, None]
    out: dict = {
        "category": _shares(category, items),
        "brand": _shares(brand, items, top=TOP_BRANDS),
        "price_tier": _shares(tier, items),
        "catalog": {"category": _shares(category, catalog), "price_tier": _shares(tier, catalog)},
    }
    for attr, labels in customer_groups(train.customers).items():
        user_labels = labels[users]
        table = {}
        for group in sorted(set(user_labels.tolist())):
            sel = user_labels == group
            entry: dict = {"users": int(sel.sum()), "category": _shares(category, items[sel])}
            if per_user is not None and metric in per_user:
                entry[metric] = float(per_user[metric][sel].mean())
            table[group] = entry
        out[f"customer_{attr}"] = table
    return out


# ---------------------------------------------------------------------------------------------- slices
NEW_ITEM_DAYS = 60


def training_counts(train: Dataset) -> np.ndarray:
    """Training interactions (any behavior) per user."""
    return np.bincount(train.interactions["user"].to_numpy(), minlength=train.n_users)


def new_items(train: Dataset) -> tuple[np.ndarray, str]:
    """Items that are new at the end of training: launched within NEW_ITEM_DAYS, or never interacted with."""
    seen = np.bincount(train.interactions["item"].to_numpy(), minlength=train.n_items) > 0
    new = ~seen
    definition = "no training interaction"
    created = train.products.get("created_date")
    if created is not None and len(train.interactions):
        launched = pd.to_datetime(created, utc=True, errors="coerce", format="mixed")
        end = pd.Timestamp(int(train.interactions["timestamp"].max()), unit="s", tz="UTC")
        recent = (launched >= end - pd.Timedelta(days=NEW_ITEM_DAYS)).to_numpy(dtype=bool, na_value=False)
        new |= recent
        definition = f"launched in the last {NEW_ITEM_DAYS} days of training (created_date) or no training interaction"
    return new, definition


def user_slices(users: np.ndarray, train: Dataset) -> tuple[dict[str, np.ndarray], dict]:
    """Disjoint boolean masks over `users` (cold, warm, regular, heavy) and the thresholds used."""
    counts = training_counts(train)
    active = counts[counts > 0]
    threshold = float(np.quantile(active, HEAVY_QUANTILE)) if len(active) else np.inf
    c = counts[users]
    heavy = (c > WARM_MAX) & (c >= threshold)
    masks = {
        "cold": c == 0,
        "warm": (c >= 1) & (c <= WARM_MAX),
        "regular": (c > WARM_MAX) & ~heavy,
        "heavy": heavy,
    }
    definition = {"counted": "training interactions of any behavior", "cold": "0", "warm": f"1-{WARM_MAX}",
                  "heavy": f">= {threshold:g} (top {1 - HEAVY_QUANTILE:.0%} of active training users) and "
                           f"> {WARM_MAX}", "regular": "the rest"}
    return masks, definition


def slices(items: np.ndarray, users: np.ndarray, test: sp.csr_matrix, train: Dataset,
           per_user: dict[str, np.ndarray], ks: tuple[int, ...]) -> dict:
    """Accuracy per user slice, and recall / NDCG on the test targets that are new items.

    Adds the per-user new-item arrays to `per_user` as "new_items:recall@k" / "new_items:ndcg@k".
    """
    masks, definition = user_slices(users, train)
    out: dict = {"definition": definition}
    for name, sel in masks.items():
        entry = {"users": int(sel.sum())}
        entry.update({m: float(v[sel].mean()) if sel.any() else None for m, v in per_user.items()})
        out[name] = entry
    new, new_definition = new_items(train)
    out["definition"]["new_items"] = new_definition
    new_test = test[users] @ sp.diags(new.astype(np.float32))
    new_test = sp.csr_matrix(new_test)
    new_test.eliminate_zeros()
    n_new = np.diff(new_test.indptr)
    with_new = np.flatnonzero(n_new > 0)
    entry = {"targets": int(new_test.nnz), "users": int(len(with_new))}
    if len(with_new):
        hits = hit_matrix(items[with_new], new_test, with_new)
        restricted = per_user_metrics(hits, n_new[with_new], ks)
        entry.update({m: v for m, v in summarize(restricted).items() if m.startswith(("recall@", "ndcg@"))})
        # per-user values over the users who have new-item targets (the same users for every model of a split),
        # so paired tests can compare models on new products
        for m, v in restricted.items():
            if m.startswith(("recall@", "ndcg@")):
                per_user[f"new_items:{m}"] = v
    else:
        entry.update({f"{m}@{k}": None for k in ks for m in ("recall", "ndcg")})
    out["new_items"] = entry
    return out
