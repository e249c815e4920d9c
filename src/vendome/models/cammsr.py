"""CAMMSR: category-guided attentive mixture of experts for multimodal sequential recommendation (ICDE 2026).

SASRec's journey encoder, fed with item tokens that mix what a piece looks like, how it is described, its house
attributes and its interaction history, in proportions a gate chooses per item and per client (MODELS.md):

    (1) e_id = E[i],  e_t = W_t x_t[i],  e_v = W_v x_v[i],  e_a = W_a a[i]       frozen features; a missing one
                                                                                 is 0 plus a learned flag
    (2) h_m  = e_m + MLP_m(e_m)  for m in id, textual, visual, attributes;  h_tv = MLP([e_t ; e_v ; e_t * e_v])
    (3) q    = W_q LN([e_id ; e_t ; e_v ; e_a ; c]) + W_r r,   c = mean of E[i] over the client's earlier steps,
        r = per content view m: |mean x^_m| over her earlier steps and cos(x^_m[i], that mean)  (x^ unit features)
        alpha_m = softmax_m(g cos(q, k_m)),   k_m = W_k LN(h_m),   h = sum_m alpha_m h_m
    (4) L_cat = BCE(W_c q, category path tokens)  (or CE over a single leaf): category steers the gate
    (5) x_k  = h_k + P[n - k] + T[bucket(t_k - t_{k-1})],   s = Transformer_causal(x)   (DyT or LayerNorm)
   (5') with side attention, each block's scores are q k^T + sum_m q_m k_m^T over the side tokens e_m of the steps
        (attributes, text, image; values stay h): DIF-SR's decoupled side-information attention
    (6) L_rec = - sum_k log softmax(score(s_k))[i_{k+1}],   score_j(s) = s . H_j,   H = the catalog's fused tokens
        with c = 0; with the client gate, score_j(s) = s . sum_m alpha_m(u, j) h_m(j) where
        alpha_m(u, j) = softmax_m(catalog gate logit_m(j) + log pi_m(u)),  pi(u) = softmax(W_b [s ; |mean x^_m|])
    (7) L_swap = InfoNCE(s_n, s~_n; tau): s~ encodes the journey with a share of its steps' text or image (the
        attributes on data with neither) read from the nearest neighbour; journeys with the same next item are
        not negatives
    (8) L = L_rec + lambda_cat L_cat + lambda_swap L_swap (+ lambda_route L_route)
    (9) L_route = - sum_k log sum_m pi_m(u_k) softmax(s_k . h_m)[i_{k+1}]   (with the client gate, ours)
   (10) L_next = BCE(W_n s_k, a[i_{k+1}]): her state predicts the next piece's attributes (DIF-SR's auxiliary
        attribute predictor, Xie et al. SIGIR 2022), so brand and category shape the state, not only the tokens

The catalog table H uses the gate without client context (c = 0, r = 0, which is also what the first step of
every journey sees, so training covers it): a full per-client gate would cost n_users x n_items gate evaluations
per ranking. The client gate of (6), ours, adds her own weighting pi(u) of the experts on top of it: the factor
exp(log pi) leaves the softmax a product, so scoring stays two matmuls (`mix_scores`). Without it, a client's
context shapes only how her own journey is read; a client led by the eye then shows in her state s, not in any
gate share (on the demo, clients' gate shares had Spearman 0.02 with their planted visual share).
`explain` reports a candidate's shares for her: alpha(u, j) with the client gate, else its shares in her context.
The client gate is off by default: on the demo (seed 0) it learnt weightings that vary by client (std 0.1-0.2) but
not with her planted visual share (Spearman -0.01), cost the category agreement (0.64 -> -0.55) and 2.5% NDCG@10.
Why: in (6) the experts cooperate (their outputs are summed before the dot product), so next-item cross-entropy
is indifferent to which expert carries a client's taste as long as the sum does. The routing term (9) makes them
compete, as in the original mixtures of experts (Jacobs et al. 1991): each expert alone must predict her next
piece, and the likelihood of a mixture of their softmaxes gives pi(u) the gradient pi_m - r_m, where r_m is the
posterior share of expert m in explaining her choice, so her weighting converges to the experts that explain
her choices best: the look's for a client led by the eye.

The whole catalog's tokens and experts run once per batch (the table the softmax needs anyway); a journey's steps
add a gather and the small expert MLPs. Frozen features are centred and cut to their top `feature_dim` principal
components once, in `build`, where the swap neighbours (cosine on those features, within the category by default)
are found too. The skips in (2), the layer norms in (3) and the bounded gate (g cos instead of the paper's
q . k / sqrt(d), kept as gate_scale=None) are ours: with nanoGPT's std-0.02 init a bare two-layer expert starts
near zero and the bilinear gate at a saddle, and an unbounded gate then saturates to one expert per item.
The coherence signals r in (3) are ours too. The mean ID embedding c says which pieces she liked, not why: a
client led by the eye keeps to one look across different stories, one led by the copy to one story across looks
(on the demo, the log ratio of her history's image and text coherence has Spearman 0.22 with the planted visual
share), and a linear map of concatenated means cannot compute that second-order statistic, so it is given.
Every part has a switch (`synergy`, `experts`, `single_expert`, `gate_context`, `coherence`, `category_guidance`,
`swap`, `norm`, ...), so ablations run from the CLI with `--set key=value`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Self

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from vendome.data.dataset import Dataset
from vendome.models.base import Reason
from vendome.models.content import attribute_matrix
from vendome.models.sasrec import (
    Block,
    JourneyEncoder,
    SASRec,
    SASRecConfig,
    _init,
    weighted_cross_entropy,
)
from vendome.training.distributed import gather_rows, mean_over_ranks
from vendome.training.sequences import pad_left

CONTENT = ("text", "image")                       # frozen encoder features (MiniLM, MobileNetV2)
TOKENS = ("id", *CONTENT, "attributes")           # item tokens, eq. (1)
EXPERTS = ("id", "textual", "visual", "synergy", "attributes")   # gate order
EXPERT_TOKEN = {"id": "id", "textual": "text", "visual": "image", "attributes": "attributes"}  # one-view experts
ATTRIBUTE_COLUMNS = ("category", "subcategory", "brand", "collection", "material", "color", "stone_type",
                     "attributes")
UNKNOWN = {"", "unknown", "nan", "none", "null"}
MATURITY = 16                                     # gate buckets: 0 = new piece, b = 1 + floor(log2(events))
# how a sales associate hears each expert
EXPERT_PHRASES = {"visual": "its look", "textual": "its description", "synergy": "its look and description together",
                  "attributes": "its house attributes", "id": "what clients on a similar path chose next",
                  "single": "her journey"}


@dataclass
class CAMMSRConfig(SASRecConfig):
    """SASRec's network settings plus the mixture of experts, the category head and the swap."""

    experts: tuple[str, ...] = ("id",)      # in gate order; ("single",) for the one-MLP ablation
    synergy_in_single: bool = False         # the single expert also reads e_t * e_v
    gate_context: bool = True
    coherence: bool = False                 # the gate reads how consistent her journey is in each content view
    client_gate: bool = False               # the candidates' shares also follow her own weighting of the experts
    lambda_route: float = 0.0               # weight of the competitive routing term (9); needs client_gate
    lambda_next: float = 0.0                # weight of the next piece's attribute prediction (10)
    side_views: tuple[str, ...] = ()        # tokens that add their own attention scores in the encoder (5')
    gate_scale: float | None = 3.0          # None: the paper's unbounded q . k / sqrt(d)
    norm: str = "layernorm"
    lambda_cat: float = 0.0                 # 0: no category head
    multi_label: bool = False               # BCE over path tokens, else CE over one leaf
    swap_rate: float = 0.0                  # 0: no swap term
    lambda_swap: float = 0.0
    temperature: float = 0.5
    swap_views: tuple[str, ...] = field(default_factory=tuple)
    maturity: bool = False                  # the gate reads how much history a piece has (0 = a new piece)
    id_dropout: float = 0.0                 # share of pieces whose ID is hidden per batch, as if new (DropoutNet)
    new_as_negatives: bool = True           # pieces without a training event stay in the training softmax


