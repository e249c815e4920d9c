"""Evaluation splits (DESIGN §5): who is tested on what, with nothing from the future in training.

- `temporal`: one global cut-off time; train is everything before it, test the target-behavior events after it.
  The default for retail: it is what a deployed model faces.
- `loo`: chronological leave-one-out per user: each user's last target event is the test, everything before it is
  train (the protocol of the published Amazon tables).
- `given`: the format's own split (interactions with split == "test"), e.g. the Tmall MB-CGCN benchmark.

Test targets that the user already had as a target in training (a repeat purchase) are dropped: the serving rules
exclude purchased items, so keeping them would count unreachable targets. Their number is reported in `info`.
The same function carves a validation split out of a training set (split the train again), so tuning never sees test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset

PROTOCOLS = ("temporal", "loo", "given")
DAY = 86_400


@dataclass
class Split:
    train: Dataset
    test: sp.csr_matrix          # binary user x item, the held-out targets
    users: np.ndarray            # users with at least one test target, ascending
    protocol: str
    info: dict = field(default_factory=dict)

    @property
    def test_interactions(self) -> int:
        return int(self.test.nnz)


def split(data: Dataset, protocol: str = "temporal", *, test_days: float = 30.0, cutoff: int | None = None) -> Split:
    """Split `data` by `protocol`; `test_days` or `cutoff` (unix seconds) place the temporal cut."""
    inter = data.interactions
    if len(inter) == 0:
        raise ValueError(f"dataset {data.name!r} has no interactions to split")
    is_target = inter["behavior"].isin(data.target_behaviors).to_numpy()
    if protocol == "temporal":
        if cutoff is None:
            cutoff = int(inter["timestamp"].max() - test_days * DAY)
        in_test = inter["timestamp"].to_numpy() >= cutoff
        train_mask, test_mask = ~in_test, in_test & is_target
        info = {"cutoff": int(cutoff), "test_days": test_days}
    elif protocol == "loo":
        train_mask, test_mask = _leave_last_out(inter, is_target)
        info = {}
    elif protocol == "given":
        if "split" not in inter:
            raise ValueError(f"dataset {data.name!r} carries no split column; use protocol temporal or loo")
        flag = inter["split"].astype(str).to_numpy()
        train_mask, test_mask = flag != "test", (flag == "test") & is_target
        info = {}
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")

    test_df = inter[test_mask]
    train = data.with_interactions(inter[train_mask]).with_texts(
        texts_before(data.texts, test_df, cutoff if protocol == "temporal" else None))
    test = sp.csr_matrix((np.ones(len(test_df), np.float32), (test_df["user"], test_df["item"])),
                         shape=(data.n_users, data.n_items))
    test.sum_duplicates()
    test.data[:] = 1.0
    seen = train.target_matrix()
    repeat = test.multiply(seen)
    info["dropped_repeat_targets"] = int(repeat.nnz)
    test = (test - repeat).tocsr()
    test.eliminate_zeros()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    info.update(n_train=int(train_mask.sum()), n_test_targets=int(test.nnz), n_test_users=int(len(users)))
    return Split(train=train, test=test, users=users, protocol=protocol, info=info)


def texts_before(texts: pd.DataFrame, test: pd.DataFrame, cutoff: int | None) -> pd.DataFrame:
    """The texts training may read: before the cut-off (temporal), and always before their author's first held-out
    event, so a review of the test purchase (or a note written after it) cannot leak it."""
    if texts.empty:
        return texts
    keep = np.ones(len(texts), bool) if cutoff is None else texts["timestamp"].to_numpy() < cutoff
    first = test.groupby("user")["timestamp"].min()
    limit = first.reindex(texts["user"].to_numpy()).to_numpy(dtype=float)
    keep &= ~(texts["timestamp"].to_numpy() >= limit)              # NaN (no test event) keeps the text
    return texts[keep]


def _leave_last_out(inter: pd.DataFrame, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks: each user's last target event is test; train keeps that user's events strictly before it.

    Users with a single target event and nothing before it keep it in train (nothing to learn them from).
    Ties in time keep file order (the sort is stable), which the Amazon files rely on.
    """
    order = np.lexsort((np.arange(len(inter)), inter["timestamp"].to_numpy(), inter["user"].to_numpy()))
    users = inter["user"].to_numpy()[order]
    target = is_target[order]
    pos = np.arange(len(order))
    # position (in sorted order) of each user's last target event
    last_target = pd.Series(np.where(target, pos, -1)).groupby(users).transform("max").to_numpy()
    first_pos = pd.Series(pos).groupby(users).transform("min").to_numpy()
    has_history = last_target > first_pos
    test_sorted = (pos == last_target) & has_history
    train_sorted = ~has_history | (pos < last_target)
    train_mask = np.empty(len(order), bool)
    test_mask = np.empty(len(order), bool)
    train_mask[order] = train_sorted
    test_mask[order] = test_sorted
    return train_mask, test_mask
