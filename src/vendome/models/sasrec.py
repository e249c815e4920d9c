"""SASRec (Kang and McAuley 2018), trained with full-softmax cross-entropy over the whole catalog.

A causal transformer reads the client's journey and its last hidden state scores every product:

    x_k   = E[i_k] + P[n - k] + T[bucket(t_k - t_{k-1})]    item, steps-back position and time-gap embeddings
    h     = Transformer_causal(LN(x))                        pre-LN blocks, causal self-attention
    s(i)  = h_n . E[i]                                       tied input/output item embeddings
    L     = - sum_k log softmax(h_k E^T)[i_{k+1}]            every position predicts its next step

Cross-entropy over all items rather than sampled BPR/BCE is the variant that matches or beats BERT4Rec
(Klenitskiy and Vasilev, RecSys 2023; Petrov and Macdonald 2022). Training uses every position of a journey at
once (the original SASRec recipe), which is why an epoch here is far cheaper than RecBole's, where each prefix is
its own sample. The time bucket floor(log2(1 + seconds since the previous event)) lets the model tell a
same-session click from a return months later; data with order only (Amazon S3-Rec files) gets equal gaps.

Early stopping holds out the last step of every journey and ranks it through the serving path (`recommend`,
with the same exclusions); scoring then reads the whole journey, held-out step included, as RecBole does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender, events_of
from vendome.models.popularity import HistoryScorer, check_users
from vendome.training.distributed import mean_over_ranks
from vendome.training.loop import History, TrainConfig, Trainer, seed_everything
from vendome.training.sequences import KINDS, TIME_BUCKETS, NextItemBatches, Sequences, pad_left


@dataclass
class SASRecConfig:
    n_items: int
    max_len: int = 50
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.5
    time_info: bool = True
    behavior_tokens: bool = False


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d: int, heads: int, dropout: float, norm: Callable[[int], nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = norm(d), norm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.ln2(x)))


class JourneyEncoder(nn.Module):
    """The causal transformer over item tokens, shared by every sequence model: adds the steps-back position and
    the time-gap embeddings, normalises, runs the blocks. `norm` builds each normalisation layer (LayerNorm, or
    CAMMSR's DyT option)."""

    def __init__(self, cfg: SASRecConfig, norm: Callable[[int], nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        d = cfg.hidden
        self.pos = nn.Embedding(cfg.max_len, d)
        self.time = nn.Embedding(TIME_BUCKETS, d) if cfg.time_info else None
        self.behavior = nn.Embedding(len(KINDS) + 1, d) if cfg.behavior_tokens else None
        self.ln_in, self.ln_out = norm(d), norm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout, norm) for _ in range(cfg.layers))

    def forward(self, x: torch.Tensor, items: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """(B, L, d) item tokens of left-padded ids + 1 (B, L) and step codes (time bucket + TIME_BUCKETS x
        behavior type, `Sequences.step_codes`) -> (B, L, d) hidden states."""
        x, mask = self.inputs(x, items, gaps)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_out(x)

    def inputs(self, x: torch.Tensor, items: torch.Tensor, gaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The blocks' input (tokens + position, behavior and time embeddings, normalised) and the causal mask."""
        x = x + self.pos.weight[:items.shape[1]].flip(0)[None]  # position 0 = the latest step
        if self.behavior is not None:
            x = x + self.behavior(gaps // TIME_BUCKETS)
        if self.time is not None:
            x = x + self.time(gaps % TIME_BUCKETS)
        return self.drop(self.ln_in(x)), attention_mask(items)


class SASRecNet(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.item = nn.Embedding(cfg.n_items + 1, cfg.hidden, padding_idx=0)
        self.encoder = JourneyEncoder(cfg)
        self.apply(_init)

    def item_table(self) -> torch.Tensor:
        """(n_items, d) output embeddings (the input table without the padding row)."""
        return self.item.weight[1:]

    def encode(self, items: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids + 1 and time buckets -> (B, L, d) hidden states."""
        return self.encoder(self.item(items), items, gaps)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Full-softmax cross-entropy of every real position's next item, weighted by the step's behavior."""
        items, gaps, targets, weights = batch
        h = self.encode(items, gaps)
        real = targets > 0
        return weighted_cross_entropy(h[real] @ self.item_table().T, targets[real] - 1, weights[real])

    def user_state(self, items: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        return self.encode(items, gaps)[:, -1]

    @property
    def state_width(self) -> int:
        """Width of `user_state`'s rows (a network may carry more than the hidden state, e.g. CAMMSR's client
        gate inputs)."""
        return self.cfg.hidden

    def rank(self, states: torch.Tensor) -> torch.Tensor:
        """(U, n_items) scores of the whole catalog for user states (U, state_width)."""
        return states @ self.item_table().T


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with per-row weights (sum w * ce / sum w); plain mean when every weight is 1. Over the
    global batch in data-parallel training (`mean_over_ranks`)."""
    ce = F.cross_entropy(logits, targets, reduction="none")
    return mean_over_ranks((ce * weights).sum(), weights.sum())


def attention_mask(items: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) bool: position q sees positions k <= q that hold an item (and always itself, so a padding
    row never attends to nothing, which would give NaN)."""
    n = items.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=items.device).tril()
    real = (items > 0)[:, None, None, :]
    return (causal & real) | torch.eye(n, dtype=torch.bool, device=items.device)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear | nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)


class SASRec(HistoryScorer, Recommender):
    """Self-attentive sequential recommendation with full-softmax cross-entropy.

    hidden, layers, heads, dropout, max_len: the network (64 / 2 / 2 / 0.5 / 50: the usual Amazon setting).
    time_info:       add the time-gap bucket embedding.
    behavior_tokens: add a behavior-type embedding per step (viewed, wishlisted, carted, bought: the deepest
                     behavior of the step), so a cart and a glance at the same piece read differently.
    epochs, max_minutes, patience, batch_size, lr, weight_decay: training budget and optimizer (see TrainConfig).
                     A batch is `batch_size` journeys (each trains all its positions). On Beauty, after 3
                     epochs, validation NDCG@10 was 0.033 with 64 against 0.017 with 256, same cost per epoch.
    validate:        hold out each journey's last step for early stopping on NDCG@10 (False: train all epochs).
    max_validation_users: subsample of validation journeys (seeded), to bound validation time.
    behaviors:       which behaviors form the journey (None: all).
    browse_weight:   loss weight of next steps that hold no target behavior (views, clicks, carts left behind);
                     purchase steps weigh 1. On data where every step is a purchase (Amazon) it changes nothing.
                     Validation always holds out each journey's last purchase, the step the model is judged on.
    seed, threads, checkpoint_dir, progress: see TrainConfig.
    """

    name = "sasrec"

    def __init__(self, hidden: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.5, max_len: int = 50,
                 time_info: bool = True, behavior_tokens: bool = False, epochs: int = 200,
                 max_minutes: float | None = None, patience: int = 10, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, validate: bool = True, max_validation_users: int | None = 10000,
                 behaviors: tuple[str, ...] | None = None, browse_weight: float = 1.0, seed: int = 0,
                 threads: int = 1, checkpoint_dir: str | None = None, progress: bool = False) -> None:
        self.hidden = hidden
        self.layers = layers
        self.heads = heads
        self.dropout = dropout
        self.max_len = max_len
        self.time_info = time_info
        self.behavior_tokens = behavior_tokens
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.patience = patience
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validate = validate
        self.max_validation_users = max_validation_users
        self.behaviors = behaviors
        self.browse_weight = browse_weight
        self.seed = seed
        self.threads = threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    # ------------------------------------------------------------------------------------------ fitting
    def build(self, data: Dataset) -> nn.Module:
        """The network; subclasses (multimodal, multi-behavior) return their own, reading what they need (item
        features, categories) from `data`. It must offer encode / loss / user_state / item_table as SASRecNet."""
        return SASRecNet(SASRecConfig(data.n_items, self.max_len, self.hidden, self.layers, self.heads,
                                      self.dropout, self.time_info, self.behavior_tokens))

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, max_minutes=self.max_minutes, patience=self.patience, lr=self.lr,
                           weight_decay=self.weight_decay, seed=self.seed, threads=self.threads,
                           checkpoint_dir=self.checkpoint_dir, progress=self.progress)

    def fit(self, data: Dataset) -> Self:
        if self.hidden % self.heads:
            raise ValueError(f"{self.name}: hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        seed_everything(self.seed)
        torch.set_num_threads(max(1, int(self.threads)))
        journeys = Sequences.from_dataset(data, self.behaviors, kinds=self.behavior_tokens)
        self.net_ = self.build(data)
        self._remember_history(data, data.matrix())
        validate, train_seqs = None, journeys
        if self.validate:
            purchases = journeys.intent is not None and any(x.any() for x in journeys.intent)
            train_seqs, users, targets = journeys.hold_out_last(min_length=3, intent_only=purchases)
            held_from = np.array([journeys.times[u][len(train_seqs.items[u])] for u in users], dtype=np.int64)
            validate = self._validator(data, train_seqs, users, targets, held_from)
        if not 0.0 <= self.browse_weight <= 1.0:
            raise ValueError(f"{self.name}: browse_weight must be in [0, 1], got {self.browse_weight}")
        batches = NextItemBatches(train_seqs, self.max_len, self.batch_size, seed=self.seed,
                                  browse_weight=self.browse_weight)
        self.history_: History = Trainer(self.net_, self.train_config()).fit(batches, validate)
        self.sequences_ = journeys
        return self

    def _validator(self, data: Dataset, prefixes: Sequences, users: np.ndarray, targets: np.ndarray,
                   held_from: np.ndarray):
        """NDCG@10 of the held-out last steps (each user's events from `held_from` on), ranked through
        `recommend` with the serving exclusions of the history before them."""
        from vendome.evaluate.metrics import per_user_metrics
        from vendome.recommend import Rules, eligible_items, exclusions, recommend

        if self.max_validation_users and len(users) > self.max_validation_users:
            pick = np.sort(np.random.default_rng(self.seed).choice(len(users), self.max_validation_users,
                                                                   replace=False))
            users, targets, held_from = users[pick], targets[pick], held_from[pick]
        inter = data.interactions
        first_held = np.full(data.n_users, np.iinfo(np.int64).max)
        first_held[users] = held_from
        held = inter["timestamp"].to_numpy() >= first_held[inter["user"].to_numpy()]
        before = data.with_interactions(inter[~held])
        rules = Rules()
        eligible, exclude = eligible_items(before, rules), exclusions(before, rules)
        view = _PrefixView(self, prefixes)

        def validate() -> float:
            items, _ = recommend(view, users, k=10, eligible=eligible, exclude=exclude, batch_size=1024)
            hits = items == targets[:, None]
            return float(per_user_metrics(hits, np.ones(len(users), dtype=np.int64), ks=(10,))["ndcg@10"].mean())

        return validate

    # ------------------------------------------------------------------------------------------ scoring
    def user_states(self, users: np.ndarray, seqs: Sequences | None = None) -> np.ndarray:
        """(len(users), state_width) state after each user's journey. Users are encoded in batches of similar length,
        each only as wide as its longest journey (positions count back from the latest step, so width does not
        change the answer); most journeys are far shorter than max_len."""
        seqs = seqs or self.sequences_
        users = np.asarray(users, dtype=np.int64)
        lengths = np.minimum(np.array([len(seqs.items[u]) for u in users], dtype=np.int64), self.max_len)
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(users), self.net_.state_width), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(users), 128):  # small batches: widths follow the length distribution
                rows = order[start:start + 128]
                items, gaps = pad_left(seqs, users[rows], max(1, int(lengths[rows].max())))
                out[rows] = self.net_.user_state(items, gaps).numpy()
        return out

    def score(self, users: np.ndarray, seqs: Sequences | None = None) -> np.ndarray:
        self._check_fitted("sequences_")
        users = check_users(users, self.n_users_, self.name)
        self.net_.eval()
        with torch.no_grad():
            scores = self.net_.rank(torch.from_numpy(self.user_states(users, seqs))).numpy().astype(np.float32)
        seqs = seqs or self.sequences_
        cold = np.array([len(seqs.items[u]) == 0 for u in users], dtype=bool)
        if cold.any():
            scores[cold] = self.popularity_
        return scores

    def forget(self, users: np.ndarray) -> Self:
        """Her journey and notes go: the network then reads nothing for her and she is scored as a client with no
        journey (popularity). `history_` here is the training curve, not hers, and stays."""
        users = self._users_to_forget(users)
        seqs = self.sequences_
        for u in users:
            seqs.items[u] = np.zeros(0, dtype=np.int64)
            seqs.times[u] = np.zeros(0, dtype=np.int64)
            if seqs.intent is not None:
                seqs.intent[u] = np.zeros(0, dtype=bool)
            if seqs.kinds is not None:
                seqs.kinds[u] = np.zeros(0, dtype=np.int64)
        self.notes_.forget(users)
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Her journey is rebuilt from her events in `data` as `fit` builds it (the model's behaviors, repeats
        collapsed, purchase steps flagged), and her notes with it; the network reads it as trained, so her next
        scores follow the piece she viewed a moment ago. `history_` is the training curve and stays."""
        users = self._users_to_observe(data, users)
        mine = events_of(data, users)
        fresh = Sequences.from_dataset(mine, self.behaviors, kinds=self.behavior_tokens)
        seqs = self.sequences_
        for u in users:
            seqs.items[u], seqs.times[u] = fresh.items[u], fresh.times[u]
            if seqs.intent is not None:
                seqs.intent[u] = fresh.intent[u]
            if seqs.kinds is not None:
                seqs.kinds[u] = fresh.kinds[u]
        self.notes_.observe(mine, users)
        return self

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """The step of her journey whose item embedding is closest to each recommendation, recency-weighted."""
        self._check_fitted("sequences_")
        seq = self.sequences_.items[user][-self.max_len:]
        if len(seq) == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        with torch.no_grad():
            table = F.normalize(self.net_.item_table(), dim=1).numpy()
        sims = table[np.asarray(items)] @ table[seq].T                     # (items, steps)
        recency = 0.5 ** (np.arange(len(seq))[::-1] / 5.0)                 # the last steps weigh most
        reasons = []
        for k, _ in enumerate(items):
            best = int(np.argmax(sims[k] * recency))
            steps_ago = len(seq) - 1 - best
            when = "her latest step" if steps_ago == 0 else f"{steps_ago} steps back in her journey"
            reasons.append(Reason("sequence", f"follows {self.notes_.phrase(user, int(seq[best]))} ({when})",
                                  {"anchor_similarity": float(sims[k, best]), "steps_ago": float(steps_ago)}))
        return reasons


class _PrefixView:
    """Scores users from the validation prefixes (the journeys minus their held-out step)."""

    def __init__(self, model: SASRec, prefixes: Sequences) -> None:
        self.model, self.prefixes = model, prefixes

    def score(self, users: np.ndarray) -> np.ndarray:
        was_training = self.model.net_.training
        self.model.net_.eval()
        try:
            states = torch.from_numpy(self.model.user_states(np.asarray(users), self.prefixes))
            with torch.no_grad():
                return self.model.net_.rank(states).numpy().astype(np.float32)
        finally:
            self.model.net_.train(was_training)

