"""Client journeys as tensors: per-user item sequences with time gaps, left-padded batches, a held-out last item.

Item ids are shifted by one so 0 is padding. Sequences are left-padded: the last column is always the most recent
event, which is the state a recommendation is made from. A run of events on the same piece (view, click,
wishlist, cart) is one step of the journey: consecutive repeats collapse to their first timestamp.

Each step also records whether it holds a target behavior (a purchase), so training can weigh the steps a client
commits to above the ones she only browses, and validation can hold out her last purchase rather than her last
click: on a boutique most steps are views, and a model judged on views learns to predict views.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vendome.data.dataset import Dataset

PAD = 0
TIME_BUCKETS = 32  # floor(log2(1 + gap seconds)) < 32 covers gaps up to 68 years
# behavior-type tokens, shallow to deep in the funnel; a collapsed run takes its deepest behavior. Id 0: none.
KINDS = ("view", "click", "remove_from_cart", "add_to_wishlist", "add_to_cart", "purchase")


@dataclass
class Sequences:
    """Chronological journeys of every user of a Dataset (empty arrays for users without events)."""

    items: list[np.ndarray]   # dense item indices, oldest first
    times: list[np.ndarray]   # unix seconds, same lengths
    intent: list[np.ndarray] | None = None  # bool, same lengths: the step holds a target behavior (None: all do)
    kinds: list[np.ndarray] | None = None   # int, same lengths: 1 + the step's deepest KINDS index (None: no tokens)

    @classmethod
    def from_dataset(cls, data: Dataset, behaviors: tuple[str, ...] | None = None,
                     collapse_repeats: bool = True, kinds: bool = False) -> Sequences:
        """Every user's journey; `kinds` also records each step's behavior type (target behaviors count as a
        purchase), for models that read behavior-type tokens."""
        df = data.interactions
        if behaviors is not None:
            df = df[df["behavior"].isin(behaviors)]
        df = df.sort_values(["user", "timestamp"], kind="stable")
        users = df["user"].to_numpy()
        items = df["item"].to_numpy(np.int64)
        times = df["timestamp"].to_numpy(np.int64)
        intent = df["behavior"].isin(data.target_behaviors).to_numpy()
        kind = df["behavior"].map({b: k + 1 for k, b in enumerate(KINDS)}).fillna(0).to_numpy(np.int64, copy=True)
        kind[intent] = len(KINDS)
        if collapse_repeats and len(df):
            keep = np.ones(len(df), dtype=bool)
            keep[1:] = (items[1:] != items[:-1]) | (users[1:] != users[:-1])
            runs = np.flatnonzero(keep)
            intent = np.maximum.reduceat(intent, runs)  # a run holds a purchase if any event does
            kind = np.maximum.reduceat(kind, runs) if len(runs) else kind[:0]
            users, items, times = users[keep], items[keep], times[keep]
        bounds = np.searchsorted(users, np.arange(data.n_users + 1))
        cut = [slice(bounds[u], bounds[u + 1]) for u in range(data.n_users)]
        return cls([items[c] for c in cut], [times[c] for c in cut], [intent[c] for c in cut],
                    [kind[c] for c in cut] if kinds else None)

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.items), dtype=np.int64, count=len(self.items))

    def step_codes(self, u: int) -> np.ndarray:
        """Per step, the time bucket plus TIME_BUCKETS x its behavior-type id (0 without kinds): one integer the
        journey encoder splits back into its two embeddings, so batches and padding carry a single channel."""
        codes = time_buckets(self.times[u])
        return codes + TIME_BUCKETS * self.kinds[u] if self.kinds is not None else codes

    def intent_of(self, u: int) -> np.ndarray:
        return self.intent[u] if self.intent is not None else np.ones(len(self.items[u]), dtype=bool)

    def hold_out_last(self, min_length: int = 2, intent_only: bool = False
                      ) -> tuple[Sequences, np.ndarray, np.ndarray]:
        """(prefixes, users, held-out items): the last step of every journey of at least `min_length` steps is
        held out for validation, and with `intent_only` the last step holding a target behavior (a purchase),
        everything from it on leaving training. Journeys with nothing to hold out stay whole."""
        cut = np.full(len(self.items), -1, dtype=np.int64)
        for u, s in enumerate(self.items):
            steps = np.flatnonzero(self.intent_of(u)) if intent_only else np.arange(len(s))
            steps = steps[steps >= min_length - 1]
            if len(steps):
                cut[u] = steps[-1]
        users = np.flatnonzero(cut >= 0)
        targets = np.array([self.items[u][cut[u]] for u in users], dtype=np.int64)

        def prefix(seqs: list[np.ndarray]) -> list[np.ndarray]:
            return [s[:cut[u]] if cut[u] >= 0 else s for u, s in enumerate(seqs)]

        intent = prefix(self.intent) if self.intent is not None else None
        kinds = prefix(self.kinds) if self.kinds is not None else None
        return Sequences(prefix(self.items), prefix(self.times), intent, kinds), users, targets


def time_buckets(times: np.ndarray) -> np.ndarray:
    """Bucketed gap to the previous event, floor(log2(1 + seconds)); the first event gets bucket 0."""
    gaps = np.diff(times, prepend=times[:1]) if len(times) else times
    return np.minimum(np.floor(np.log2(1.0 + np.maximum(gaps, 0))), TIME_BUCKETS - 1).astype(np.int64)


def pad_left(seqs: Sequences, users: np.ndarray, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(items + 1, step codes) of the last `max_len` steps of each user's journey, left-padded with 0; a step's
    code is its time bucket, plus its behavior type when the journeys carry kinds (`Sequences.step_codes`)."""
    items = np.zeros((len(users), max_len), dtype=np.int64)
    gaps = np.zeros((len(users), max_len), dtype=np.int64)
    for row, u in enumerate(users):
        s = seqs.items[u][-max_len:]
        if len(s):
            items[row, max_len - len(s):] = s + 1
            gaps[row, max_len - len(s):] = seqs.step_codes(u)[-max_len:]
    return torch.from_numpy(items), torch.from_numpy(gaps)


