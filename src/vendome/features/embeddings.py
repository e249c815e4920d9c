"""Item feature matrices for a Dataset: image and text embeddings, cached, or the catalog's own vectors.

    data = attach_features(data, ws)                       # data.item_features["image"], ["text"], masks
    feats = item_features(data, ws, modalities=("text",))

Conventions of the returned dict (rows aligned with `data.products`):
- `feats[m]`: (n_items, d) float32 for each modality m.
- `feats[m + "_missing"]`: (n_items,) bool, True where item has no vector for m; that row is all zeros.
  `modality_names(feats)` lists the matrices without the masks.
- Image features are mean-centred over the items that have an image, then L2-normalised: raw pooled CNN features
  share a large common component, and cosine similarity between products only becomes informative without it.
  An item has no image when its image_url is empty, is an http(s) URL (never fetched), names a file that does not
  exist, or the file is not a readable image.
- Text features are MiniLM sentence embeddings of `product_text` (already unit length); an item whose text is
  empty is missing.
- Raw vectors are cached by content hash under `Workspace(ws).features`, so a re-run computes only new content.
- A supplied `product_embeddings` table (`vendome.data.store.read_product_embeddings`) wins over computing for the
  modalities it holds; its vectors are used as given, aligned by product_id.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from vendome.data.dataset import Dataset
from vendome.features.cache import EmbeddingCache, encode_cached
from vendome.features.image import ImageEncoder, decode_image, make_image_encoder
from vendome.features.runtime import torch_threads
from vendome.features.text import TextEncoder, make_text_encoder, product_texts
from vendome.workspace import Workspace

log = logging.getLogger(__name__)

MISSING_SUFFIX = "_missing"
Supplied = dict[str, tuple[Sequence[str] | np.ndarray, np.ndarray, str]]  # modality -> (ids, matrix, model)


def item_features(data: Dataset, ws: str | Path | Workspace, modalities: tuple[str, ...] = ("image", "text"),
                  threads: int = 1, image_model: str | ImageEncoder = "mobilenet_v2",
                  text_model: str | TextEncoder = "minilm", progress: bool = True,
                  supplied: Supplied | None = None) -> dict[str, np.ndarray]:
    """Feature matrices and missing masks per modality (see the module docstring for the conventions).

    `supplied` defaults to the workspace's product_embeddings table; pass a dict of the same shape
    (modality -> (product_ids, matrix, model_name)) to use other vectors, or {} to always compute.
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    if supplied is None:
        supplied = read_supplied(ws)
    product_ids = data.products["product_id"].astype(str).to_numpy()
    out: dict[str, np.ndarray] = {}
    with torch_threads(threads):
        for m in modalities:
            if m in supplied:
                ids, matrix, model_name = supplied[m]
                out[m], out[m + MISSING_SUFFIX] = align_supplied(product_ids, ids, matrix, m)
                log.info("%s features: %d supplied by product_embeddings (%s), %d products without a vector",
                         m, int((~out[m + MISSING_SUFFIX]).sum()), model_name, int(out[m + MISSING_SUFFIX].sum()))
            elif m == "image":
                out["image"], out["image_missing"] = image_features(data, ws, image_model, progress)
            elif m == "text":
                out["text"], out["text_missing"] = text_features(data, ws, text_model, progress)
            else:
                have = ", ".join(sorted(supplied)) or "none"
                raise ValueError(f"unknown modality {m!r}: computed modalities are 'image' and 'text'; "
                                 f"product_embeddings supplies: {have}")
    return out


def attach_features(data: Dataset, ws: str | Path | Workspace, **kwargs) -> Dataset:
    """The Dataset with `item_features` filled (same arguments as `item_features`)."""
    return dataclasses.replace(data, item_features=item_features(data, ws, **kwargs))


def modality_names(features: dict[str, np.ndarray]) -> list[str]:
    """Feature matrices in a features dict, without the `*_missing` masks."""
    return [k for k in features if not k.endswith(MISSING_SUFFIX)]


