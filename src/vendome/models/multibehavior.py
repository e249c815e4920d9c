"""Behavior-aware base models: one user and one item representation per behavior, purchase as the target.

A view, a cart and a purchase are different evidence, so these models keep them apart instead of summing them
into one weighted matrix (what `als` does). Each behavior b of the cascade (view -> click -> wishlist -> cart ->
purchase, those the data has) gets its own representations U_b (n_users, d) and I_b (n_items, d), and the purchase
score is s(u, i) = U_T[u] . I_T[i] with T the target behavior. Training is multi-task BPR (Rendle et al. 2009),
one term per behavior over its own edges, so the auxiliary behaviors shape the shared parameters:

    L = sum_b w_b mean_(u, i+, i-) -log sigmoid(U_b[u] . I_b[i+] - U_b[u] . I_b[i-]) + reg |rows used|^2
        w_T = 1, w_b = aux_weight for the others

- `mbmf`:       U_b = P * r_b, I_b = Q: shared factors and a per-behavior weighting of the user's dimensions.
                (Per-behavior item offsets overfit the purchases at once on Tmall: validation NDCG@10 0.016 with
                them, 0.023 without.)
- `mblightgcn`: LightGCN (He et al. 2020) cascaded over the behavior graphs as in CRGCN / MB-CGCN: the input of
                behavior b is the output of the behavior before it, E_b = E_(b-1) + mean_(k=1..K) A_b^k E_(b-1),
                A_b the symmetric-normalised user-item graph of b, E_0 = [P; Q].

Both are the bases `mclmr:<base>` wraps (mclmr.py): the network exposes `reps()` (every behavior's tables) and
`bpr_terms` so a plug-in can replace the target term and add its own. Written on torch, not on `implicit`:
implicit has one matrix and one loss, and the plug-in needs the per-behavior tables and their gradients.
The fitted estimator keeps the tables as numpy arrays, so serving is a matrix product.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from vendome.data.dataset import Dataset
from vendome.models.base import Reason, Recommender, drop_rows, events_of, replace_rows
from vendome.models.popularity import BEHAVIOR_VERBS, HistoryScorer, check_users
from vendome.training.distributed import mean_over_ranks
from vendome.training.loop import History, TrainConfig, Trainer, seed_everything

# the purchase funnel, shallow to deep: a cascade feeds each behavior's graph the one before it
CASCADE = ("view", "click", "add_to_wishlist", "add_to_cart", "purchase")
SHORT = {"view": "views", "click": "clicks", "add_to_wishlist": "wishlist", "add_to_cart": "cart",
         "purchase": "purchases"}


# ---------------------------------------------------------------------------------------------- data
@dataclass
class BehaviorGraphs:
    """Binary users x items matrices, one per behavior, in cascade order with the target behavior last."""

    behaviors: tuple[str, ...]
    matrices: list[sp.csr_matrix]

    @classmethod
    def from_dataset(cls, data: Dataset, behaviors: tuple[str, ...] | None = None) -> BehaviorGraphs:
        """The data's behaviors (or those asked for) that have events; the target behaviors form the last graph."""
        target = tuple(data.target_behaviors)
        present = set(data.interactions["behavior"].unique())
        wanted = CASCADE if behaviors is None else tuple(behaviors)
        unknown = sorted(set(wanted) - set(CASCADE))
        if unknown:
            raise ValueError(f"unknown behaviors {unknown}; valid: {', '.join(CASCADE)}")
        aux = tuple(b for b in CASCADE if b in wanted and b in present and b not in target)
        matrices = [data.matrix((b,), binary=True) for b in aux] + [data.matrix(target, binary=True)]
        if matrices[-1].nnz == 0:
            raise ValueError(f"dataset {data.name!r} has no {'/'.join(target)} events to learn the target from")
        return cls((*aux, "purchase" if target == ("purchase",) else "+".join(target)), matrices)

    @property
    def n_users(self) -> int:
        return self.matrices[0].shape[0]

    @property
    def n_items(self) -> int:
        return self.matrices[0].shape[1]

    def habits(self) -> np.ndarray:
        """(n_users, B + 1): each user's share of her interactions per behavior, and log(1 + activity)."""
        counts = np.stack([np.diff(m.indptr) for m in self.matrices], 1).astype(np.float64)
        total = counts.sum(1, keepdims=True)
        return np.hstack([counts / np.maximum(total, 1), np.log1p(total)]).astype(np.float32)

    def profiles(self, smoothing: float = 10.0) -> np.ndarray:
        """(n_items, B + 2): each item's share of its interactions per behavior, log(1 + popularity) and its
        smoothed shallow-to-target rate (target users + prior) / (first-behavior users + smoothing)."""
        counts = np.stack([np.diff(m.tocsc().indptr) for m in self.matrices], 1).astype(np.float64)
        total = counts.sum(1, keepdims=True)
        prior = counts[:, -1].sum() / max(counts[:, 0].sum(), 1)
        rate = (counts[:, -1] + smoothing * prior) / (counts[:, 0] + smoothing)
        return np.hstack([counts / np.maximum(total, 1), np.log1p(total), rate[:, None]]).astype(np.float32)

    def adjacency(self, b: int) -> torch.Tensor:
        """The symmetric-normalised (n_users + n_items)^2 bipartite graph D^-1/2 A D^-1/2 of behavior b."""
        m = self.matrices[b].tocoo()
        n_u = self.n_users
        rows = np.concatenate([m.row, m.col + n_u])
        cols = np.concatenate([m.col + n_u, m.row])
        degree = np.bincount(rows, minlength=n_u + self.n_items).astype(np.float64)
        inv = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
        vals = (inv[rows] * inv[cols]).astype(np.float32)
        index = torch.from_numpy(np.vstack([rows, cols]).astype(np.int64))
        return torch.sparse_coo_tensor(index, torch.from_numpy(vals), (n_u + self.n_items,) * 2,
                                       check_invariants=False).coalesce()


