"""LMMRec (arXiv 2602.05474): motivation-aware recommendation as a plug-in over a behavior-aware base (MODELS.md).

`lmmrec:<base>` wraps a network of multibehavior.py (`mbmf`, `mblightgcn`). Why a client buys (a gift, an
anniversary, "only rose gold", "no diamonds") is read from what she wrote and what was noted about her, and why a
piece sells from its copy and its reviews, by a motivation extractor (`vendome.motivations`: the rule lexicon by
default, a local or served LLM when configured; results cached by content hash):

    (0) profiles: P_u = the motivations of her texts (before the split's cut-off), P_i = those of the piece's
        description and reviews; each profile is a weighted set of (polarity, label) pairs, read as the sentence
        "loves: rose gold, gift; avoids: diamonds" and embedded by the text encoder (MiniLM), x_u in R^384
        (`profile="labels"`: the multi-hot of the pairs instead, no encoder).
    (1) text-motivation encoder   m_u = MLP(x_u)  (two layers, LeakyReLU) into the base's d
    (2) interaction-motivation encoder over K learnable prototypes C (K x d):
            pi(e) = softmax(e C^T / tau_p),   z_u = pi(U_T[u]) C
    (3) motivation coordination (InfoNCE, in-batch negatives, clients and pieces that have a profile):
            L_mcs = InfoNCE(m_u, z_u; tau)
    (4) interaction-text correspondence: a momentum teacher m~ (EMA of (1), 0.995) keeps the text side from
        drifting away from behaviour:  L_itcm = sym-KL( pi(U_T[u]) || pi(m~_u) )
    (5) fusion: the purchase tables read U_T[u] + g_u m_u and I_T[i] + g_i m_i (g learned, starting at 0), so a
        client's notes shape her scores from her first day, not only through the regularisers
    (6) L = multi-task BPR of the base (on the fused purchase tables) + lambda_mcs L_mcs + lambda_itcm L_itcm
    (7) ours, with `intent_days`: stated intent. An associate's note "coming back for a chronograph in rose gold"
        is matched to what each piece is: score += w cos(enc(her notes of the days before), enc("<kind> in
        <material>")), w chosen on the validation purchases (`StatedIntents` says why not learned with (6))

Switches: `fuse`, `lambda_mcs` (0 drops (3)), `lambda_itcm` (0 drops (4)), `profile`, `intent_days`; `noise`
corrupts that share of the extracted motivation pairs (a random label and polarity instead) for the robustness
curve.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from vendome.data.dataset import Dataset
from vendome.models.base import Reason
from vendome.models.multibehavior import BehaviorGraphs, BehaviorNet, PluginModel, shared_settings
from vendome.motivations.taxonomy import LABELS

PAIRS = [("+", x) for x in LABELS] + [("-", x) for x in LABELS]
PAIR_INDEX = {p: k for k, p in enumerate(PAIRS)}
PROFILES = ("text", "labels")


class MotivationProfiles:
    """Per client and per piece: the counted (polarity, label) pairs of their texts, and the profile vectors."""

    def __init__(self, users: list[Counter], items: list[Counter]) -> None:
        self.users, self.items = users, items

    @classmethod
    def extract(cls, data: Dataset, extractor, cache=None, noise: float = 0.0, seed: int = 0,
                progress: bool = False) -> MotivationProfiles:
        from vendome.motivations.extract import extract_all

        texts = data.texts
        descriptions = data.products["description"].fillna("").astype(str) if "description" in data.products \
            else pd.Series([""] * data.n_items)
        items_in = [(f"t{k}", t) for k, t in enumerate(texts["text"].astype(str))] + \
                   [(f"d{k}", t) for k, t in enumerate(descriptions) if t.strip()]
        found = {m.id: (m.positive, m.negative)
                 for m in extract_all(items_in, extractor, cache, progress=progress, total=len(items_in))}
        rng = np.random.default_rng(seed)
        users = [Counter() for _ in range(data.n_users)]
        items = [Counter() for _ in range(data.n_items)]

        def pairs_of(key: str) -> list[tuple[str, str]]:
            pos, neg = found.get(key, ([], []))
            out = [("+", x) for x in pos] + [("-", x) for x in neg]
            if noise > 0:                      # the robustness study: a share of pairs replaced at random
                out = [PAIRS[int(rng.integers(len(PAIRS)))] if rng.random() < noise else p for p in out]
            return out

        for k, (u, i) in enumerate(zip(texts["user"].to_numpy(), texts["item"].to_numpy(), strict=True)):
            got = pairs_of(f"t{k}")
            users[u].update(got)
            if i >= 0 and texts["kind"].iloc[k] == "review":
                items[i].update(p for p in got if p[1] not in ("gift", "special occasion", "value"))
        for k in range(data.n_items):
            items[k].update(pairs_of(f"d{k}"))
        return cls(users, items)

    @staticmethod
    def sentence(counts: Counter) -> str:
        loves = [x for (p, x), _ in counts.most_common() if p == "+"]
        avoids = [x for (p, x), _ in counts.most_common() if p == "-"]
        return "; ".join(part for part in (f"loves: {', '.join(loves)}" if loves else "",
                                           f"avoids: {', '.join(avoids)}" if avoids else "") if part)

    @staticmethod
    def vectors(profiles: list[Counter], kind: str, encoder=None) -> tuple[np.ndarray, np.ndarray]:
        """(n, D) profile vectors and the (n,) mask of rows that have one."""
        has = np.array([len(c) > 0 for c in profiles])
        if kind == "labels":
            x = np.zeros((len(profiles), len(PAIRS)), np.float32)
            for r, counts in enumerate(profiles):
                for pair, n in counts.items():
                    x[r, PAIR_INDEX[pair]] = np.log1p(n)
            return x, has
        sentences = [MotivationProfiles.sentence(c) for c in profiles]
        unique = sorted({s for s, h in zip(sentences, has, strict=True) if h})
        table = encoder.encode(unique) if unique else np.zeros((0, encoder.dim), np.float32)
        row = {s: k for k, s in enumerate(unique)}
        x = np.zeros((len(profiles), table.shape[1] if len(unique) else encoder.dim), np.float32)
        for r, (s, h) in enumerate(zip(sentences, has, strict=True)):
            if h:
                x[r] = table[row[s]]
        return x, has


def notes_before(data: Dataset, users: np.ndarray, times: np.ndarray, days: float, most: int = 3) -> list[str]:
    """For each (client, time): her associates' notes of the `days` before that time, the latest first (what she
    said she was coming back for), "" when there are none."""
    texts = data.texts
    out = [""] * len(users)
    if not len(texts) or days <= 0:
        return out
    notes = texts[texts["kind"] == "note"].sort_values("timestamp", ascending=False)
    by_user = {int(u): (g["timestamp"].to_numpy(np.int64), g["text"].astype(str).to_numpy())
               for u, g in notes.groupby("user", sort=False)}
    span = int(days * 86_400)
    for r, (u, t) in enumerate(zip(users, times, strict=True)):
        stamps, said = by_user.get(int(u), (None, None))
        if stamps is not None:
            keep = (stamps < t) & (stamps >= t - span)
            out[r] = " ".join(said[keep][:most])
    return out


def piece_kinds(data: Dataset) -> list[str]:
    """Per piece, "<subcategory> in <material>": the words a note of intent uses for it."""
    products = data.products
    if "subcategory" not in products or "material" not in products:
        return [""] * data.n_items
    kinds = products["subcategory"].fillna("").astype(str)
    materials = products["material"].fillna("").astype(str)
    return [f"{k} in {m}" if k else "" for k, m in zip(kinds, materials, strict=True)]


class StatedIntents:
    """(7), ours: what she said she is coming back for, matched to what a piece is: w cos(intent_u, kind_i) added
    to her purchase scores, intent_u her associates' notes of the `days` before the moment scored.

    w is chosen on the validation purchases (each client's held-out last one, with her notes of the days before
    it), not learned with the tables: in training, the base already fits the very purchases a note announced, so a
    jointly learned weight stays near zero (0.52 against a score spread of 2.2 on the demo) while the notes point
    at the unseen purchases. Vectors are the text encoder's, unit length (zero where there is no note or no kind).
    """

    def __init__(self, data: Dataset, days: float, encoder, noise: float = 0.0, seed: int = 0) -> None:
        self.days, self.noise, self.seed = days, noise, seed
        end = int(data.interactions["timestamp"].max()) + 1 if len(data.interactions) else 0
        now = notes_before(data, np.arange(data.n_users), np.full(data.n_users, end), days)
        self.now = _unit(encoder, self._corrupt(now, 0))
        self.kinds = _unit(encoder, piece_kinds(data))
        self.weight = 0.0

    def choose_weight(self, data: Dataset, base: np.ndarray, users: np.ndarray, targets: np.ndarray,
                      exclude, encoder, grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)) -> dict:
        """w = s x the spread of the base scores, s from `grid` by NDCG@10 of the held-out purchases."""
        target = data.interactions[data.interactions["behavior"].isin(data.target_behaviors)]
        last = target.groupby("user", sort=True)["timestamp"].max()
        said = _unit(encoder, self._corrupt(notes_before(data, users, last.reindex(users).to_numpy(np.int64),
                                                        self.days), 1))
        base = base.copy()
        base[exclude[users].toarray() > 0] = -np.inf
        spread = float(np.std(base[np.isfinite(base)]))
        cos = said @ self.kinds.T
        found = {s: _ndcg10(base + s * spread * cos, targets) for s in grid}
        best = max(found, key=lambda s: (found[s], -s))
        self.weight = best * spread
        return {"weight": self.weight, "ndcg@10_by_scale": found, "noted": int((np.abs(said).sum(1) > 0).sum())}


    def _corrupt(self, texts: list[str], stream: int) -> list[str]:
        """The robustness study: a `noise` share of the notes replaced by another client's note."""
        pool = [t for t in texts if t]
        if self.noise <= 0 or not pool:
            return texts
        rng = np.random.default_rng((self.seed, stream))
        return [pool[int(rng.integers(len(pool)))] if t and rng.random() < self.noise else t for t in texts]