# ---------------------------------------------------------------------------------------------- item tokens
class Views(NamedTuple):
    """A set of items seen through the experts: tokens e[m] (..., d), expert outputs h and keys W_k LN(h)
    (..., M, d). None of it depends on the client, so the catalog's is computed once and gathered from."""

    e: dict[str, torch.Tensor]
    h: torch.Tensor
    k: torch.Tensor


class ContentToken(nn.Module):
    """e_m = W_m x_m[i] on frozen features (eq. 1); a product without that content gets a learned flag instead."""

    def __init__(self, x: np.ndarray, missing: np.ndarray, d: int) -> None:
        super().__init__()
        self.register_buffer("x", torch.from_numpy(np.vstack([np.zeros((1, x.shape[1]), np.float32), x])))
        self.register_buffer("missing", torch.from_numpy(np.concatenate([[False], missing])))
        self.proj = nn.Linear(x.shape[1], d, bias=False)
        self.flag = nn.Parameter(torch.zeros(d))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.proj(self.x[idx]) + self.missing[idx].unsqueeze(-1) * self.flag


class AttributeToken(nn.Module):
    """e_a = W_a a[i], a the multi-hot of categorical attributes, kept as padded (value, weight) lists so the
    catalog never becomes a dense n_items x n_values matrix (Amazon: about 1,200 anonymised attribute ids)."""

    def __init__(self, multi_hot: np.ndarray, d: int) -> None:
        super().__init__()
        n, _ = multi_hot.shape
        width = max(1, int((multi_hot > 0).sum(1).max()))
        index = np.zeros((n + 1, width), np.int64)
        weight = np.zeros((n + 1, width), np.float32)
        for row in range(n):
            cols = np.flatnonzero(multi_hot[row])
            index[row + 1, :len(cols)] = cols + 1
            weight[row + 1, :len(cols)] = multi_hot[row, cols]
        self.register_buffer("index", torch.from_numpy(index))
        self.register_buffer("weight", torch.from_numpy(weight))
        self.register_buffer("missing", torch.from_numpy(np.concatenate([[False], multi_hot.sum(1) == 0])))
        self.values = nn.Embedding(multi_hot.shape[1] + 1, d, padding_idx=0)
        self.flag = nn.Parameter(torch.zeros(d))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e = (self.values(self.index[idx]) * self.weight[idx].unsqueeze(-1)).sum(-2)
        return e + self.missing[idx].unsqueeze(-1) * self.flag


class DyT(nn.Module):
    """DyT(x) = gamma * tanh(alpha x) + beta (Zhu et al. 2025): a LayerNorm stand-in without batch statistics."""

    def __init__(self, d: int, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.gamma = nn.Parameter(torch.ones(d))
        self.beta = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * torch.tanh(self.alpha * x) + self.beta


def mlp(d_in: int, d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d))