class TripletBatches:
    """Per step and per behavior, `batch_size` (user, positive, negative) triplets: edges drawn uniformly from
    that behavior's graph, negatives uniformly from the catalog. An epoch is one pass worth of target edges."""

    def __init__(self, graphs: BehaviorGraphs, batch_size: int, seed: int) -> None:
        self.edges = [(np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices.astype(np.int64))
                      for m in graphs.matrices]
        self.n_items, self.batch_size, self.seed = graphs.n_items, batch_size, seed

    def __len__(self) -> int:
        return max(1, -(-len(self.edges[-1][0]) // self.batch_size))

    def epoch(self, epoch: int):
        rng = np.random.default_rng((self.seed, epoch))
        for _ in range(len(self)):
            batch = []
            for users, items in self.edges:
                pick = rng.integers(0, len(users), self.batch_size)
                neg = rng.integers(0, self.n_items, self.batch_size)
                batch.append(tuple(torch.from_numpy(x) for x in (users[pick], items[pick], neg)))
            yield batch


# ---------------------------------------------------------------------------------------------- networks
class BehaviorNet(ABC, nn.Module):
    """A base network: `reps()` gives every behavior's (users, items) tables, `loss` the multi-task BPR."""

    def __init__(self, n_users: int, n_items: int, n_behaviors: int, d: int, aux_weight: float,
                 reg: float) -> None:
        super().__init__()
        self.n_users, self.n_items, self.n_behaviors, self.d = n_users, n_items, n_behaviors, d
        self.aux_weight, self.reg = aux_weight, reg
        self.user = nn.Embedding(n_users, d)
        self.item = nn.Embedding(n_items, d)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    @abstractmethod
    def reps(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per behavior (cascade order, target last): user table (n_users, d) and item table (n_items, d)."""

    def bpr_terms(self, batch, users: list[torch.Tensor], items: list[torch.Tensor]) -> list[torch.Tensor]:
        """One BPR loss (with its L2 term on the rows used) per behavior, a mean over the global batch in
        data-parallel training (`mean_over_ranks`)."""
        out = []
        for (u, pos, neg), ub, ib in zip(batch, users, items, strict=True):
            eu, ep, en = ub[u], ib[pos], ib[neg]
            margin = (eu * (ep - en)).sum(-1)
            per_row = -F.logsigmoid(margin) + self.reg * (eu.square().sum(-1) + ep.square().sum(-1)
                                                         + en.square().sum(-1))
            out.append(mean_over_ranks(per_row.sum(), len(per_row)))
        return out

    def weights(self) -> list[float]:
        return [self.aux_weight] * (self.n_behaviors - 1) + [1.0]

    def loss(self, batch) -> torch.Tensor:
        users, items = self.reps()
        return sum(w * t for w, t in zip(self.weights(), self.bpr_terms(batch, users, items), strict=True))


class MBMFNet(BehaviorNet):
    """U_b = P * r_b, I_b = Q: shared taste, weighted per behavior dimension by dimension."""

    def __init__(self, graphs: BehaviorGraphs, d: int, aux_weight: float, reg: float) -> None:
        super().__init__(graphs.n_users, graphs.n_items, len(graphs.behaviors), d, aux_weight, reg)
        self.relation = nn.Parameter(torch.ones(self.n_behaviors, d))

    def reps(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return ([self.user.weight * self.relation[b] for b in range(self.n_behaviors)],
                [self.item.weight] * self.n_behaviors)


class MBLightGCNNet(BehaviorNet):
    """LightGCN cascaded over the behavior graphs: E_b = E_(b-1) + mean_(k=1..K) A_b^k E_(b-1)."""

    def __init__(self, graphs: BehaviorGraphs, d: int, aux_weight: float, reg: float, layers: int) -> None:
        super().__init__(graphs.n_users, graphs.n_items, len(graphs.behaviors), d, aux_weight, reg)
        self.layers = layers
        self.graphs = [graphs.adjacency(b) for b in range(self.n_behaviors)]

    def reps(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        e = torch.cat([self.user.weight, self.item.weight])
        users, items = [], []
        for graph in self.graphs:
            layer, acc = e, torch.zeros_like(e)
            for _ in range(self.layers):
                layer = torch.sparse.mm(graph, layer)
                acc = acc + layer
            e = e + acc / self.layers
            users.append(e[:self.n_users])
            items.append(e[self.n_users:])
        return users, items



# ---------------------------------------------------------------------------------------------- estimator
class MultiBehaviorModel(HistoryScorer, Recommender):
    """Base estimator of the behavior-aware models: fit with early stopping on held-out purchases, score with the
    target behavior's tables (or the plug-in's score), explain with the behaviors she showed.

    factors, epochs, batch_size, lr, reg, aux_weight: network size and multi-task BPR (see the module docstring).
    behaviors:  which auxiliary behaviors to use (None: all of the cascade the data has).
    validate:   hold out each purchaser's last purchase (users with at least two) for early stopping on NDCG@10.
    max_validation_users, patience, max_minutes, seed, threads, checkpoint_dir, progress: see TrainConfig.
    """

    name = "multibehavior"
    reason_code = "behaviors"

    def __init__(self, factors: int = 64, epochs: int = 100, batch_size: int = 4096, lr: float = 1e-2,
                 reg: float = 1e-4, aux_weight: float = 1.0, behaviors: tuple[str, ...] | None = None,
                 validate: bool = True, max_validation_users: int | None = 3000, patience: int = 5,
                 max_minutes: float | None = None, seed: int = 0, threads: int = 1,
                 checkpoint_dir: str | None = None, progress: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.reg = reg
        self.aux_weight = aux_weight
        self.behaviors = behaviors
        self.validate = validate
        self.max_validation_users = max_validation_users
        self.patience = patience
        self.max_minutes = max_minutes
        self.seed = seed
        self.threads = threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    # ------------------------------------------------------------------------------------------ fitting
    @abstractmethod
    def build(self, graphs: BehaviorGraphs) -> BehaviorNet:
        """The network over these graphs; each base model returns its own."""

    def prepare(self, data: Dataset, graphs: BehaviorGraphs) -> None:
        """Hook for plug-ins: read what they need from the training data before the network is built."""

    def finish(self, data: Dataset, graphs: BehaviorGraphs, held_out: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Hook for plug-ins: after training, with the held-out (users, purchases) of validation, if any."""

    def fit(self, data: Dataset) -> Self:
        seed_everything(self.seed)
        torch.set_num_threads(max(1, int(self.threads)))
        graphs = BehaviorGraphs.from_dataset(data, self.behaviors)
        validate, train_graphs, held_out = None, graphs, None
        if self.validate:
            train_graphs, users, targets = hold_out_last_target(data, graphs, self.max_validation_users,
                                                                self.seed)
            if len(users):
                validate = self._validator(data, train_graphs, users, targets)
                held_out = (users, targets)
        self.behaviors_ = graphs.behaviors
        self.graphs_, self.last_ = behavior_counts(data, self.behaviors_)   # what she did: reasons and fold-in
        self.prepare(data, train_graphs)
        self.net_ = self.build(train_graphs)
        config = TrainConfig(epochs=self.epochs, max_minutes=self.max_minutes, patience=self.patience, lr=self.lr,
                             seed=self.seed, threads=self.threads, checkpoint_dir=self.checkpoint_dir,
                             progress=self.progress, clip_norm=None)
        batches = TripletBatches(train_graphs, self.batch_size, self.seed)
        self.training_: History = Trainer(self.net_, config).fit(batches, validate)   # the training curve
        self.finish(data, train_graphs, held_out)
        self._freeze()
        self._remember_history(data, data.matrix())
        del self.net_                               # serving reads the numpy tables; the sparse graphs stay out
        return self

    def _freeze(self) -> None:
        """Copy the trained tables out of the network as numpy arrays (what `score` reads)."""
        with torch.no_grad():
            users, items = self.net_.reps()
        self.user_reps_ = np.stack([u.detach().numpy() for u in users]).astype(np.float32)
        self.item_reps_ = np.stack([i.detach().numpy() for i in items]).astype(np.float32)

    def _validator(self, data: Dataset, graphs: BehaviorGraphs, users: np.ndarray, targets: np.ndarray):
        """NDCG@10 of each held-out purchase, ranked through `recommend` with her other purchases excluded."""
        from vendome.evaluate.metrics import per_user_metrics
        from vendome.recommend import recommend

        exclude = graphs.matrices[-1]
        model = self

        class _Live:                        # scores from the network as it trains
            name = model.name

            def score(self, rows: np.ndarray) -> np.ndarray:
                model._freeze()
                return model.score_tables(np.asarray(rows))

        def validate() -> float:
            items, _ = recommend(_Live(), users, k=10, exclude=exclude, batch_size=2048)
            hits = items == targets[:, None]
            return float(per_user_metrics(hits, np.ones(len(users), dtype=np.int64), ks=(10,))["ndcg@10"].mean())

        return validate

    # ------------------------------------------------------------------------------------------ scoring
    def score_tables(self, users: np.ndarray) -> np.ndarray:
        """The purchase score from the frozen tables: U_T[u] . I_T[i]."""
        return self.user_reps_[-1, users] @ self.item_reps_[-1].T

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("user_reps_")
        users = check_users(users, self.n_users_, self.name)
        scores = np.asarray(self.score_tables(users), dtype=np.float32)
        return self._cold_to_popularity(scores, self.history_[users])

    # ------------------------------------------------------------------------------------------ per-user state
    def forget(self, users: np.ndarray) -> Self:
        """Her history, her behavior graphs' rows and her representations go: she is scored as a client with no
        history (popularity) and explained as one."""
        super().forget(users)
        users = self._users_to_forget(users)
        self.user_reps_[:, users] = 0.0
        self.graphs_ = [drop_rows(m, users) for m in self.graphs_]
        self.last_ = [drop_rows(m, users) for m in self.last_]
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Her behavior rows are rebuilt from `data` and her representations solved again from them with every
        item table fixed (`fold_in`): what she did a moment ago changes her next scores without a refit."""
        super().observe(data, users)
        users = self._users_to_forget(users, action="observe")
        counts, last = behavior_counts(events_of(data, users), self.behaviors_)
        for b in range(len(self.behaviors_)):
            self.graphs_[b] = replace_rows(self.graphs_[b], users, counts[b])
            self.last_[b] = replace_rows(self.last_[b], users, last[b])
        self.user_reps_[:, users] = fold_in([m[users] for m in self.graphs_], self.item_reps_, self.reg, users,
                                            seed=self.seed)
        return self

    # ------------------------------------------------------------------------------------------ reasons
    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """What she did with the piece itself ("added it to the cart twice"), else the behavior whose tables favour
        it most for her and the piece of that behavior it is closest to."""
        self._check_fitted("user_reps_")
        items = np.asarray(items, dtype=np.int64)
        if self.history_[user].nnz == 0:
            return [Reason("bestseller", "a best seller, while we learn her taste",
                           {"popularity": float(self.popularity_[i])}) for i in items]
        shares = self.behavior_shares(user, items)                        # (items, behaviors)
        return [self._reason(user, int(i), shares[k]) for k, i in enumerate(items)]

    def behavior_shares(self, user: int, items: np.ndarray) -> np.ndarray:
        """(len(items), B) how much each behavior's tables favour each item for her: the softmax over behaviors of
        U_b[u] . I_b[i] (plug-ins return their gate)."""
        logits = np.einsum("bd,bid->ib", self.user_reps_[:, user], self.item_reps_[:, items])
        logits = logits - logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def _reason(self, user: int, item: int, shares: np.ndarray) -> Reason:
        signals = {f"behavior_{SHORT.get(b, b)}": float(s) for b, s in zip(self.behaviors_, shares, strict=True)}
        pronoun = self.notes_.pronouns[user]
        own = [(b, int(m[user, item]), int(t[user, item]))
               for b, m, t in zip(self.behaviors_, self.graphs_, self.last_, strict=True) if m[user, item]]
        lead = int(np.argmax(shares))
        whose = {"she": "her", "he": "his"}.get(pronoun, "the client's")
        led = f"led by {whose} {SHORT.get(self.behaviors_[lead], self.behaviors_[lead])} ({100 * shares[lead]:.0f}%)"
        if own:                                 # deepest behavior first: "added it to the cart twice (last ...)"
            did = " and ".join(did_it(b, n, t) for b, n, t in reversed(own))
            signals.update({f"count_{SHORT.get(b, b)}": float(n) for b, n, _ in own})
            return Reason("behaviors", f"{pronoun} {did}; {led}", signals)
        m = self.graphs_[lead][user]
        anchor_pool = m.indices if m.nnz else self.history_[user].indices
        y = self.item_reps_[lead]
        sims = y[anchor_pool] @ y[item] / (np.linalg.norm(y[anchor_pool], axis=1) * np.linalg.norm(y[item]) + 1e-12)
        anchor = int(anchor_pool[int(np.argmax(sims))])
        signals["anchor_similarity"] = float(sims.max())
        return Reason("behaviors", f"{led}: close to {self.notes_.phrase(user, anchor)}", signals)


class MBMF(MultiBehaviorModel):
    """Multi-behavior matrix factorization trained with BPR on every behavior (module docstring)."""

    name = "mbmf"

    def build(self, graphs: BehaviorGraphs) -> BehaviorNet:
        return MBMFNet(graphs, self.factors, self.aux_weight, self.reg)


class MBLightGCN(MultiBehaviorModel):
    """LightGCN cascaded over the behavior graphs (module docstring); `layers` propagation steps per behavior."""

    name = "mblightgcn"

    def __init__(self, factors: int = 64, layers: int = 1, epochs: int = 100, batch_size: int = 4096,
                 lr: float = 1e-2, reg: float = 1e-4, aux_weight: float = 1.0,
                 behaviors: tuple[str, ...] | None = None, validate: bool = True,
                 max_validation_users: int | None = 3000, patience: int = 5, max_minutes: float | None = None,
                 seed: int = 0, threads: int = 1, checkpoint_dir: str | None = None, progress: bool = False) -> None:
        super().__init__(**shared_settings(locals()))
        self.layers = layers

    def build(self, graphs: BehaviorGraphs) -> BehaviorNet:
        return MBLightGCNNet(graphs, self.factors, self.aux_weight, self.reg, self.layers)


BASES: dict[str, type[MultiBehaviorModel]] = {"mbmf": MBMF, "mblightgcn": MBLightGCN}


class PluginModel(MultiBehaviorModel):
    """A plug-in wrapped around a base of BASES (`mclmr:<base>`, `lmmrec:<base>`): its registry name and the
    unwrapped base it is compared with. Subclasses set `plugin` and store `base`."""

    plugin = "plugin"
    base: str

    @property
    def name(self) -> str:  # type: ignore[override]
        """The registry name, "<plugin>:<base>": the workspace stores and serves it under this name."""
        return f"{self.plugin}:{self.base}"

    def base_model(self) -> MultiBehaviorModel:
        """The unwrapped base estimator with the same settings (what `<plugin>:<base>` is compared with)."""
        if self.base not in BASES:
            raise ValueError(f"{self.plugin}: unknown base {self.base!r}; valid: {', '.join(BASES)}")
        cls = BASES[self.base]
        own = self.get_params()
        return cls(**{k: own[k] for k in cls._param_names()})


def shared_settings(arguments: dict) -> dict:
    """The MultiBehaviorModel settings among a subclass's __init__ arguments (its `locals()`)."""
    return {k: arguments[k] for k in MultiBehaviorModel._param_names()}


# ---------------------------------------------------------------------------------------------- helpers
VERB_IT = {"view": "viewed it", "click": "clicked on it", "add_to_wishlist": "wishlisted it",
           "add_to_cart": "added it to the cart", "purchase": "bought it"}
TIMES = {1: "", 2: " twice", 3: " three times"}


def did_it(behavior: str, count: int, last: int) -> str:
    """"added it to the cart twice (last on 28 Nov 2026)"."""
    when = pd.Timestamp(last, unit="s").strftime("%-d %b %Y")
    verb = VERB_IT.get(behavior, f"{BEHAVIOR_VERBS.get(behavior, behavior)} it")
    return f"{verb}{TIMES.get(count, f' {count} times')} (last on {when})"


def behavior_counts(data: Dataset, behaviors: tuple[str, ...]) -> tuple[list[sp.csr_matrix], list[sp.csr_matrix]]:
    """Per behavior of `behaviors` (the last one: the data's target behaviors), users x items csr matrices of how
    many times she showed it and the unix second of the last time."""
    inter = data.interactions
    counts, last = [], []
    for k, b in enumerate(behaviors):
        wanted = data.target_behaviors if k == len(behaviors) - 1 else (b,)
        rows = inter[inter["behavior"].isin(wanted)]
        g = rows.groupby(["user", "item"], sort=False)["timestamp"].agg(["size", "max"]).reset_index()
        shape = (data.n_users, data.n_items)
        at = (g["user"].to_numpy(), g["item"].to_numpy())
        counts.append(sp.csr_matrix((g["size"].to_numpy(np.float32), at), shape=shape))
        last.append(sp.csr_matrix((g["max"].to_numpy(np.float64), at), shape=shape))
    return counts, last


def hold_out_last_target(data: Dataset, graphs: BehaviorGraphs, max_users: int | None, seed: int
                         ) -> tuple[BehaviorGraphs, np.ndarray, np.ndarray]:
    """(graphs without the held-out purchases, users, held-out items): each purchaser with at least two purchases
    loses her latest one (ties: the last logged) from the target graph, a subsample of max_users (seeded). Her
    views and carts stay, as the test purchase's do: a client often views a piece before she buys it."""
    target = data.interactions[data.interactions["behavior"].isin(data.target_behaviors)]
    last = target.groupby("user", sort=True).tail(1)
    counts = np.diff(graphs.matrices[-1].indptr)
    last = last[counts[last["user"].to_numpy()] >= 2]
    users, items = last["user"].to_numpy(np.int64), last["item"].to_numpy(np.int64)
    if max_users and len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, items = users[pick], items[pick]
    m = graphs.matrices[-1]
    drop = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=m.shape)
    kept = (m - m.multiply(drop)).tocsr()
    kept.eliminate_zeros()
    return BehaviorGraphs(graphs.behaviors, [*graphs.matrices[:-1], kept]), users, items


def fold_in(rows: list[sp.csr_matrix], item_reps: np.ndarray, reg: float, users: np.ndarray, steps: int = 100,
            negatives: int = 64, seed: int = 0) -> np.ndarray:
    """(B, n, d) per-behavior user representations of the clients `users` (rows[b][r] is user r's edges of
    behavior b), solved with every item table fixed: per behavior, Adam from zero on her BPR loss over her edges,
    with negatives drawn from a generator seeded by (seed, user, behavior), so her answer does not depend on who
    else is folded in with her. No edges of a behavior: zeros, as for a client who never showed it."""
    n_b, n_i, d = item_reps.shape
    out = np.zeros((n_b, len(users), d), dtype=np.float32)
    for b, m in enumerate(rows):
        items = torch.from_numpy(item_reps[b])
        for r, user in enumerate(users):
            pos = m.indices[m.indptr[r]:m.indptr[r + 1]]
            if len(pos) == 0:
                continue
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(user) * 17 + b)
            u = torch.zeros(d, requires_grad=True)
            opt = torch.optim.Adam([u], lr=0.05)
            p = items[torch.from_numpy(pos.astype(np.int64))]
            neg = items[torch.randint(0, n_i, (steps, negatives), generator=gen)]
            for s in range(steps):
                opt.zero_grad()
                margin = (p @ u)[:, None] - (neg[s] @ u)[None, :]
                loss = -F.logsigmoid(margin).mean() + reg * u.square().sum()
                loss.backward()
                opt.step()
            out[b, r] = u.detach().numpy()
    return out
