"""MCLMR (WWW 2026): causal multi-behavior learning as a plug-in over a behavior-aware base model (MODELS.md).

`mclmr:<base>` wraps any network of multibehavior.py (`mbmf`, `mblightgcn`): the base keeps its per-behavior tables
U_b, I_b and its auxiliary BPR terms; the plug-in replaces the purchase score and adds a contrastive term.

Causal graph. A client's habits C_u (her mix of views, carts, wishlists, purchases, and how active she is) and a
piece's behavior profile C_i (viewed often but rarely bought, its popularity) confound preference and purchase:
    C_u -> U, C_u -> Y;  C_i -> I, C_i -> Y;  U -> A -> Y;  I -> A -> Y      (A: auxiliary behaviors, Y: purchase)
Confounder values come from the training data only (`BehaviorGraphs.habits` / `profiles`) and are grouped into
strata by k-means: k = c_u in 1..K_u, l = c_i in 1..K_i, with priors P(k), P(l) = the strata's shares.

    (1) MoE aggregation: s(u, i) = sum_b alpha_b(u, i) [ (U_b[u] W_b) . I_b[i] + beta_b e_b(u, i) ]
            alpha(u, i) = softmax_b( (U_T[u] A_b) . I_T[i] / sqrt(d) + c_b + gamma_b e_b(u, i) )
        every behavior is an expert that scores the pair with its own tables (would she view it, cart it, buy
        it), plus the direct evidence e_b(u, i) = 1 when she already showed auxiliary behavior b on this very
        piece (0 for the target: that edge is the label). The gate reads the (client, piece) pair and that
        evidence, so auxiliary information is routed into the purchase score where it helps. W_b = identity,
        beta = gamma = 0 and c_T = gate_bias at the start: the MoE begins close to the base's purchase score.
    (2) conditional score, trained with the observed strata k = c_u, l = c_i:
            y(u, i, k, l) = s(u, i) + (U_T[u] + t_k) . t'_l + t_k . I_T[i]
                          = s(u, i) + (U_T[u] + t_k) . (I_T[i] + t'_l) - U_T[u] . I_T[i]
        t_k, t'_l learned stratum embeddings: what a habit stratum does to any purchase, what an item stratum's
        exposure does to it.
    (3) backdoor adjustment at inference, P(Y | do(U, I)) = sum_k sum_l P(k) P(l) y(u, i, k, l). y is linear in
        t_k and in t'_l separately and the priors factorise, so the double sum is exact in O(1) per pair:
            y_do(u, i) = s(u, i) + (U_T[u] + t_bar) . t'_bar + t_bar . I_T[i],
            t_bar = sum_k P(k) t_k,  t'_bar = sum_l P(l) t'_l
        The client's own stratum and the piece's stratum no longer shift the score: only preference does.
        `adjustment="observed"` conditions on the observed strata instead (the ablation), "none" drops (2).
    (4) bias-aware contrastive loss: InfoNCE aligning each client's purchase representation with her other
        behaviors' (and each piece's likewise), over in-batch negatives; a negative in the anchor's own stratum is
        down-weighted by `same_stratum_weight` (its log added to the logit), since it may look alike only through
        a shared habit or popularity, not taste:
            L_cl = - log exp(z_aa/tau) / (exp(z_aa/tau) + sum_(n != a) w_an exp(z_an/tau)),  w_an = beta if
            stratum(n) = stratum(a) else 1
    (5) L = sum_(b aux) w_b BPR_b(base) + BPR(y(u, i+, c_u, c_i+) - y(u, i-, c_u, c_i-)) + lambda_cl L_cl

Switches: `moe`, `evidence`, `adjustment` ("backdoor" | "observed" | "none"), `contrastive` (lambda_cl = 0 drops it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vendome.data.dataset import Dataset
from vendome.models.base import Reason
from vendome.models.multibehavior import (
    SHORT,
    BehaviorGraphs,
    BehaviorNet,
    PluginModel,
    shared_settings,
)

ADJUSTMENTS = ("backdoor", "observed", "none")


# ---------------------------------------------------------------------------------------------- confounders
class Strata:
    """Confounder strata: k-means over standardised habits (users) and profiles (items), with their priors."""

    def __init__(self, graphs: BehaviorGraphs, k_users: int, k_items: int, seed: int) -> None:
        self.users, self.user_prior, self.user_centres = _kmeans(graphs.habits(), k_users, seed)
        self.items, self.item_prior, self.item_centres = _kmeans(graphs.profiles(), k_items, seed)


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, prior P(stratum), centres in the original units) of k-means on the z-scored rows."""
    from sklearn.cluster import KMeans

    mean, std = x.mean(0), x.std(0) + 1e-6
    k = max(1, min(k, len(np.unique(x, axis=0))))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit((x - mean) / std)
    labels = km.labels_.astype(np.int64)
    prior = np.bincount(labels, minlength=k).astype(np.float32) / len(labels)
    return labels, prior, (km.cluster_centers_ * std + mean).astype(np.float32)


