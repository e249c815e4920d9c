"""One vector space for pictures and words, so a text can find a picture and a picture can be told what to change.

No CLIP weights install offline, so `MiniCLIP` learns the bridge on the catalog itself: a small adapter maps the
frozen image features (MobileNetV2) into the frozen text space (MiniLM), trained with the symmetric InfoNCE of CLIP
on the catalog's own (picture, copy) pairs. The text tower stays frozen, so any query text embedded by the same
text encoder lands in the space without training. `LocalCLIP` is the same interface over a CLIP-family checkpoint
in a local folder, whose two towers share a space already (the item features must then come from that checkpoint).

An item's search vector has two parts (`item_vectors`):
- the look: the catalog's image features reduced by PCA, which keep what only the picture shows (a motif, a cut)
  and which a text-anchored space would discard, since no caption names them;
- the words: the joint vector, the mean of the adapted picture and the copy, where a query text is comparable.
Both parts are unit length and weighted, so `[look ; words]` has unit length and inner products are cosines.

    space = MiniCLIP().fit(image_feats, text_feats, image_missing, text_missing)
    Z = space.item_vectors(image_feats, text_feats, image_missing, text_missing)   # (n, look_dim + text_dim)
    t = space.query_vectors(["in rose gold"])                                       # (1, look_dim + text_dim)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from vendome.features.text import TextEncoder, make_text_encoder
from vendome.search.index import normalise

LOOK_WEIGHT = 0.5     # share of the look in an item vector's squared norm (the words get the rest)


class JointSpace(ABC):
    """What the composer and the index need from a picture-and-words space. Abstract: `MiniCLIP` and `LocalCLIP` say
    how pictures reach the text space; the item and query vectors below are shared."""

    look_dim: int = 128
    look_weight: float = LOOK_WEIGHT
    text_model: str | TextEncoder = "minilm"

    @abstractmethod
    def fit(self, image: np.ndarray, text: np.ndarray, image_missing: np.ndarray | None = None,
            text_missing: np.ndarray | None = None) -> JointSpace:
        """Learn (or check) the bridge from pictures to words, and the look basis (`fit_look`)."""

    @abstractmethod
    def image_to_text(self, image: np.ndarray) -> np.ndarray:
        """Image features in the text space (unit rows)."""

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_encoder", None)      # the text encoder is reloaded on first use, never pickled
        return state

    # ------------------------------------------------------------------------------------------------ vectors
    def fit_look(self, image: np.ndarray, has_image: np.ndarray, seed: int = 0) -> None:
        """PCA basis of the catalog's image features: the look part of every item vector."""
        x = np.asarray(image, np.float32)[has_image]
        self.look_mean_ = x.mean(0) if len(x) else np.zeros(image.shape[1], np.float32)
        dim = int(min(self.look_dim, max(1, len(x) - 1), image.shape[1]))
        if len(x) > 1:
            _, _, vt = np.linalg.svd(x - self.look_mean_, full_matrices=False)
            self.look_basis_ = vt[:dim].T.astype(np.float32)
        else:
            self.look_basis_ = np.eye(image.shape[1], dim, dtype=np.float32)

    def look(self, image: np.ndarray) -> np.ndarray:
        return normalise((np.asarray(image, np.float32) - self.look_mean_) @ self.look_basis_)

    def words(self, image: np.ndarray, text: np.ndarray, image_missing: np.ndarray | None = None,
              text_missing: np.ndarray | None = None) -> np.ndarray:
        """The joint part: the mean of the adapted picture and the copy (whichever the item has)."""
        n = len(text)
        has_img = ~_mask(image_missing, n)
        has_txt = ~_mask(text_missing, n)
        v = self.image_to_text(image) * has_img[:, None]
        t = normalise(np.asarray(text, np.float32)) * has_txt[:, None]
        return normalise(v + t)

    def item_vectors(self, image: np.ndarray, text: np.ndarray, image_missing: np.ndarray | None = None,
                     text_missing: np.ndarray | None = None) -> np.ndarray:
        """(n, look_dim + text_dim) unit rows: sqrt(w) * look ; sqrt(1 - w) * words."""
        n = len(text)
        look = self.look(image) * (~_mask(image_missing, n))[:, None]
        words = self.words(image, text, image_missing, text_missing)
        return np.hstack([np.sqrt(self.look_weight) * look, np.sqrt(1 - self.look_weight) * words]).astype(np.float32)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Query texts in the text space (unit rows); the encoder loads once, on first use."""
        if getattr(self, "_encoder", None) is None:
            self._encoder = make_text_encoder(self.text_model)
        return normalise(self._encoder.encode(list(texts)))

    def query_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Texts as item-shaped vectors: no look, the words part only (so a text-only query scores the words)."""
        t = self.encode_text(texts)
        return np.hstack([np.zeros((len(t), self.look_basis_.shape[1]), np.float32), t])

    @property
    def dim(self) -> int:
        return self.look_basis_.shape[1] + self.text_dim_

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(look, words) parts of item-shaped vectors."""
        d = self.look_basis_.shape[1]
        return z[..., :d], z[..., d:]


class MiniCLIP(JointSpace, nn.Module):
    """Image features -> text space, trained with CLIP's symmetric InfoNCE on the catalog's (picture, copy) pairs.

    The adapter is a residual MLP over a linear map (x W + MLP(x)); the text side is frozen, with a learned
    temperature as in CLIP (initialised at 0.07, clamped at 100 in logit scale).
    """

    def __init__(self, hidden: int = 512, epochs: int = 60, batch_size: int = 256, lr: float = 2e-3,
                 weight_decay: float = 1e-4, look_dim: int = 128, look_weight: float = LOOK_WEIGHT,
                 text_model: str | TextEncoder = "minilm", seed: int = 0, progress: bool = True) -> None:
        nn.Module.__init__(self)
        self.hidden, self.epochs, self.batch_size, self.lr = hidden, epochs, batch_size, lr
        self.weight_decay, self.look_dim, self.look_weight = weight_decay, look_dim, look_weight
        self.text_model, self.seed, self.progress = text_model, seed, progress

    def fit(self, image: np.ndarray, text: np.ndarray, image_missing: np.ndarray | None = None,
            text_missing: np.ndarray | None = None) -> MiniCLIP:
        n = len(text)
        both = ~_mask(image_missing, n) & ~_mask(text_missing, n)
        self.fit_look(image, ~_mask(image_missing, n), self.seed)
        d_in, d_out = image.shape[1], text.shape[1]
        self.text_dim_ = d_out
        torch.manual_seed(self.seed)
        self.linear = nn.Linear(d_in, d_out)
        self.mlp = nn.Sequential(nn.Linear(d_in, self.hidden), nn.GELU(), nn.Linear(self.hidden, d_out))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
        x = torch.from_numpy(np.asarray(image, np.float32)[both])
        y = F.normalize(torch.from_numpy(np.asarray(text, np.float32)[both]), dim=-1)
        self.losses_: list[float] = []
        if len(x) < 2:
            return self
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        bar = tqdm(range(self.epochs), desc="joint image-text space", disable=not self.progress, leave=False)
        for _ in bar:
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for b in perm.split(self.batch_size):
                if len(b) < 2:
                    continue
                v = self._adapt(x[b])
                logits = self.logit_scale.exp().clamp(max=100) * v @ y[b].T
                labels = torch.arange(len(b))
                loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.losses_.append(total / len(x))
            bar.set_postfix(loss=f"{self.losses_[-1]:.3f}")
        self.eval()
        return self

    def _adapt(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(x) + self.mlp(x), dim=-1)

    def image_to_text(self, image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._adapt(torch.from_numpy(np.asarray(image, np.float32))).numpy()

    def retrieval_accuracy(self, image: np.ndarray, text: np.ndarray) -> float:
        """Share of pictures whose own copy is the nearest text among these rows (a check of the alignment)."""
        sims = self.image_to_text(image) @ normalise(np.asarray(text, np.float32)).T
        return float((sims.argmax(1) == np.arange(len(sims))).mean())


class LocalCLIP(JointSpace):
    """A CLIP-family checkpoint in a local folder (CLIP, SigLIP): its towers share one space, so the adapter is the
    identity. The item features must come from the same checkpoint (`vendome features` with that folder as the
    image and text model); `fit` checks that the two modalities have the same width."""

    def __init__(self, path: str, look_dim: int = 128, look_weight: float = LOOK_WEIGHT) -> None:
        from vendome.features.text import HFTextEncoder

        self.path, self.look_dim, self.look_weight = path, look_dim, look_weight
        self.text_model = HFTextEncoder(path)

    def fit(self, image: np.ndarray, text: np.ndarray, image_missing: np.ndarray | None = None,
            text_missing: np.ndarray | None = None) -> LocalCLIP:
        if image.shape[1] != text.shape[1]:
            raise ValueError(f"LocalCLIP({self.path}): image features are {image.shape[1]}-d and text features "
                             f"{text.shape[1]}-d; compute both with this checkpoint so they share its space")
        self.text_dim_ = text.shape[1]
        self.fit_look(image, ~_mask(image_missing, len(text)))
        return self

    def image_to_text(self, image: np.ndarray) -> np.ndarray:
        return normalise(np.asarray(image, np.float32))


def _mask(mask: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, bool) if mask is None else np.asarray(mask, bool)