@dataclass
class NextItemBatches:
    """Training batches for next-item prediction: every position of a journey predicts the step after it.

    Input is the journey without its last step and the target the journey shifted by one (SASRec's
    all-positions training: one pass over a sequence trains every prefix at once, rather than cutting each
    prefix into its own sample as RecBole does). Journeys longer than max_len + 1 are cut into windows ending
    at the last step, so old history still trains without paying for long attention spans.

    `browse_weight` is the loss weight of a target step without a target behavior (a view, a click, a cart she
    left); steps holding a purchase weigh 1. 1.0 is plain SASRec, 0.0 learns from purchases only.

    Data-parallel training shards each global batch across processes (distributed.ShardedBatches): every process
    builds the same batches, a function of (seed, epoch).
    """

    seqs: Sequences
    max_len: int
    batch_size: int
    seed: int = 0
    browse_weight: float = 1.0

    def __post_init__(self) -> None:
        self.buckets = [self.seqs.step_codes(u) for u in range(len(self.seqs))]
        windows = []
        for u, s in enumerate(self.seqs.items):
            n = len(s)
            end = n
            while end >= 2:
                windows.append((u, max(0, end - self.max_len - 1), end))
                end -= self.max_len
        self.windows = np.array(windows, dtype=np.int64).reshape(-1, 3)
        if self.browse_weight == 0 and len(self.windows):  # a window with no purchase to predict teaches nothing
            useful = [self.seqs.intent_of(int(u))[a + 1:b].any() for u, a, b in self.windows]
            self.windows = self.windows[np.array(useful, dtype=bool)]
        if len(self.windows) == 0:
            raise ValueError("no journey has two steps or more: nothing to learn a next item from")

    def __len__(self) -> int:
        return -(-len(self.windows) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batches of (input items, input time buckets, target items, target weights), each (B, width); 0 marks
        padding.

        Windows of similar length share a batch (shuffled pools of 50 batches, sorted by length within a pool,
        batches in random order), and each batch is only as wide as its longest window: on short-journey data
        (Amazon: 9 steps on average) this cuts the transformer's work several-fold without changing the loss.
        """
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.windows))
        lengths = self.windows[order, 2] - self.windows[order, 1] - 1
        pool = 50 * self.batch_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[start:start + pool], kind="stable")]
            batches += [chunk[b:b + self.batch_size] for b in range(0, len(chunk), self.batch_size)]
        for k in rng.permutation(len(batches)):
            yield self._batch(self.windows[batches[k]])

    def _batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        width = int((rows[:, 2] - rows[:, 1]).max()) - 1
        inp = np.zeros((len(rows), width), dtype=np.int64)
        gap = np.zeros_like(inp)
        tgt = np.zeros_like(inp)
        weight = np.zeros((len(rows), width), dtype=np.float32)
        for r, (u, a, b) in enumerate(rows):
            s = self.seqs.items[u][a:b] + 1
            t = self.buckets[u][a:b]
            m = len(s) - 1
            inp[r, width - m:] = s[:-1]
            gap[r, width - m:] = t[:-1]
            tgt[r, width - m:] = s[1:]
            weight[r, width - m:] = np.where(self.seqs.intent_of(u)[a + 1:b], 1.0, self.browse_weight)
        return torch.from_numpy(inp), torch.from_numpy(gap), torch.from_numpy(tgt), torch.from_numpy(weight)