# ---------------------------------------------------------------------------------------------- network
class SideBlock(Block):
    """SASRec's block where each side stream m adds its own query-key term to the attention scores (eq. 5'),
    q_m k_m^T / sqrt(d_head) from the step's side token, while the values stay the fused tokens': the decoupled
    side-information attention of DIF-SR (Xie et al., SIGIR 2022), so which earlier steps matter can follow brand
    or category without those being mixed into what is carried forward."""

    def __init__(self, d: int, heads: int, dropout: float, norm, side: int) -> None:
        super().__init__(d, heads, dropout, norm)
        self.side_qk = nn.ModuleList([nn.Linear(d, 2 * d) for _ in range(side)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, side: list[torch.Tensor] | None = None) -> torch.Tensor:
        if side:
            b, n, d = x.shape
            bias = sum(qa @ ka.transpose(-1, -2) for qa, ka in (
                w(t).view(b, n, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
                for w, t in zip(self.side_qk, side, strict=True))) / (d // self.heads) ** 0.5
            mask = bias.masked_fill(~mask, float("-inf"))               # SDPA adds a float mask to its scores
        return super().forward(x, mask)


class SideEncoder(JourneyEncoder):
    """JourneyEncoder whose blocks also read side tokens (B, L, d) per side stream, each layer-normalised."""

    def __init__(self, cfg: SASRecConfig, norm, side: int) -> None:
        super().__init__(cfg, norm)
        self.blocks = nn.ModuleList([SideBlock(cfg.hidden, cfg.heads, cfg.dropout, norm, side)
                                     for _ in range(cfg.layers)])
        self.ln_side = nn.ModuleList([norm(cfg.hidden) for _ in range(side)])

    def forward(self, x: torch.Tensor, items: torch.Tensor, gaps: torch.Tensor,
                side: list[torch.Tensor] | None = None) -> torch.Tensor:
        x, mask = self.inputs(x, items, gaps)          # JourneyEncoder's, then the side tokens go to every block
        side = [ln(t) for ln, t in zip(self.ln_side, side, strict=True)] if side else None
        for block in self.blocks:
            x = block(x, mask, side)
        return self.ln_out(x)


class CAMMSRNet(nn.Module):
    """Offers SASRecNet's surface (encode / loss / user_state / item_table), so SASRec's fit and scoring run it.

    content:    modality -> ((n_items, k) centred features, (n_items,) missing mask), for "text" and "image".
    attributes: (n_items, n_values) attribute multi-hot, or None.
    categories: (n_items, n_tokens) multi-hot of category path tokens (multi_label) or (n_items,) leaf ids with -1
                for unknown; None when there is no category head.
    neighbours: view -> (n_items,) nearest neighbour on that view, for the modality swap.
    counts:     (n_items,) training events per product: a product without any is new, its ID token is the shared
                `unseen` vector (its own row was only ever a softmax negative), and with `maturity` the gate reads
                log2 of the count, so it can lean on the look and the copy where the ID knows nothing.
    """

    def __init__(self, cfg: CAMMSRConfig, content: dict[str, tuple[np.ndarray, np.ndarray]],
                 attributes: np.ndarray | None = None, categories: np.ndarray | None = None,
                 neighbours: dict[str, np.ndarray] | None = None, counts: np.ndarray | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.served: torch.Tensor | None = None
        self.hidden_ids: torch.Tensor | None = None    # this batch's pieces shown as new (id_dropout)
        d = cfg.hidden
        counts = np.ones(cfg.n_items, np.int64) if counts is None else np.asarray(counts, np.int64)
        buckets = np.where(counts > 0, 1 + np.floor(np.log2(np.maximum(counts, 1))), 0).clip(0, MATURITY - 1)
        self.register_buffer("bucket", torch.from_numpy(np.concatenate([[0], buckets]).astype(np.int64)))
        self.unseen = nn.Parameter(torch.zeros(d))
        self.maturity = nn.Embedding(MATURITY, d) if cfg.maturity else None
        tokens: dict[str, nn.Module] = {"id": nn.Embedding(cfg.n_items + 1, d, padding_idx=0)}
        for m, (x, missing) in content.items():
            tokens[m] = ContentToken(x, missing, d)
        if attributes is not None:
            tokens["attributes"] = AttributeToken(attributes, d)
        self.tokens = nn.ModuleDict({m: tokens[m] for m in TOKENS if m in tokens})
        n_tok = len(self.tokens)
        # unit frozen features of the content views whose coherence the gate reads (row 0, missing rows: zero)
        self.coherent = tuple(m for m in CONTENT if m in self.tokens) if cfg.coherence and cfg.gate_context else ()
        for m in self.coherent:
            self.register_buffer(f"unit_{m}", F.normalize(self.tokens[m].x, dim=-1))
        self.w_r = nn.Linear(2 * len(self.coherent), d, bias=False) if self.coherent else None
        # her own weighting of the experts, read from her state and her journey's coherence (eq. 6)
        many = len(cfg.experts) > 1
        self.w_b = nn.Linear(d + len(self.coherent), len(cfg.experts)) if cfg.client_gate and many else None
        self.served_mix: tuple[torch.Tensor, torch.Tensor] | None = None
        self.experts = nn.ModuleDict({name: mlp(self._expert_width(name), d) for name in cfg.experts})
        gate_in = (n_tok + cfg.maturity) * d + (d if cfg.gate_context else 0)
        self.ln_q, self.ln_k = nn.LayerNorm(gate_in), nn.LayerNorm(d)
        self.w_q = nn.Linear(gate_in, d)
        self.w_k = nn.Linear(d, d, bias=False)
        self.next_head = None
        if "attributes" in self.tokens and cfg.lambda_next > 0:
            self.next_head = nn.Linear(d, self.tokens["attributes"].values.num_embeddings - 1)
        self.cat_head = None
        if categories is not None and cfg.lambda_cat > 0:
            labels = torch.from_numpy(categories)
            pad = torch.zeros((1, labels.shape[1])) if cfg.multi_label else torch.tensor([-1])
            self.register_buffer("categories", torch.cat([pad.to(labels.dtype), labels]))     # row 0: padding
            self.cat_head = nn.Linear(d, labels.shape[1] if cfg.multi_label else int(labels.max()) + 1)
        for view, nbr in (neighbours or {}).items():   # +1 ids, 0 stays padding
            self.register_buffer(f"nbr_{view}", torch.from_numpy(np.concatenate([[0], nbr + 1]).astype(np.int64)))
        views = getattr(cfg, "side_views", ())
        self.encoder = SideEncoder(cfg, self._norm, len(views)) if views else JourneyEncoder(cfg, self._norm)
        self.apply(_init)
        # the gate keeps PyTorch's default init over normalised inputs: at std 0.02 the bilinear q . k starts at a
        # saddle (logits ~1e-6) and the shares would stay uniform for many epochs
        self.w_q.reset_parameters()
        self.w_k.reset_parameters()
        if self.w_r is not None:
            self.w_r.reset_parameters()
        if self.w_b is not None:              # zero: every client starts with the catalog gate's shares
            nn.init.zeros_(self.w_b.weight)
            nn.init.zeros_(self.w_b.bias)

    def _norm(self, d: int) -> nn.Module:
        return DyT(d) if self.cfg.norm == "dyt" else nn.LayerNorm(d)

    def _expert_width(self, name: str) -> int:
        d = self.cfg.hidden
        if name == "synergy":
            return 3 * d
        if name == "single":
            return (len(self.tokens) + self.cfg.synergy_in_single) * d
        return d

    # ------------------------------------------------------------------------------------ eqs. (1)-(3)
    def views(self, src: dict[str, torch.Tensor]) -> Views:
        """Tokens (1), expert outputs (2) and gate keys of the items `src[m]` (ids + 1) each view m is read from."""
        e = {m: token(src[m]) for m, token in self.tokens.items()}                           # (1)
        new = self.is_new(src["id"])
        e["id"] = torch.where(new.unsqueeze(-1), self.unseen, e["id"])
        if self.maturity is not None:
            e["maturity"] = self.maturity(torch.where(new, 0, self.bucket[src["id"]]))
        h = self.expert_outputs(e)                                                            # (2)
        return Views(e, h, self.keys(h))

    def is_new(self, items: torch.Tensor) -> torch.Tensor:
        """Pieces (ids + 1) the ID cannot speak for: no training event, or hidden this batch (id_dropout)."""
        new = (self.bucket[items] == 0) & (items > 0)
        if self.training and self.hidden_ids is not None:
            new = new | self.hidden_ids[items]
        return new

    def id_token(self, items: torch.Tensor) -> torch.Tensor:
        """E[i], or the shared `unseen` vector for a piece the ID cannot speak for."""
        return torch.where(self.is_new(items).unsqueeze(-1), self.unseen, self.tokens["id"](items))

    def catalog_views(self) -> Views:
        """Views of every product, row 0 = padding: computed once per batch, journeys gather from them. In
        training a share `id_dropout` of the pieces is shown as new for the whole batch (catalog table, journey
        steps and swapped views alike), so the model learns to score a launch from its look and copy."""
        idx = torch.arange(self.cfg.n_items + 1)
        self.hidden_ids = None
        if self.training and self.cfg.id_dropout > 0:
            self.hidden_ids = torch.rand(len(idx)) < self.cfg.id_dropout
            self.hidden_ids[0] = False
        return self.views({m: idx for m in self.tokens})

    def gate(self, v: Views, ctx: torch.Tensor | None, signals: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(3): fused tokens h (..., d), shares alpha (..., M) and the gate's hidden state q (..., d); ctx (..., d)
        is the client context c (None without gate context), signals (..., 2V) her coherence signals r."""
        q = self.query(v.e, ctx, signals)
        alpha = self.shares(q, v.k)
        return (alpha.unsqueeze(-1) * v.h).sum(-2), alpha, q

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """k_m = W_k LN(h_m), unit length for the bounded gate (normalised once per catalog row, not per step)."""
        k = self.w_k(self.ln_k(h))
        return F.normalize(k, dim=-1) if self.cfg.gate_scale else k

    def shares(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """alpha_m = softmax_m(q . k_m / sqrt(d)) (the paper's), or softmax_m(g cos(q, k_m)) with gate_scale g: the
        unbounded form saturates (shares of 1e-20, experts that never get a gradient again), the bounded one keeps
        every expert above e^(-2g) of the leader's share."""
        if self.cfg.gate_scale:                   # k is already unit length
            logits = self.cfg.gate_scale * (k @ F.normalize(q, dim=-1).unsqueeze(-1)).squeeze(-1)
        else:
            logits = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.cfg.hidden)
        return torch.softmax(logits, -1)

    def expert_outputs(self, e: dict[str, torch.Tensor]) -> torch.Tensor:
        """(..., M, d): h_m = e_m + MLP_m(e_m) for a one-view expert (the skip starts each expert as its token, as
        SASRec's embedding, instead of a near-zero output of two std-0.02 layers); h_tv = MLP([e_t; e_v; e_t*e_v])."""
        out = []
        for name, expert in self.experts.items():
            if name == "synergy":                 # the product carries the interaction beyond the sum
                out.append(expert(torch.cat([e["text"], e["image"], e["text"] * e["image"]], -1)))
            elif name == "single":                # ablation: one MLP over every token, no mixture
                extra = [e["text"] * e["image"]] if self.cfg.synergy_in_single else []
                own = [e[m] for m in self.tokens]
                out.append(sum(own) + expert(torch.cat(own + extra, -1)))
            else:
                x = e[EXPERT_TOKEN[name]]
                out.append(x + expert(x))
        return torch.stack(out, -2)

    def query(self, e: dict[str, torch.Tensor], ctx: torch.Tensor | None, signals: torch.Tensor | None = None
              ) -> torch.Tensor:
        """q = W_q LN([e_id ; e_t ; e_v ; e_a ; (maturity) ; c]) + W_r r, the gate's hidden state (r = 0, as for
        a first step, where no signals are given)."""
        parts = [e[m] for m in self.tokens] + ([e["maturity"]] if self.maturity is not None else []) \
            + ([ctx] if self.cfg.gate_context else [])
        q = self.w_q(self.ln_q(torch.cat(parts, -1)))
        return q if signals is None or self.w_r is None else q + self.w_r(signals)

    def signals(self, items: torch.Tensor, src: dict[str, torch.Tensor] | None = None) -> torch.Tensor | None:
        """(B, L, 2V) r of each step: per content view, how consistent her earlier steps are (|mean of their unit
        features|: 1 when they all look, or read, alike) and how close this step is to them (cosine to that mean);
        0 before her first step. Read through `src` where the swap replaced a view. None without coherence."""
        if not self.coherent:
            return None
        real = (items > 0).float().unsqueeze(-1)
        count = (real.cumsum(1) - real).clamp(min=1.0)
        out = []
        for m in self.coherent:
            x = getattr(self, f"unit_{m}")[(src or {}).get(m, items)] * real
            mean = (x.cumsum(1) - x) / count
            r = mean.norm(dim=-1)
            out += [r, (x * mean).sum(-1) / r.clamp(min=1e-6)]
        return torch.stack(out, -1)

    def journey_signals(self, items: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor | None:
        """(U, I, 2V) r of candidates (ids + 1) recommended after each whole journey (U, L)."""
        if not self.coherent:
            return None
        real = (items > 0).float().unsqueeze(-1)
        out = []
        for m in self.coherent:
            unit = getattr(self, f"unit_{m}")
            mean = (unit[items] * real).sum(1) / real.sum(1).clamp(min=1.0)                # (U, k)
            r = mean.norm(dim=-1)
            out += [r[:, None].expand(-1, len(candidates)), (mean @ unit[candidates].T) / r.clamp(min=1e-6)[:, None]]
        return torch.stack(out, -1)

    def context(self, items: torch.Tensor) -> torch.Tensor:
        """c_k = mean of E[i_j] over the real steps j < k (zero before the first): what she did before."""
        real = (items > 0).float()
        e = self.id_token(items) * real.unsqueeze(-1)
        before = e.cumsum(1) - e
        count = (real.cumsum(1) - real).clamp(min=1.0)
        return before / count.unsqueeze(-1)

    def journey_context(self, items: torch.Tensor) -> torch.Tensor:
        """(B, d) c after the whole journey: the context of a candidate recommended next."""
        real = (items > 0).float().unsqueeze(-1)
        return (self.id_token(items) * real).sum(1) / real.sum(1).clamp(min=1)

    def embed(self, items: torch.Tensor, src: dict[str, torch.Tensor] | None = None, catalog: Views | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(h, alpha, q) of a journey's steps, each gated in the context of the steps before it. The steps' views
        are gathered from `catalog` when given (training computes it for the table anyway), read from other
        items where `src` says so (the swap), else computed for the steps alone (serving one client)."""
        if catalog is not None and src is None:
            v = Views({m: x[items] for m, x in catalog.e.items()}, catalog.h[items], catalog.k[items])
        else:
            v = self.views(src or {m: items for m in self.tokens})
        if not self.cfg.gate_context:
            return self.gate(v, None)
        return self.gate(v, self.context(items), self.signals(items, src))

    def catalog(self, views: Views | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(H, alpha) of every product, gated without client context (c = 0)."""
        v = views or self.catalog_views()
        v = Views({m: x[1:] for m, x in v.e.items()}, v.h[1:], v.k[1:])
        ctx = torch.zeros(self.cfg.n_items, self.cfg.hidden) if self.cfg.gate_context else None
        h, alpha, _ = self.gate(v, ctx)
        return h, alpha

    def item_table(self) -> torch.Tensor:
        """H, (n_items, d); the serving copy once `serve` froze it (training always recomputes it)."""
        if self.served is not None and not self.training:
            return self.served
        return self.catalog()[0]

    def mixture(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, G): the catalog gate's shares a (n_items, M) and the experts' outputs weighted by them,
        G = a_m h_m flattened to (n_items, M d); frozen with the table for serving."""
        if self.served_mix is not None and not self.training:
            return self.served_mix
        v = self.catalog_views()
        alpha = self.catalog(v)[1]
        return alpha, (alpha.unsqueeze(-1) * v.h[1:]).flatten(1)

    def serve(self) -> None:
        """Freeze the catalog table for serving: it does not depend on the client, so one request should not pay
        for the whole catalog's experts. Switching back to training drops it."""
        self.eval()
        self.hidden_ids = None
        self.served = self.served_mix = None
        with torch.no_grad():
            self.served = self.catalog()[0]
            if self.client_gating:
                self.served_mix = self.mixture()

    def train(self, mode: bool = True) -> CAMMSRNet:
        if mode:
            self.served = None
            self.served_mix = None
        return super().train(mode)

    # ------------------------------------------------------------------------------------ eq. (6), the client gate
    @property
    def client_gating(self) -> bool:
        return getattr(self, "w_b", None) is not None      # models saved before the client gate have none

    @property
    def state_width(self) -> int:
        return self.cfg.hidden + (len(self.coherent) if self.client_gating else 0)

    def coherence_through(self, items: torch.Tensor) -> torch.Tensor:
        """(B, L, V) |mean unit feature| of each content view over her steps up to and including each step."""
        real = (items > 0).float().unsqueeze(-1)
        count = real.cumsum(1).clamp(min=1.0)
        return torch.stack([((getattr(self, f"unit_{m}")[items] * real).cumsum(1) / count).norm(dim=-1)
                            for m in self.coherent], -1) if self.coherent else torch.zeros((*items.shape, 0))

    def client_shares(self, states: torch.Tensor) -> torch.Tensor:
        """(N, M) pi = softmax(W_b [s ; r]): her own weighting of the experts (uniform at initialisation)."""
        return torch.softmax(self.w_b(states), -1)

    def mix_scores(self, states: torch.Tensor, alpha: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(N, n_items) s . sum_m alpha_m(u, j) h_m(j), with alpha_m(u, j) = a_m(j) pi_m(u) / sum_m' a_m'(j) pi_m'(u)
        = softmax_m(catalog gate logit + log pi_m(u)). Why not a per-client table: it factorises into two matmuls,
        (pi (x) s) . G and pi . a, so a client's own gate costs M times the plain dot product, not a gate per pair."""
        pi = self.client_shares(states)
        s = states[:, :self.cfg.hidden]
        return ((pi.unsqueeze(-1) * s.unsqueeze(1)).flatten(1) @ g.T) / (pi @ alpha.T)

    def rank(self, states: torch.Tensor) -> torch.Tensor:
        if not self.client_gating:
            return states @ self.item_table().T
        return self.mix_scores(states, *self.mixture())

    def client_state(self, items: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """[s ; r] rows the client gate reads, for states (B, L, d) of journeys items (B, L)."""
        return torch.cat([states, self.coherence_through(items)], -1) if self.client_gating else states

    def gate_in_context(self, idx: torch.Tensor, ctx: torch.Tensor, signals: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """(U, I, M) shares of items idx (ids + 1) for U clients with contexts ctx (U, d) and coherence signals
        (U, I, 2V) (`journey_signals`); the experts, which ignore the context, run once."""
        v = self.views({m: idx for m in self.tokens})
        if not self.cfg.gate_context:
            return self.shares(self.query(v.e, None), v.k).expand(len(ctx), -1, -1)
        return torch.stack([self.shares(self.query(v.e, c.expand(len(idx), -1),
                                                   None if signals is None else signals[u]), v.k)
                            for u, c in enumerate(ctx)])

    # ------------------------------------------------------------------------------------ eq. (5)
    def encode(self, items: torch.Tensor, gaps: torch.Tensor, tokens: torch.Tensor | None = None,
               src: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, L) left-padded ids + 1 and time buckets -> (B, L, d) states; `tokens` reuses fused tokens already
        computed, `src` reads some views from other items (the swap)."""
        x = self.embed(items, src)[0] if tokens is None else tokens
        side = self.side_tokens(items, src)
        return self.encoder(x, items, gaps) if side is None else self.encoder(x, items, gaps, side)

    def side_tokens(self, items: torch.Tensor, src: dict[str, torch.Tensor] | None = None
                    ) -> list[torch.Tensor] | None:
        """(B, L, d) token e_m of each step per side view (5'), read through `src` where the swap replaced it."""
        views = getattr(self.cfg, "side_views", ())
        return [self.tokens[m]((src or {}).get(m, items)) for m in views] if views else None

    def user_state(self, items: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """(B, state_width): the journey's last state, and with the client gate her coherence after it."""
        return self.client_state(items, self.encode(items, gaps))[:, -1]

    # ------------------------------------------------------------------------------------ eqs. (4), (6)-(8)
    def losses(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """The active terms: "rec" always, "cat" with a category head, "swap" with the modality swap."""
        items, gaps, targets, weights = batch
        catalog = self.catalog_views()
        h, _, q = self.embed(items, catalog=catalog)
        states = self.encode(items, gaps, tokens=h)
        real = targets > 0
        table, alpha = self.catalog(catalog)
        if self.client_gating:
            g = (alpha.unsqueeze(-1) * catalog.h[1:]).flatten(1)
            logits = self.mix_scores(self.client_state(items, states)[real], alpha, g)
        else:
            logits = states[real] @ table.T
        if not self.cfg.new_as_negatives:   # a piece nobody has met yet is not a "no": left out, it is not learnt
            logits = logits.masked_fill(self.bucket[1:] == 0, float("-inf"))   # as one, through its unique copy
        out = {"rec": weighted_cross_entropy(logits, targets[real] - 1, weights[real])}             # (6)
        if self.routing:
            out["route"] = self.route_loss(self.client_state(items, states)[real], catalog.h[1:],
                                           targets[real] - 1, weights[real])                       # (9)
        if self.cat_head is not None:
            out["cat"] = self.category_loss(q[real], items[real])                                  # (4)
        if getattr(self, "next_head", None) is not None:          # models saved before (10) have none
            out["next"] = self.next_attribute_loss(states[real], targets[real])                    # (10)
        if self.swapping:
            swapped = self.encode(items, gaps, src=self.swap_sources(items))[:, -1]
            out["swap"] = info_nce(states[:, -1], swapped, targets[:, -1], self.cfg.temperature)  # (7)
        return out

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        terms = self.losses(batch)                                                                 # (8)
        loss = terms["rec"]
        if "route" in terms:
            loss = loss + self.cfg.lambda_route * terms["route"]
        if "next" in terms:
            loss = loss + self.cfg.lambda_next * terms["next"]
        if "cat" in terms:
            loss = loss + self.cfg.lambda_cat * terms["cat"]
        if "swap" in terms:
            loss = loss + self.cfg.lambda_swap * terms["swap"]
        return loss

    @property
    def routing(self) -> bool:
        return self.client_gating and self.cfg.lambda_route > 0

    def route_loss(self, states: torch.Tensor, h: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
                   ) -> torch.Tensor:
        """(9) for client states [s ; r] (N, d + V), the catalog's expert outputs h (n_items, M, d) and targets
        (N,): minus the log of her weighting's mixture of each expert's own softmax over the catalog. Its gradient
        on log pi_m is pi_m - r_m (r_m: expert m's posterior share of her choice), so pi follows the experts that
        explain her; the experts each learn to predict alone (experts x catalog logits per step: M softmaxes)."""
        s = states[:, :self.cfg.hidden]
        log_pi = torch.log_softmax(self.w_b(states), -1)                                 # (N, M)
        logits = torch.einsum("nd,jmd->nmj", s, h)                                        # (N, M, n_items)
        if not self.cfg.new_as_negatives:                      # as in (6): no launch is a training negative
            logits = logits.masked_fill(self.bucket[1:] == 0, float("-inf"))
        own = torch.log_softmax(logits, -1).gather(-1, targets[:, None, None].expand(-1, logits.shape[1], 1))
        nll = -torch.logsumexp(log_pi + own.squeeze(-1), -1)
        return mean_over_ranks((nll * weights).sum(), weights.sum())

    def next_attribute_loss(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(10): BCE of W_n s against the attribute multi-hot of the next pieces targets (ids + 1), over the
        global batch; pieces without attributes are skipped."""
        token = self.tokens["attributes"]
        known = ~token.missing[targets]
        labels = torch.zeros(int(known.sum()), token.values.num_embeddings)
        labels.scatter_(1, token.index[targets[known]], (token.weight[targets[known]] > 0).float())
        logits = self.next_head(states[known])
        total = F.binary_cross_entropy_with_logits(logits, labels[:, 1:], reduction="sum")
        return mean_over_ranks(total, logits.numel())

    def category_loss(self, q: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """BCE over the category path tokens, or CE over the leaf; products without a category are skipped. A mean
        over the global batch (`mean_over_ranks`), which a step without a known category leaves at 0."""
        labels = self.categories[items]
        known = labels.sum(-1) > 0 if self.cfg.multi_label else labels >= 0
        logits = self.cat_head(q[known])
        if self.cfg.multi_label:
            total = F.binary_cross_entropy_with_logits(logits, labels[known], reduction="sum")
            return mean_over_ranks(total, logits.numel())
        return mean_over_ranks(F.cross_entropy(logits, labels[known], reduction="sum"), len(logits))

    @property
    def swapping(self) -> bool:
        return self.training and self.cfg.lambda_swap > 0 and self.cfg.swap_rate > 0 and bool(self.cfg.swap_views)

    def swap_sources(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """For a share swap_rate of real steps, one swap view (text or image; attributes on data with neither),
        chosen at random, is read from the item's nearest neighbour; the id and the other views stay its own."""
        src = {m: items for m in self.tokens}
        pick = (items > 0) & (torch.rand(items.shape) < self.cfg.swap_rate)
        view = torch.randint(len(self.cfg.swap_views), items.shape)
        for k, m in enumerate(self.cfg.swap_views):
            src[m] = torch.where(pick & (view == k), getattr(self, f"nbr_{m}")[items], items)
        return src


def info_nce(a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE between a journey's state and its swapped view over in-batch negatives; journeys heading
    to the same next item are masked out, since they are not negatives. In data-parallel training the negatives
    are the whole global batch (`gather_rows`) and the mean is over it."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    (all_a, all_b, all_targets), start = gather_rows(a, b, targets)
    labels = torch.arange(start, start + len(a))
    same = (targets[:, None] == all_targets[None, :]) & (labels[:, None] != torch.arange(len(all_a))[None, :])
    a_to_b = (a @ all_b.T / tau).masked_fill(same, float("-inf"))
    b_to_a = (b @ all_a.T / tau).masked_fill(same, float("-inf"))
    total = F.cross_entropy(a_to_b, labels, reduction="sum") + F.cross_entropy(b_to_a, labels, reduction="sum")
    return mean_over_ranks(0.5 * total, len(a))


# ---------------------------------------------------------------------------------------------- estimator
class CAMMSR(SASRec):
    """Multimodal sequential recommendation with a category-guided mixture of experts over item views.

    modalities:       "auto" (image, text and attributes where the data has them), "none" (ID only), or a comma
                      list / sequence of "image", "text", "attributes".
    attribute_columns: catalog columns forming the attribute view ("A > B" paths and "x, y" lists split; the
                      Amazon `attributes` column splits on spaces); columns with one value are ignored.
    feature_dim:      frozen features are centred and cut to this many principal components (None: keep all).
    synergy:          add the image x text synergy expert.
    experts:          "all" or a comma list of the experts to keep (id, textual, visual, synergy, attributes).
    single_expert:    ablation: one MLP over all tokens instead of the gated mixture.
    gate_context:     the gate query reads the client's earlier steps.
    client_gate:      candidates are scored through her own weighting of the experts too (eq. 6), so a client
                      led by the eye can get the look's expert more weight in what is recommended to her (off:
                      it did not learn that on the demo, see above).
    lambda_route:     weight of the competitive routing term (9) that trains her weighting pi(u) to follow the
                      experts that explain her choices (needs client_gate; 0: off).
    lambda_next:      weight of the auxiliary task (10): her state predicts the next piece's attributes (0: off;
                      needs the attribute view).
    side_attention:   each content and attribute token adds its own query-key term to the encoder's attention
                      scores (5'), the values staying the fused tokens (DIF-SR).
    coherence:        the gate also reads how consistent her earlier steps are in each content view (image, text)
                      and how close the piece is to them there, so it can tell a client led by the eye from one
                      led by the copy (with gate_context).
    gate_scale:       shares are softmax(gate_scale * cos(q, k)), bounded so no expert dies (None: the paper's
                      softmax(q . k / sqrt(d)), which saturates to one expert per item).
    category_guidance, category_columns, lambda_cat: the category head on the gate's hidden state.
    swap, swap_rate, lambda_swap, temperature, swap_within_category: the modality-swap contrastive task.
    norm:             "layernorm" or "dyt" in the journey encoder.
    maturity:         the gate reads how much history each piece has (log2 of its training events, 0 = new).
    id_dropout:       share of pieces shown as new (ID hidden) in each training batch, so launches, which the ID
                      knows nothing of, are scored from their look and copy (DropoutNet, Volkovs et al. 2017).
    new_as_negatives: keep pieces without any training event in the training softmax. Off by default: always a
                      negative and never a positive, a launch already in the catalog is learnt as "never this one"
                      through its own copy and picture (on the demo, launches then ranked 3,036th of 3,204).
    behavior_tokens:  a behavior-type embedding per step, as in SASRec.
    The rest are SASRec's (network size, training budget, validation, seed, threads).
    """

    name = "cammsr"

    def __init__(self, hidden: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.5, max_len: int = 50,
                 time_info: bool = True, modalities: str | Sequence[str] = "auto",
                 attribute_columns: Sequence[str] = ATTRIBUTE_COLUMNS, feature_dim: int | None = 128,
                 synergy: bool = True, experts: str | Sequence[str] = "all", single_expert: bool = False,
                 gate_context: bool = True, coherence: bool = True, client_gate: bool = False,
                 lambda_route: float = 0.0, lambda_next: float = 0.0, side_attention: bool = False,
                 gate_scale: float | None = 3.0, category_guidance: bool = True,
                 category_columns: Sequence[str] = ("category", "subcategory"), lambda_cat: float = 0.5,
                 swap: bool = True, swap_rate: float = 0.25, lambda_swap: float = 0.1, temperature: float = 0.5,
                 swap_within_category: bool = True, norm: str = "layernorm", maturity: bool = True,
                 id_dropout: float = 0.2, new_as_negatives: bool = False, behavior_tokens: bool = False,
                 epochs: int = 200,
                 max_minutes: float | None = None, patience: int = 10, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, validate: bool = True, max_validation_users: int | None = 10000,
                 behaviors: tuple[str, ...] | None = None, browse_weight: float = 1.0, seed: int = 0,
                 threads: int = 1, checkpoint_dir: str | None = None, progress: bool = False) -> None:
        super().__init__(hidden=hidden, layers=layers, heads=heads, dropout=dropout, max_len=max_len,
                         time_info=time_info, behavior_tokens=behavior_tokens, epochs=epochs,
                         max_minutes=max_minutes, patience=patience,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay, validate=validate,
                         max_validation_users=max_validation_users, behaviors=behaviors,
                         browse_weight=browse_weight, seed=seed, threads=threads, checkpoint_dir=checkpoint_dir,
                         progress=progress)
        self.modalities = modalities
        self.attribute_columns = attribute_columns
        self.feature_dim = feature_dim
        self.synergy = synergy
        self.experts = experts
        self.single_expert = single_expert
        self.gate_context = gate_context
        self.coherence = coherence
        self.client_gate = client_gate
        self.lambda_route = lambda_route
        self.lambda_next = lambda_next
        self.side_attention = side_attention
        self.gate_scale = gate_scale
        self.category_guidance = category_guidance
        self.category_columns = category_columns
        self.lambda_cat = lambda_cat
        self.swap = swap
        self.swap_rate = swap_rate
        self.lambda_swap = lambda_swap
        self.temperature = temperature
        self.swap_within_category = swap_within_category
        self.norm = norm
        self.maturity = maturity
        self.id_dropout = id_dropout
        self.new_as_negatives = new_as_negatives

    def fit(self, data: Dataset) -> Self:
        super().fit(data)
        self.net_.serve()
        return self

    # ------------------------------------------------------------------------------------------ building
    def build(self, data: Dataset) -> nn.Module:
        """CAMMSRNet from the data's features, attributes and categories; sets modalities_ and experts_."""
        if self.norm not in ("layernorm", "dyt"):
            raise ValueError(f"{self.name}: norm must be 'layernorm' or 'dyt', got {self.norm!r}")
        if self.lambda_route > 0 and not self.client_gate:
            raise ValueError(f"{self.name}: lambda_route trains the client gate's weighting; set client_gate=True")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"{self.name}: id_dropout is a share of pieces in [0, 1), got {self.id_dropout}")
        views, attributes = self._views(data)
        content = {m: centred_features(data.features(m), data.item_features.get(f"{m}_missing"), self.feature_dim)
                   for m in CONTENT if m in views}
        categories, multi_label, groups = category_labels(data.products, _names(self.category_columns))
        if not (self.category_guidance and self.lambda_cat > 0):
            categories = None
        experts = self._expert_names(views)
        swap_views = ()                           # the text or image view; attributes only when neither exists
        if self.swap and self.lambda_swap > 0 and self.swap_rate > 0:
            swap_views = tuple(m for m in CONTENT if m in views) or tuple(m for m in ("attributes",) if m in views)
        within = groups if self.swap_within_category else None
        neighbours = {m: nearest_neighbours(*content[m], within) for m in swap_views if m in content}
        if "attributes" in swap_views:
            neighbours["attributes"] = nearest_neighbours(attributes, attributes.sum(1) == 0, within)
        cfg = CAMMSRConfig(data.n_items, self.max_len, self.hidden, self.layers, self.heads, self.dropout,
                           self.time_info, self.behavior_tokens, experts=experts,
                           synergy_in_single=self.synergy and all(m in views for m in CONTENT),
                           gate_context=self.gate_context, coherence=self.coherence, gate_scale=self.gate_scale,
                           client_gate=self.client_gate, lambda_route=self.lambda_route,
                           lambda_next=self.lambda_next if attributes is not None else 0.0,
                           side_views=tuple(m for m in (*CONTENT, "attributes") if m in views)
                           if self.side_attention else (),
                           norm=self.norm,
                           lambda_cat=self.lambda_cat if categories is not None else 0.0, multi_label=multi_label,
                           swap_rate=self.swap_rate, lambda_swap=self.lambda_swap, temperature=self.temperature,
                           swap_views=swap_views, maturity=self.maturity,
                           id_dropout=self.id_dropout if views else 0.0,   # ID only: nothing else to read
                           new_as_negatives=self.new_as_negatives)
        self.modalities_, self.experts_ = ("id", *views), experts
        counts = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items)
        return CAMMSRNet(cfg, content, attributes, categories, neighbours, counts)

    def _views(self, data: Dataset) -> tuple[tuple[str, ...], np.ndarray | None]:
        """The content views to use, and the attribute multi-hot when attributes are one of them."""
        auto = self.modalities == "auto"
        wanted = ("text", "image", "attributes") if auto else _names(self.modalities, none_word="none")
        unknown = sorted(set(wanted) - {"id", "text", "image", "attributes"})
        if unknown:
            raise ValueError(f"{self.name}: unknown modalities {', '.join(unknown)}; valid: image, text, attributes")
        views, attributes = [], None
        for m in CONTENT:
            if m in wanted and (not auto or m in data.item_features):
                data.features(m)  # raises, saying how to compute them, when asked for and absent
                views.append(m)
        if "attributes" in wanted:
            try:
                attributes = attribute_matrix(_attribute_frame(data.products), _names(self.attribute_columns))
                views.append("attributes")
            except ValueError:
                if not auto:
                    raise
        return tuple(views), attributes

    def _expert_names(self, views: tuple[str, ...]) -> tuple[str, ...]:
        if self.single_expert:
            return ("single",)
        both = "text" in views and "image" in views
        have = [e for e in EXPERTS if e == "id" or (e == "synergy" and self.synergy and both)
                or EXPERT_TOKEN.get(e) in views]
        if self.experts == "all":
            return tuple(have)
        if not isinstance(self.experts, str | Sequence):
            raise ValueError(f"{self.name}: experts is 'all' or a comma list of names ({', '.join(have)}), "
                             f"not {self.experts!r}: the experts are the item's views, not a count")
        keep = _names(self.experts)
        missing = sorted(set(keep) - set(have))
        if missing or not keep:
            raise ValueError(f"{self.name}: experts {', '.join(missing) or '(none)'} not available on this data; "
                             f"available: {', '.join(have)}")
        return tuple(e for e in have if e in keep)

    # ------------------------------------------------------------------------------------------ gate and reasons
    def gate_weights(self, users: np.ndarray | None = None, items: np.ndarray | None = None) -> pd.DataFrame:
        """Expert shares alpha, one column per expert, to hold against the generator's hidden truth.

        users None:         one row per item (default: the whole catalog), the catalog gate (no client context);
                            group by category to compare with the category's visual share.
        users, items None:  one row per client, her journey's steps as the encoder fused them, averaged (each step
                            gated in the context of the steps before it); clients without a journey get NaN.
        users and items:    one row per (client, item), the item's shares for her after her journey: alpha(u, j)
                            of the client gate, which scores it, else the gate's in her context.
        Her own weighting of the experts (the client gate's pi) is `client_weights`.
        """
        self._check_fitted("sequences_")
        net, names = self.net_, list(self.experts_)
        net.eval()
        with torch.no_grad():
            if users is None:
                items = np.arange(self.net_.cfg.n_items) if items is None else np.asarray(items, dtype=np.int64)
                alpha = net.catalog()[1].numpy()[items]
                return pd.DataFrame({"item": items, **dict(zip(names, alpha.T, strict=True))})
            users = np.asarray(users, dtype=np.int64)
            if items is None:
                out = np.full((len(users), len(names)), np.nan, dtype=np.float32)
                for start in range(0, len(users), 256):
                    rows = users[start:start + 256]
                    seq, _ = pad_left(self.sequences_, rows, self.max_len)
                    alpha = net.embed(seq)[1]
                    real = (seq > 0).unsqueeze(-1)
                    mean = (alpha * real).sum(1) / real.sum(1).clamp(min=1)
                    has = (seq > 0).any(1).numpy()
                    out[start:start + 256][has] = mean.numpy()[has]
                return pd.DataFrame({"user": users, **dict(zip(names, out.T, strict=True))})
            items = np.asarray(items, dtype=np.int64)
            alpha = self._shares_in_context(users, items)
            return pd.DataFrame({"user": np.repeat(users, len(items)), "item": np.tile(items, len(users)),
                                 **dict(zip(names, alpha.reshape(-1, len(names)).T, strict=True))})

    def client_weights(self, users: np.ndarray) -> pd.DataFrame:
        """Her own weighting pi(u) of the experts after her journey (the client gate), one row per client; uniform
        for a client without a journey. Requires client_gate."""
        self._check_fitted("sequences_")
        if not self.net_.client_gating:
            raise ValueError(f"{self.name}: fitted without client_gate; see gate_weights(users=...)")
        users = np.asarray(users, dtype=np.int64)
        self.net_.eval()
        with torch.no_grad():
            pi = self.net_.client_shares(torch.from_numpy(self.user_states(users))).numpy()
        return pd.DataFrame({"user": users, **dict(zip(self.experts_, pi.T, strict=True))})

    def _shares_in_context(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(len(users), len(items), n_experts) gate shares of the items for each client after her journey: those
        that score them with the client gate (alpha(u, j)), else the gate's in her context."""
        self.net_.eval()
        if self.net_.client_gating:
            with torch.no_grad():
                pi = self.net_.client_shares(torch.from_numpy(self.user_states(users)))     # (U, M)
                a = self.net_.mixture()[0][torch.from_numpy(items)]                           # (I, M)
                mix = pi.unsqueeze(1) * a.unsqueeze(0)
                return (mix / mix.sum(-1, keepdim=True)).numpy()
        out = np.zeros((len(users), len(items), len(self.experts_)), dtype=np.float32)
        chunk = max(1, 100_000 // max(len(items), 1))                  # bounds the (users, items, d) queries
        with torch.no_grad():
            for start in range(0, len(users), chunk):
                seq, _ = pad_left(self.sequences_, users[start:start + chunk], self.max_len)
                idx = torch.from_numpy(items + 1)
                ctx, signals = self.net_.journey_context(seq), self.net_.journey_signals(seq, idx)
                out[start:start + chunk] = self.net_.gate_in_context(idx, ctx, signals).numpy()
        return out

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """Which expert carried each piece for her (its gate shares in her context) and the step of her journey
        it is closest to, e.g. "mostly its look (visual 54%), close to the Serpent ring she wishlisted"."""
        self._check_fitted("sequences_")
        items = np.asarray(items, dtype=np.int64)
        names = list(self.experts_)
        shares = self._shares_in_context(np.array([user]), items)[0]                   # (items, experts)
        seq = self.sequences_.items[user][-self.max_len:]
        with torch.no_grad():
            table = F.normalize(self.net_.item_table(), dim=1).numpy()
        reasons = []
        for k, i in enumerate(items):
            signals = {f"gate_{n}": float(s) for n, s in zip(names, shares[k], strict=True)}
            top = int(np.argmax(shares[k]))
            lead = "mostly" if shares[k, top] >= 0.5 else "led by"
            mix = f"{lead} {EXPERT_PHRASES[names[top]]} ({names[top]} {100 * shares[k, top]:.0f}%)"
            if int(self.net_.bucket[i + 1]) == 0:          # no training event: the ID knows nothing of it
                mix = f"a new piece, read from {EXPERT_PHRASES[names[top]]} ({names[top]} {100 * shares[k, top]:.0f}%)"
                signals["new_piece"] = 1.0
            if len(seq) == 0:
                signals["popularity"] = float(self.popularity_[i])
                text = "a best seller, while we learn her taste" + (f"; {mix}" if len(names) > 1 else "")
                reasons.append(Reason("bestseller", text, signals))
                continue
            sims = table[seq] @ table[i]
            best = int(np.argmax(sims * 0.5 ** (np.arange(len(seq))[::-1] / 5.0)))   # the last steps weigh most
            steps_ago = len(seq) - 1 - best
            when = {0: "her latest step", 1: "the step before her latest"}.get(steps_ago, f"{steps_ago} steps back")
            anchor = f"close to {self.notes_.phrase(user, int(seq[best]))} ({when})"
            signals.update(anchor_similarity=float(sims[best]), steps_ago=float(steps_ago))
            text = f"{mix}, {anchor}" if len(names) > 1 else anchor
            reasons.append(Reason("expert_mix", text, signals))
        return reasons


# ---------------------------------------------------------------------------------------------- precomputation
def centred_features(x: np.ndarray, missing: np.ndarray | None, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(features, missing): centred on the catalog mean (encoders put every product in one narrow cone, see
    content.py), cut to the top `dim` principal components, scaled to mean row norm 1; missing rows are zero."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    missing = np.zeros(len(x), bool) if missing is None else np.asarray(missing, bool).copy()
    missing |= np.linalg.norm(x, axis=1) == 0
    present = ~missing
    x = np.where(present[:, None], x - (x[present].mean(0) if present.any() else 0.0), 0.0).astype(np.float32)
    if dim and x.shape[1] > dim and present.sum() > 1:
        t = torch.from_numpy(x[present])
        _, vectors = torch.linalg.eigh((t.T @ t).double())   # ascending eigenvalues; torch keeps to its threads
        x = x @ vectors[:, -dim:].flip(1).float().numpy()
    scale = np.linalg.norm(x[present], axis=1).mean() if present.any() else 1.0
    return (x / max(float(scale), 1e-12)).astype(np.float32), missing


def nearest_neighbours(x: np.ndarray, missing: np.ndarray, groups: np.ndarray | None = None,
                       block: int = 1024) -> np.ndarray:
    """(n,) the most cosine-similar other product with this view (within its group when `groups` is given and the
    group has another such product); a product without the view is its own neighbour (its swap is a no-op)."""
    n = len(x)
    codes = pd.factorize(groups)[0] if groups is not None else None
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x, dtype=np.float32), where=norms > 0).astype(np.float32)
    out = np.arange(n)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        sims = unit[rows] @ unit.T
        sims[:, missing] = -np.inf
        sims[np.arange(len(rows)), rows] = -np.inf
        best = np.argmax(sims, axis=1)
        if codes is not None:
            inside = np.where(codes[rows][:, None] == codes[None, :], sims, -np.inf)
            alone = np.isneginf(inside.max(axis=1))
            best = np.where(alone, best, np.argmax(inside, axis=1))
        found = np.isfinite(sims[np.arange(len(rows)), best]) & ~missing[rows]
        out[rows[found]] = best[found]
    return out


def category_labels(products: pd.DataFrame, columns: Sequence[str]
                    ) -> tuple[np.ndarray | None, bool, np.ndarray | None]:
    """(labels, multi_label, groups) for the category head.

    Each column gives its path prefixes as tokens ("Clothing", "Clothing > Dresses"); "unknown" gives none, and a
    column with one value says nothing. When every product has at most one token, labels are leaf ids (-1 for
    unknown, cross-entropy); otherwise a multi-hot over the tokens (BCE). `groups` is each product's full label,
    the "same category" of the swap neighbours. None when no column has two values.
    """
    per_item: list[list[str]] = [[] for _ in range(len(products))]
    for col in columns:
        if col not in products:
            continue
        values = products[col].fillna("").astype(str).str.strip()
        if values[~values.str.lower().isin(UNKNOWN)].nunique() < 2:
            continue
        for row, value in enumerate(values):
            if value.lower() in UNKNOWN:
                continue
            parts = [p.strip().lower() for p in value.split(">") if p.strip()]
            per_item[row] += [f"{col}:{' > '.join(parts[:k + 1])}" for k in range(len(parts))]
    vocab = {t: j for j, t in enumerate(sorted({t for tokens in per_item for t in tokens}))}
    if len(vocab) < 2:
        return None, False, None
    groups = np.array(["|".join(tokens) for tokens in per_item], dtype=object)
    if max(len(tokens) for tokens in per_item) == 1:
        return np.array([vocab[t[0]] if t else -1 for t in per_item], dtype=np.int64), False, groups
    labels = np.zeros((len(products), len(vocab)), dtype=np.float32)
    for row, tokens in enumerate(per_item):
        labels[row, [vocab[t] for t in tokens]] = 1.0
    return labels, True, groups


def _attribute_frame(products: pd.DataFrame) -> pd.DataFrame:
    """The catalog with Amazon's space-separated `attributes` ids as a list attribute_matrix splits."""
    if "attributes" not in products:
        return products
    frame = products.copy()
    frame["attributes"] = frame["attributes"].fillna("").astype(str).str.split().str.join(",")
    return frame


def _names(value: str | Sequence[str], none_word: str | None = None) -> tuple[str, ...]:
    """A comma list (CLI) or a sequence (Python) as a tuple of names."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    return tuple(n for n in names if n and n != none_word)