def _ndcg10(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean NDCG@10 of one held-out item per row."""
    rank = (scores > scores[np.arange(len(targets)), targets][:, None]).sum(1)
    return float(np.mean(np.where(rank < 10, 1.0 / np.log2(rank + 2), 0.0)))


def _unit(encoder, texts: list[str]) -> np.ndarray:
    """Unit-length encodings of the non-empty texts (each distinct text once), zero rows for the empty ones."""
    unique = sorted({t for t in texts if t})
    out = np.zeros((len(texts), encoder.dim), np.float32)
    if unique:
        table = encoder.encode(unique).astype(np.float32)
        table /= np.linalg.norm(table, axis=1, keepdims=True) + 1e-12
        row = {t: k for k, t in enumerate(unique)}
        for r, t in enumerate(texts):
            if t:
                out[r] = table[row[t]]
    return out


def text_encoder_mlp(d_in: int, d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d), nn.LeakyReLU(0.2), nn.Linear(d, d))


class LMMRecNet(nn.Module):
    """The base network plus the motivation encoders (1)-(2), the alignment terms (3)-(4) and the fusion (5)."""

    def __init__(self, base: BehaviorNet, user_x: np.ndarray, user_has: np.ndarray, item_x: np.ndarray,
                 item_has: np.ndarray, prototypes: int, tau_p: float, temperature: float, lambda_mcs: float,
                 lambda_itcm: float, momentum: float, fuse: bool, cl_rows: int) -> None:
        super().__init__()
        self.base, d = base, base.d
        self.register_buffer("user_x", torch.from_numpy(user_x))
        self.register_buffer("item_x", torch.from_numpy(item_x))
        self.register_buffer("user_has", torch.from_numpy(user_has.astype(np.float32)))
        self.register_buffer("item_has", torch.from_numpy(item_has.astype(np.float32)))
        self.encoder = text_encoder_mlp(user_x.shape[1], d)
        self.teacher = copy.deepcopy(self.encoder).requires_grad_(False)
        self.prototypes = nn.Parameter(torch.randn(prototypes, d) * 0.1)
        self.gate_user = nn.Parameter(torch.zeros(1))
        self.gate_item = nn.Parameter(torch.zeros(1))
        self.tau_p, self.temperature, self.momentum = tau_p, temperature, momentum
        self.lambda_mcs, self.lambda_itcm, self.fuse, self.cl_rows = lambda_mcs, lambda_itcm, fuse, cl_rows

    def motivations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(1) m for every client and piece (zero where there is no profile)."""
        return (self.encoder(self.user_x) * self.user_has[:, None],
                self.encoder(self.item_x) * self.item_has[:, None])

    def reps(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The base's tables with the purchase tables fused with the motivations (5)."""
        users, items = self.base.reps()
        if not self.fuse:
            return users, items
        mu, mi = self.motivations()
        return users[:-1] + [users[-1] + self.gate_user * mu], items[:-1] + [items[-1] + self.gate_item * mi]

    def assign(self, e: torch.Tensor) -> torch.Tensor:
        """(2) pi(e), soft assignment to the prototypes."""
        return torch.softmax(F.normalize(e, dim=-1) @ F.normalize(self.prototypes, dim=-1).T / self.tau_p, -1)

    def align(self, e: torch.Tensor, x: torch.Tensor, has: torch.Tensor, rows: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(3) and (4) on these rows (those with a profile, at most cl_rows)."""
        rows = torch.unique(rows)
        rows = rows[has[rows] > 0]
        if len(rows) > self.cl_rows:
            rows = rows[torch.randperm(len(rows))[:self.cl_rows]]
        if len(rows) < 2:
            zero = e.sum() * 0.0
            return zero, zero
        ev = e[rows]
        pi = self.assign(ev)
        z = F.normalize(pi @ self.prototypes, dim=-1)
        m = F.normalize(self.encoder(x[rows]), dim=-1)
        logits = m @ z.T / self.temperature
        labels = torch.arange(len(rows))
        mcs = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        with torch.no_grad():
            teacher = self.assign(self.teacher(x[rows]))
        itcm = 0.5 * (F.kl_div(pi.clamp_min(1e-8).log(), teacher, reduction="batchmean")
                      + F.kl_div(teacher.clamp_min(1e-8).log(), pi, reduction="batchmean"))
        return mcs, itcm

    @torch.no_grad()
    def update_teacher(self) -> None:
        for t, s in zip(self.teacher.parameters(), self.encoder.parameters(), strict=True):
            t.mul_(self.momentum).add_(s.detach(), alpha=1 - self.momentum)

    def loss(self, batch) -> torch.Tensor:
        self.update_teacher()                  # the teacher trails the encoder by one step: the EMA of (4)
        base_users, base_items = self.base.reps()
        users, items = self.reps()
        loss = sum(w * t for w, t in zip(self.base.weights(), self.base.bpr_terms(batch, users, items), strict=True))
        if self.lambda_mcs > 0 or self.lambda_itcm > 0:
            u, pos, _ = batch[-1]
            mcs_u, itcm_u = self.align(base_users[-1], self.user_x, self.user_has, u)
            mcs_i, itcm_i = self.align(base_items[-1], self.item_x, self.item_has, pos)
            loss = loss + self.lambda_mcs * 0.5 * (mcs_u + mcs_i) + self.lambda_itcm * 0.5 * (itcm_u + itcm_i)
        return loss


class LMMRec(PluginModel):
    """Motivation-aware plug-in over a base model (`base`: mbmf or mblightgcn); the module docstring has the formulas.

    extractor:        "rules" (default, deterministic), "local" (embedded GGUF) or "openai" (a served model), with
                      `extractor_model` naming the model; `motivation_cache`: a folder for the content-hash cache.
    profile:          "text" (profile sentences through `text_model`) or "labels" (multi-hot of the pairs).
    intent_days:      (7), ours (`StatedIntents`): what her associates' notes of the `intent_days` before the
                      moment scored say she is coming back for, matched to what each piece is, with a weight chosen
                      on the validation purchases (none without validation); 0 leaves it out.
    prototypes, tau_p, temperature, lambda_mcs, lambda_itcm, momentum, fuse, cl_rows: (1)-(6).
    noise:            share of extracted motivation pairs replaced at random, and with `intent_days` the same
                      share of her notes of intent replaced by another client's (the robustness study).
    The rest are the base's (multibehavior.MultiBehaviorModel).
    """

    plugin = "lmmrec"

    def __init__(self, base: str = "mbmf", extractor: str = "rules", extractor_model: str | None = None,
                 motivation_cache: str | None = None, profile: str = "text", text_model: str = "minilm",
                 intent_days: float = 21.0,
                 prototypes: int = 8, tau_p: float = 0.2, temperature: float = 0.2, lambda_mcs: float = 0.1,
                 lambda_itcm: float = 0.1, momentum: float = 0.995, fuse: bool = True, cl_rows: int = 512,
                 noise: float = 0.0, factors: int = 64, layers: int = 1, epochs: int = 100, batch_size: int = 4096,
                 lr: float = 1e-2, reg: float = 1e-4, aux_weight: float = 1.0, behaviors: tuple[str, ...] | None = None,
                 validate: bool = True, max_validation_users: int | None = 3000, patience: int = 5,
                 max_minutes: float | None = None, seed: int = 0, threads: int = 1, checkpoint_dir: str | None = None,
                 progress: bool = False) -> None:
        super().__init__(**shared_settings(locals()))
        self.base = base
        self.extractor = extractor
        self.extractor_model = extractor_model
        self.motivation_cache = motivation_cache
        self.profile = profile
        self.text_model = text_model
        self.intent_days = intent_days
        self.prototypes = prototypes
        self.tau_p = tau_p
        self.temperature = temperature
        self.lambda_mcs = lambda_mcs
        self.lambda_itcm = lambda_itcm
        self.momentum = momentum
        self.fuse = fuse
        self.cl_rows = cl_rows
        self.noise = noise
        self.layers = layers

    def prepare(self, data: Dataset, graphs: BehaviorGraphs) -> None:
        from vendome.motivations.extract import MotivationCache, make_extractor

        if self.profile not in PROFILES:
            raise ValueError(f"lmmrec: profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"lmmrec: noise is a share of motivations in [0, 1], got {self.noise}")
        extractor = make_extractor(self.extractor, model=self.extractor_model, threads=self.threads)
        cache = MotivationCache(self.motivation_cache) if self.motivation_cache else None
        self.profiles_ = MotivationProfiles.extract(data, extractor, cache, self.noise, self.seed, self.progress)
        encoder = None
        if self.profile == "text":
            from vendome.features.text import make_text_encoder

            encoder = make_text_encoder(self.text_model)
        self.user_x_, self.user_has_ = MotivationProfiles.vectors(self.profiles_.users, self.profile, encoder)
        self.item_x_, self.item_has_ = MotivationProfiles.vectors(self.profiles_.items, self.profile, encoder)
        self.intents_, self._encoder = None, None
        noted = len(data.texts) and (data.texts["kind"] == "note").any()
        if self.intent_days > 0 and self.validate and noted:      # (7) needs notes, and validation for its weight
            from vendome.features.text import make_text_encoder

            self._encoder = encoder or make_text_encoder(self.text_model)
            self.intents_ = StatedIntents(data, self.intent_days, self._encoder, self.noise, self.seed)

    def finish(self, data: Dataset, graphs: BehaviorGraphs, held_out) -> None:
        """(7): the intent weight, on the validation purchases (none without validation: the term stays off)."""
        if self.intents_ is not None and held_out is not None:
            users, targets = held_out
            with torch.no_grad():
                u, i = self.net_.reps()
                base = (u[-1][torch.from_numpy(users)] @ i[-1].T).detach().numpy()
            self.intent_choice_ = self.intents_.choose_weight(data, base, users, targets, graphs.matrices[-1],
                                                              self._encoder)
        self._encoder = None               # not pickled with the model

    def build(self, graphs: BehaviorGraphs) -> nn.Module:
        return LMMRecNet(self.base_model().build(graphs), self.user_x_, self.user_has_, self.item_x_, self.item_has_,
                         self.prototypes, self.tau_p, self.temperature, self.lambda_mcs, self.lambda_itcm,
                         self.momentum, self.fuse, self.cl_rows)

    def _freeze(self) -> None:
        """The frozen tables, plus (7) as extra columns of the purchase tables: w x her notes before the data's
        end, and what each piece is (zeros in the other behaviors' tables)."""
        super()._freeze()
        if self.intents_ is None:
            return
        w = self.intents_.weight
        users = np.zeros((*self.user_reps_.shape[:2], self.intents_.now.shape[1]), np.float32)
        items = np.zeros((*self.item_reps_.shape[:2], self.intents_.kinds.shape[1]), np.float32)
        users[-1], items[-1] = w * self.intents_.now, self.intents_.kinds
        self.user_reps_ = np.concatenate([self.user_reps_, users], axis=-1)
        self.item_reps_ = np.concatenate([self.item_reps_, items], axis=-1)

    def forget(self, users: np.ndarray) -> LMMRec:
        """Her texts' motivations go with the rest of her state."""
        super().forget(users)
        for u in self._users_to_forget(users):
            self.profiles_.users[u] = Counter()
            if getattr(self, "intents_", None) is not None:
                self.intents_.now[u] = 0.0
        return self

    # ------------------------------------------------------------------------------------------ reasons
    def _reason(self, user: int, item: int, shares: np.ndarray) -> Reason:
        reason = super()._reason(user, item, shares)
        mine = {x for (p, x) in self.profiles_.users[user] if p == "+"}
        avoid = {x for (p, x) in self.profiles_.users[user] if p == "-"}
        piece = {x for (p, x) in self.profiles_.items[item] if p == "+"}
        shared = [x for x in LABELS if x in mine and x in piece]
        if not shared:
            return reason
        signals = dict(reason.signals or {})
        signals.update({f"motivation_{x.replace(' ', '_')}": 1.0 for x in shared})
        text = f"{reason.text}; matches what she told us she loves: {', '.join(shared)}"
        if avoid & piece:
            text += f" (though she avoids {', '.join(sorted(avoid & piece))})"
        return Reason("motivations", text, signals)