# ----------------------------------------------------------------------------- computed modalities
def image_features(data: Dataset, ws: Workspace, model: str | ImageEncoder = "mobilenet_v2",
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(centred, L2-normalised image matrix, missing mask); raw vectors are cached, centring is per catalog."""
    encoder = make_image_encoder(model)
    products = data.products
    urls = products["image_url"].tolist() if "image_url" in products else [None] * data.n_items
    reasons = {"no image_url": 0, "remote URL (not fetched)": 0, "file not found": 0, "unreadable": 0}
    rows, paths = [], []
    for i, url in enumerate(urls):
        path, reason = local_image_path(url)
        if reason:
            reasons[reason] += 1
        else:
            rows.append(i)
            paths.append(path)
    cache = EmbeddingCache(ws.features, encoder.name)
    raw, failed, stats = encode_cached(encoder, paths, cache, decode=decode_image, progress=progress,
                                       desc=f"images ({encoder.name})")
    matrix = np.zeros((data.n_items, encoder.dim), np.float32)
    missing = np.ones(data.n_items, bool)
    ok_rows = np.asarray(rows, dtype=np.int64)[~failed]
    if len(ok_rows):
        vectors = raw[~failed]
        if len(vectors) > 1:  # a lone image would centre to zero: keep it as it is
            vectors = vectors - vectors.mean(axis=0, keepdims=True)
        matrix[ok_rows] = _l2_normalise(vectors)
        missing[ok_rows] = False
    for i in np.asarray(rows, dtype=np.int64)[failed]:
        log.warning("products row %d (product_id %s), field image_url: %s is not a readable image file",
                    i, products["product_id"].iloc[i], urls[i])
    reasons["unreadable"] = stats.failed
    detail = ", ".join(f"{k}: {v}" for k, v in reasons.items() if v) or "none"
    log.info("image features (%s): %d computed, %d cached, %d missing (%s)", encoder.name, stats.computed,
             stats.cached, int(missing.sum()), detail)
    return matrix, missing


def text_features(data: Dataset, ws: Workspace, model: str | TextEncoder = "minilm",
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(text matrix, missing mask): one sentence embedding of each product's text; empty text is missing."""
    encoder = make_text_encoder(model)
    texts = product_texts(data.products)
    present = np.array([bool(t) for t in texts], bool)
    cache = EmbeddingCache(ws.features, encoder.name)
    vectors, _, stats = encode_cached(encoder, [t for t in texts if t], cache, progress=progress,
                                      desc=f"texts ({encoder.name})")
    matrix = np.zeros((data.n_items, encoder.dim), np.float32)
    matrix[present] = vectors
    log.info("text features (%s): %d computed, %d cached, %d missing (empty text)", encoder.name, stats.computed,
             stats.cached, int((~present).sum()))
    return matrix, ~present


def local_image_path(url: object) -> tuple[Path | None, str | None]:
    """(path, None) for a readable local file, else (None, why the item has no image). URLs are never fetched."""
    if url is None or (isinstance(url, float) and np.isnan(url)) or not str(url).strip():
        return None, "no image_url"
    url = str(url).strip()
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "s3", "gs", "ftp"):
        return None, "remote URL (not fetched)"
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url).expanduser()
    if not (path.is_file() and os.access(path, os.R_OK)):
        return None, "file not found"
    return path, None


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


# ----------------------------------------------------------------------------- supplied vectors
def read_supplied(ws: Workspace) -> Supplied:
    """The workspace's product_embeddings table, or {} when there is no store or no such table."""
    if not ws.exists():
        return {}
    from vendome.data.store import read_product_embeddings

    return read_product_embeddings(ws) or {}


def align_supplied(product_ids: np.ndarray, ids: Sequence[str] | np.ndarray, matrix: np.ndarray,
                   modality: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `matrix` reordered to `product_ids`; zero rows and a True mask for products without a vector."""
    ids = np.asarray(ids).astype(str)
    matrix = np.asarray(matrix, np.float32)
    if matrix.ndim != 2 or len(ids) != len(matrix):
        raise ValueError(f"product_embeddings ({modality}): expected one vector per product_id, got "
                         f"{len(ids)} ids and a matrix of shape {matrix.shape}")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = ", ".join(unique[counts > 1][:5])
        raise ValueError(f"product_embeddings ({modality}), column product_id: duplicate ids {dup}; "
                         "expected one vector per product")
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise ValueError(f"product_embeddings ({modality}), row {int(np.flatnonzero(bad)[0])} (product_id "
                         f"{ids[bad][0]}): vector holds NaN or infinite values; expected finite numbers")
    row_of = {pid: r for r, pid in enumerate(ids)}
    take = np.array([row_of.get(pid, -1) for pid in product_ids], np.int64)
    out = np.zeros((len(product_ids), matrix.shape[1]), np.float32)
    have = take >= 0
    out[have] = matrix[take[have]]
    return out, ~have
