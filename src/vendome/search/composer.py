"""The composer: an anchor piece plus the words of a change make one query vector ("like this, but in rose gold").

Four composers share one call, `compose(anchor, text) -> query` over item-shaped vectors (see `search.joint`):
- `ImageOnly`: the anchor itself ("more like this"), deaf to the words;
- `TextOnly`: the words alone, blind to the anchor;
- `Sum`: the anchor plus the words, each unit length (the classic late-fusion baseline);
- `FiLMComposer`, the AMMR design: the item vector is cut into S slices; the condition c = MLP([t ; v ; t * v_w])
  (t the words, v the anchor, v_w its words part) gives each slice a FiLM scale and shift and a gate
      g_s = sigmoid(w_s . c + b_s),  b_s initialised negative, so training starts from "keep the anchor";
      q_s = v_s + g_s * (gamma_s * v_s + beta_s);       q = normalise(concat_s q_s + a * [0 ; t])
  so a change of material moves the slices that carry material and leaves the look alone.
It is trained on catalog changes (`search.pairs`) with a full-catalog softmax over the item vectors and every
target of a change as a positive (InfoNCE with several positives, temperature `tau`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from vendome.search.index import normalise


class Composer(ABC):
    """Anchor vectors (n, D) or None, word vectors (n, D) with a zero look part -> query vectors (n, D). Abstract:
    the four composers below are the implementations."""

    name = "composer"

    @abstractmethod
    def compose(self, anchor: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        """Unit-length query vectors, one per row."""


class ImageOnly(Composer):
    name = "image-only"

    def compose(self, anchor: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        return normalise(text if anchor is None else anchor)


class TextOnly(Composer):
    name = "text-only"

    def compose(self, anchor: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        return normalise(text)


class Sum(Composer):
    name = "sum"

    def compose(self, anchor: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        if anchor is None:
            return normalise(text)
        return normalise(normalise(anchor) + normalise(text))


class FiLMComposer(Composer, nn.Module):
    """Gated FiLM over slices of the item vector (module docstring). `look_dim` is where the words part starts."""

    name = "film"

    def __init__(self, slices: int = 8, hidden: int = 256, tau: float = 0.03, epochs: int = 40,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 1e-2, dropout: float = 0.1,
                 gate_bias: float = -2.0, patience: int = 5, modulate_look: bool = True, seed: int = 0,
                 progress: bool = True) -> None:
        nn.Module.__init__(self)
        self.slices, self.hidden, self.tau, self.epochs = slices, hidden, tau, epochs
        self.batch_size, self.lr, self.weight_decay, self.gate_bias = batch_size, lr, weight_decay, gate_bias
        self.dropout, self.patience, self.seed, self.progress = dropout, patience, seed, progress
        self.modulate_look = modulate_look

    def _build(self, dim: int, look_dim: int) -> None:
        torch.manual_seed(self.seed)
        self.dim_, self.look_dim_ = dim, look_dim
        words = dim - look_dim
        self.cond = nn.Sequential(nn.Linear(words + dim + words, self.hidden), nn.GELU(), nn.Dropout(self.dropout),
                                  nn.Linear(self.hidden, self.hidden), nn.GELU())
        self.film = nn.Linear(self.hidden, 2 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.gate = nn.Linear(self.hidden, self.slices)
        nn.init.constant_(self.gate.bias, self.gate_bias)
        self.text_weight = nn.Parameter(torch.tensor(1.0))     # with zero FiLM, training starts from `Sum`
        bounds = np.linspace(0, dim, self.slices + 1).round().astype(int)
        self.register_buffer("slice_of", torch.from_numpy(np.repeat(np.arange(self.slices), np.diff(bounds))))
        movable = torch.ones(dim)
        if not self.modulate_look:            # the words change the words part only; the look passes through
            movable[:look_dim] = 0.0
        self.register_buffer("movable", movable)

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v: anchors (n, D); t: words (n, D - look_dim) -> queries (n, D), unit rows."""
        vw = v[:, self.look_dim_:]
        c = self.cond(torch.cat([t, v, t * vw], dim=-1))
        gamma, beta = self.film(c).chunk(2, dim=-1)
        g = torch.sigmoid(self.gate(c))[:, self.slice_of] * self.movable   # each slice's gate, over its dims
        q = v + g * (gamma * v + beta)
        q = q + self.text_weight * F.pad(t, (self.look_dim_, 0))
        return F.normalize(q, dim=-1)

    def gates(self, anchor: np.ndarray, text: np.ndarray) -> np.ndarray:
        """(n, slices) gate values: which slices a change moved (the composer's explanation)."""
        with torch.inference_mode():
            v, t = self._tensors(anchor, text)
            c = self.cond(torch.cat([t, v, t * v[:, self.look_dim_:]], dim=-1))
            return torch.sigmoid(self.gate(c)).numpy()

    def compose(self, anchor: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        if anchor is None:                                 # no piece to keep: the words are the query
            return normalise(text)
        with torch.inference_mode():
            return self(*self._tensors(anchor, text)).numpy()

    def _tensors(self, anchor: np.ndarray, text: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.from_numpy(np.atleast_2d(np.asarray(anchor, np.float32)))
        t = torch.from_numpy(np.atleast_2d(np.asarray(text, np.float32))[:, self.look_dim_:])
        return v, F.normalize(t, dim=-1)

    # ------------------------------------------------------------------------------------------------ training
    def fit(self, items: np.ndarray, look_dim: int, anchors: Sequence[int], texts: np.ndarray,
            targets: Sequence[Sequence[int]], validate: Callable[[FiLMComposer], float] | None = None,
            target_weights: Sequence[Sequence[float]] | None = None) -> FiLMComposer:
        """items: (n_items, D) item vectors; for example e: anchor row anchors[e], word vector texts[e] (D-shaped,
        zero look part), positive rows targets[e]. Full-catalog softmax, several positives per example.

        `validate(self) -> score` (higher is better, e.g. recall@10 on held-out catalog changes) runs before training
        and after every epoch; the best state is kept and training stops after `patience` epochs without a gain, so
        the composer ends no worse on validation than where it starts, which is the `Sum` baseline.

        `target_weights` (same shape as `targets`) turns the positives into a target distribution (cross-entropy
        against it) instead of "any positive" (-log of their summed probability)."""
        self._build(items.shape[1], look_dim)
        z = torch.from_numpy(np.asarray(items, np.float32))
        a = torch.as_tensor(np.asarray(anchors, np.int64))
        t = F.normalize(torch.from_numpy(np.asarray(texts, np.float32)[:, look_dim:]), dim=-1)
        pos = torch.zeros(len(a), len(z), dtype=torch.bool)
        soft = torch.zeros(len(a), len(z)) if target_weights is not None else None
        for e, rows in enumerate(targets):
            pos[e, list(rows)] = True
            if soft is not None:
                w = torch.as_tensor(np.asarray(target_weights[e], np.float32))
                soft[e, list(rows)] = w / w.sum()
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        self.losses_: list[float] = []
        self.validation_: list[float] = []
        best, best_state, stale = -np.inf, None, 0
        if validate is not None:
            self.eval()
            best = validate(self)
            best_state = {k: v.clone() for k, v in self.state_dict().items()}
            self.validation_.append(best)
        bar = tqdm(range(self.epochs), desc="composer (gated FiLM)", disable=not self.progress, leave=False)
        for _ in bar:
            self.train()
            total = 0.0
            for b in torch.randperm(len(a), generator=gen).split(self.batch_size):
                q = self(z[a[b]], t[b])
                logits = q @ z.T / self.tau
                logits[torch.arange(len(b)), a[b]] = -1e9          # the anchor itself is not the answer
                log_p = logits.log_softmax(-1)
                if soft is None:
                    loss = -(log_p.masked_fill(~pos[b], -1e9).logsumexp(-1)).mean()
                else:
                    loss = -(soft[b] * log_p.masked_fill(~pos[b], 0.0)).sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.losses_.append(total / max(len(a), 1))
            bar.set_postfix(loss=f"{self.losses_[-1]:.3f}")
            if validate is not None:
                self.eval()
                score = validate(self)
                self.validation_.append(score)
                if score > best:
                    best, best_state, stale = score, {k: v.clone() for k, v in self.state_dict().items()}, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is not None:
            self.load_state_dict(best_state)
        self.eval()
        return self


COMPOSERS = {"film": FiLMComposer, "sum": Sum, "image-only": ImageOnly, "text-only": TextOnly}


def make_composer(name: str, **kwargs) -> Composer:
    if name not in COMPOSERS:
        raise ValueError(f"unknown composer {name!r}: expected one of {', '.join(COMPOSERS)}")
    return COMPOSERS[name](**kwargs) if name == "film" else COMPOSERS[name]()
