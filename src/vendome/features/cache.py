"""Embedding cache keyed by content: sha256(model name, image bytes or text).

One `.npy` per vector under `ROOT/<model>/<key[:2]>/<key>.npy`, written to a temporary file and renamed with
`os.replace`, so a crash or a concurrent writer never leaves a half-written vector behind. Keys depend on the
content, not on product ids: renaming a product or re-ingesting the same catalog computes nothing new, and two
products with the same photo share one vector.

    cache = EmbeddingCache(Workspace(ws).features, encoder.name)
    X, failed, stats = encode_cached(encoder, image_paths, cache, decode=decode_image)
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm


def content_key(content: bytes | str | Path, model_name: str) -> str:
    """sha256 over the model name and the content (a text, bytes, or a file's bytes read in chunks), so two
    models never share an entry and a renamed file keeps its vector."""
    h = hashlib.sha256(model_name.encode("utf-8") + b"\0")
    if isinstance(content, Path):
        with content.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(content.encode("utf-8") if isinstance(content, str) else content)
    return h.hexdigest()


class EmbeddingCache:
    """Vectors of one model, stored by content key."""

    def __init__(self, root: str | Path, model_name: str) -> None:
        self.model_name = model_name
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", model_name)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError):  # unreadable entry (e.g. truncated by a disk error): recompute it
            return None

    def put(self, key: str, vector: np.ndarray) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.asarray(vector, np.float32), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()


@dataclass
class CacheStats:
    computed: int = 0  # distinct contents encoded in this call
    cached: int = 0  # rows served from the cache
    failed: int = 0  # rows whose content could not be decoded


def encode_cached(encoder: Any, contents: Sequence[bytes | str | Path], cache: EmbeddingCache,
                  decode: Callable[[Any], Any] | None = None, progress: bool = True,
                  desc: str = "encoding") -> tuple[np.ndarray, np.ndarray, CacheStats]:
    """Rows of `encoder.encode` for each content, computing only what the cache lacks.

    `decode` turns a content into the encoder's input (image file -> image); returning None marks the content as
    unreadable: its row stays zero and its flag in the returned `failed` mask is set. Identical contents are
    encoded once. Vectors are cached batch by batch, so an interrupted run resumes where it stopped.
    Returns (matrix (n, encoder.dim) float32, failed (n,) bool, stats).
    """
    n = len(contents)
    out = np.zeros((n, encoder.dim), np.float32)
    failed = np.zeros(n, bool)
    stats = CacheStats()
    rows_of: dict[str, list[int]] = {}
    for i, content in enumerate(contents):
        rows_of.setdefault(content_key(content, cache.model_name), []).append(i)

    todo: list[str] = []
    for key, rows in rows_of.items():
        vector = cache.get(key)
        if vector is not None and vector.shape == (encoder.dim,):
            out[rows] = vector
            stats.cached += len(rows)
        else:
            todo.append(key)

    if all(isinstance(contents[rows_of[k][0]], str) for k in todo):  # texts: batch similar lengths, less padding
        todo.sort(key=lambda k: len(contents[rows_of[k][0]]))
    batch = max(1, int(encoder.batch_size))
    with tqdm(total=len(todo), desc=desc, unit="item", disable=not progress or not todo) as bar:
        for start in range(0, len(todo), batch):
            keys, inputs = [], []
            for key in todo[start:start + batch]:
                content = contents[rows_of[key][0]]
                item = decode(content) if decode is not None else content
                if item is None:
                    failed[rows_of[key]] = True
                    stats.failed += len(rows_of[key])
                else:
                    keys.append(key)
                    inputs.append(item)
            if inputs:
                vectors = encoder.encode(inputs)
                for key, vector in zip(keys, vectors, strict=True):
                    cache.put(key, vector)
                    out[rows_of[key]] = vector
                stats.computed += len(keys)
            bar.update(len(todo[start:start + batch]))
    return out, failed, stats