def _keys(m, n_items: int) -> np.ndarray:
    """user * n_items + item of every stored entry of a users x items csr matrix."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_items + m.indices


# ---------------------------------------------------------------------------------------------- network
class MCLMRNet(nn.Module):
    """The base network plus the behavior gate (1), the stratum embeddings (2) and the contrastive term (4)."""

    def __init__(self, base: BehaviorNet, strata: Strata, moe: bool, adjustment: str, lambda_cl: float,
                 temperature: float, same_stratum_weight: float, gate_bias: float, cl_rows: int,
                 evidence: list | None = None) -> None:
        super().__init__()
        self.cl_rows = cl_rows
        # her own auxiliary edges with the piece, as sorted keys user * n_items + item per auxiliary behavior
        self.evidence = [torch.from_numpy(keys) for keys in evidence] if evidence is not None else None
        self.base, self.moe, self.adjustment = base, moe, adjustment
        self.lambda_cl, self.temperature, self.log_beta = lambda_cl, temperature, math.log(same_stratum_weight)
        n_b, d = base.n_behaviors, base.d
        self.w = nn.Parameter(torch.eye(d).repeat(n_b, 1, 1))                     # W_b
        self.a = nn.Parameter(torch.zeros(n_b, d, d))                              # A_b
        self.c = nn.Parameter(torch.zeros(n_b))                                    # c_b
        self.beta = nn.Parameter(torch.zeros(n_b))                                 # beta_b, evidence in expert b
        self.gamma = nn.Parameter(torch.zeros(n_b))                                # gamma_b, evidence in the gate
        with torch.no_grad():
            self.c[-1] = gate_bias
        self.register_buffer("user_strata", torch.from_numpy(strata.users))
        self.register_buffer("item_strata", torch.from_numpy(strata.items))
        self.register_buffer("user_prior", torch.from_numpy(strata.user_prior))
        self.register_buffer("item_prior", torch.from_numpy(strata.item_prior))
        self.t_user = nn.Parameter(torch.zeros(len(strata.user_prior), d))        # t_k
        self.t_item = nn.Parameter(torch.zeros(len(strata.item_prior), d))        # t'_l

    # ------------------------------------------------------------------------------------ (1)
    def gate(self, ut: torch.Tensor, it: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """(n, B) alpha for paired rows ut, it (n, d) and their evidence e (n, B)."""
        logits = torch.einsum("nd,bde,ne->nb", ut, self.a, it) / math.sqrt(ut.shape[-1]) + self.c + self.gamma * e
        return torch.softmax(logits, -1)

    def edges(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """(n, B) e_b(u, i) = 1 where she showed auxiliary behavior b on the piece (0 for the target behavior,
        whose own edge is the label)."""
        out = torch.zeros(len(u), self.base.n_behaviors)
        if self.evidence is None:
            return out
        key = u * self.base.n_items + i
        for b, keys in enumerate(self.evidence):
            pos = torch.searchsorted(keys, key).clamp(max=max(len(keys) - 1, 0))
            out[:, b] = (keys[pos] == key).float() if len(keys) else 0.0
        return out

    def mixture(self, users: list[torch.Tensor], items: list[torch.Tensor], u: torch.Tensor,
                i: torch.Tensor) -> torch.Tensor:
        """(n,) s(u, i) for paired indices."""
        ut, it = users[-1][u], items[-1][i]
        if not self.moe:
            return (ut * it).sum(-1)
        e = self.edges(u, i)
        experts = torch.stack([(users[b][u] @ self.w[b] * items[b][i]).sum(-1) for b in range(len(users))], -1)
        return (self.gate(ut, it, e) * (experts + self.beta * e)).sum(-1)

    # ------------------------------------------------------------------------------------ (2)
    def conditional(self, users: list[torch.Tensor], items: list[torch.Tensor], u: torch.Tensor,
                    i: torch.Tensor) -> torch.Tensor:
        """(n,) y(u, i, c_u, c_i) with the observed strata, as trained."""
        s = self.mixture(users, items, u, i)
        if self.adjustment == "none":
            return s
        tk, tl = self.t_user[self.user_strata[u]], self.t_item[self.item_strata[i]]
        return s + ((users[-1][u] + tk) * tl).sum(-1) + (tk * items[-1][i]).sum(-1)

    # ------------------------------------------------------------------------------------ (4)
    def contrastive(self, reps: list[torch.Tensor], rows: torch.Tensor, strata: torch.Tensor) -> torch.Tensor:
        """Bias-aware InfoNCE between the target table and each auxiliary table on these rows."""
        rows = torch.unique(rows)
        if len(rows) > self.cl_rows:             # the cost is quadratic in the rows: a random subset suffices
            rows = rows[torch.randperm(len(rows))[:self.cl_rows]]
        anchor = F.normalize(reps[-1][rows], dim=-1)
        same = strata[rows][:, None] == strata[rows][None, :]
        same.fill_diagonal_(False)
        bias = same.float() * self.log_beta
        labels = torch.arange(len(rows))
        terms = []
        for b in range(len(reps) - 1):
            logits = anchor @ F.normalize(reps[b][rows], dim=-1).T / self.temperature + bias
            terms.append(0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)))
        return torch.stack(terms).mean() if terms else anchor.sum() * 0.0

    # ------------------------------------------------------------------------------------ (5)
    def loss(self, batch) -> torch.Tensor:
        users, items = self.base.reps()
        terms = self.base.bpr_terms(batch[:-1], users[:-1], items[:-1])
        loss = sum(w * t for w, t in zip(self.base.weights()[:-1], terms, strict=True)) if terms else 0.0
        u, pos, neg = batch[-1]
        margin = self.conditional(users, items, u, pos) - self.conditional(users, items, u, neg)
        eu, ep, en = users[-1][u], items[-1][pos], items[-1][neg]
        reg = (eu.square().sum(-1) + ep.square().sum(-1) + en.square().sum(-1)).mean()
        loss = loss - F.logsigmoid(margin).mean() + self.base.reg * reg
        if self.lambda_cl > 0 and len(users) > 1:
            loss = loss + self.lambda_cl * 0.5 * (self.contrastive(users, u, self.user_strata)
                                                  + self.contrastive(items, pos, self.item_strata))
        return loss

    def reps(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.base.reps()


# ---------------------------------------------------------------------------------------------- estimator
class MCLMR(PluginModel):
    """Causal multi-behavior plug-in over a base model (`base`: mbmf or mblightgcn); the module docstring has the
    formulas.

    k_users, k_items:     confounder strata (k-means on habits and profiles).
    moe, gate_bias:       the behavior mixture (1), and the target expert's starting gate logit.
    evidence:             her own auxiliary edges with the piece enter the experts and the gate (1).
    adjustment:           "backdoor" (3), "observed" (condition on her and the piece's strata), "none" (no (2)).
    lambda_cl, temperature, same_stratum_weight, cl_rows: the bias-aware contrastive term (4), over at most
                          cl_rows distinct clients (and pieces) of each batch.
    layers:               propagation steps per behavior of the mblightgcn base (ignored by mbmf).
    The rest are the base's (multibehavior.MultiBehaviorModel).
    """

    plugin = "mclmr"

    def __init__(self, base: str = "mbmf", k_users: int = 16, k_items: int = 16, moe: bool = True,
                 evidence: bool = True, gate_bias: float = 2.0, adjustment: str = "backdoor",
                 lambda_cl: float = 0.1, temperature: float = 0.2, same_stratum_weight: float = 0.5,
                 cl_rows: int = 512, factors: int = 64, layers: int = 1,
                 epochs: int = 100, batch_size: int = 4096, lr: float = 1e-2, reg: float = 1e-4,
                 aux_weight: float = 1.0, behaviors: tuple[str, ...] | None = None, validate: bool = True,
                 max_validation_users: int | None = 3000, patience: int = 5, max_minutes: float | None = None,
                 seed: int = 0, threads: int = 1, checkpoint_dir: str | None = None, progress: bool = False) -> None:
        super().__init__(**shared_settings(locals()))
        self.base = base
        self.k_users = k_users
        self.k_items = k_items
        self.moe = moe
        self.evidence = evidence
        self.gate_bias = gate_bias
        self.adjustment = adjustment
        self.lambda_cl = lambda_cl
        self.temperature = temperature
        self.same_stratum_weight = same_stratum_weight
        self.cl_rows = cl_rows
        self.layers = layers

    def prepare(self, data: Dataset, graphs: BehaviorGraphs) -> None:
        if self.adjustment not in ADJUSTMENTS:
            raise ValueError(f"mclmr: adjustment must be one of {', '.join(ADJUSTMENTS)}, got {self.adjustment!r}")
        if not 0 < self.same_stratum_weight <= 1:
            raise ValueError(f"mclmr: same_stratum_weight must be in (0, 1], got {self.same_stratum_weight}")
        self.strata_ = Strata(graphs, self.k_users, self.k_items, self.seed)

    def build(self, graphs: BehaviorGraphs) -> nn.Module:
        evidence = None
        if self.evidence:
            evidence = [np.sort(_keys(m, graphs.n_items)) for m in graphs.matrices[:-1]]
        return MCLMRNet(self.base_model().build(graphs), self.strata_, self.moe, self.adjustment, self.lambda_cl,
                        self.temperature, self.same_stratum_weight, self.gate_bias, self.cl_rows, evidence)

    def _freeze(self) -> None:
        super()._freeze()
        net = self.net_
        with torch.no_grad():
            self.w_ = net.w.detach().numpy().copy()
            self.a_ = net.a.detach().numpy().copy()
            self.c_ = net.c.detach().numpy().copy()
            self.beta_ = net.beta.detach().numpy().copy()
            self.gamma_ = net.gamma.detach().numpy().copy()
            self.t_user_ = net.t_user.detach().numpy().copy()
            self.t_item_ = net.t_item.detach().numpy().copy()

    # ------------------------------------------------------------------------------------------ scoring
    def evidence_tables(self, users: np.ndarray) -> np.ndarray:
        """(B, len(users), n_items) e_b(u, i): 1 where she showed auxiliary behavior b on the piece."""
        e = np.zeros((len(self.behaviors_), len(users), self.item_reps_.shape[1]), dtype=np.float32)
        if self.evidence:
            for b, m in enumerate(self.graphs_[:-1]):
                e[b] = m[users].toarray() > 0
        return e

    def gate_tables(self, users: np.ndarray, evidence: np.ndarray | None = None) -> np.ndarray:
        """(B, len(users), n_items) alpha_b(u, i) for every piece."""
        ut, it = self.user_reps_[-1, users], self.item_reps_[-1]
        e = self.evidence_tables(users) if evidence is None else evidence
        logits = (np.einsum("nd,bde->bne", ut, self.a_) @ it.T / math.sqrt(ut.shape[1]) + self.c_[:, None, None]
                  + self.gamma_[:, None, None] * e)
        logits -= logits.max(0, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(0, keepdims=True)

    def score_tables(self, users: np.ndarray) -> np.ndarray:
        """y_do(u, i) (3) for every piece, in blocks of 256 clients (the gate is B x block x n_items)."""
        out = np.empty((len(users), self.item_reps_.shape[1]), dtype=np.float32)
        it = self.item_reps_[-1]
        for start in range(0, len(users), 256):
            rows = users[start:start + 256]
            ut = self.user_reps_[-1, rows]
            if self.moe:
                e = self.evidence_tables(rows)
                experts = np.stack([(self.user_reps_[b, rows] @ self.w_[b]) @ self.item_reps_[b].T
                                    for b in range(len(self.behaviors_))]) + self.beta_[:, None, None] * e
                s = (self.gate_tables(rows, e) * experts).sum(0)
            else:
                s = ut @ it.T
            if self.adjustment == "backdoor":
                t_bar = self.strata_.user_prior @ self.t_user_
                t_item_bar = self.strata_.item_prior @ self.t_item_
                s += ((ut + t_bar) @ t_item_bar)[:, None] + (t_bar @ it.T)[None, :]
            elif self.adjustment == "observed":
                tk = self.t_user_[self.strata_.users[rows]]
                tl = self.t_item_[self.strata_.items]
                s += (ut + tk) @ tl.T + tk @ it.T
            out[start:start + 256] = s
        return out

    # ------------------------------------------------------------------------------------------ reasons
    def behavior_shares(self, user: int, items: np.ndarray) -> np.ndarray:
        """The gate alpha(u, i): which behavior expert carried each piece for her."""
        if not self.moe:
            return super().behavior_shares(user, items)
        return self.gate_tables(np.array([user]))[:, 0, items].T

    def _reason(self, user: int, item: int, shares: np.ndarray) -> Reason:
        reason = super()._reason(user, item, shares)
        stratum = int(self.strata_.items[item])
        reason.signals = {**(reason.signals or {}), "item_stratum": float(stratum),
                          "user_stratum": float(self.strata_.users[user])}
        if self.adjustment == "backdoor":
            profile = self.strata_.item_centres[stratum]
            shallow = SHORT.get(self.behaviors_[0], self.behaviors_[0])
            reason.text += (f"; adjusted for habits and popularity (its group: {100 * profile[0]:.0f}% "
                            f"{shallow}, {100 * profile[len(self.behaviors_) - 1]:.0f}% purchases)")
        return reason
