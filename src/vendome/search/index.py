"""Nearest-neighbour retrieval over item vectors with faiss, exact or approximate, with filtered search.

    index = VectorIndex().fit(item_vectors)                     # exact below 20,000 items, HNSW above
    scores, ids = index.search(queries, k=300, allowed=mask)    # (n, k) each; ids -1 where fewer pieces qualify

Vectors are L2-normalised at `fit` and scores are inner products (cosine similarity). The index is the catalog's:
row i of `item_vectors` is item i, so an id is a dense item index.

Identical vectors are indexed once. A luxury catalog sells a design in many sizes, each its own SKU with the
design's picture and copy, so whole groups of items share one vector; an HNSW graph over thousands of exact
duplicates is both larger and worse (its neighbour lists fill with copies), and the grown 100,000-SKU demo holds
only 3,204 distinct vectors. A hit on a distinct vector expands to its allowed items, in catalog order.

Filtered search (category, material, price range, stock as a boolean mask over the catalog) takes one of two roads,
the way vector databases plan filters: when few items qualify, an exact scan of just those rows is both faster and
exact, and a graph search would wander through regions the filter empties; when many qualify, faiss searches the
approximate index with an `IDSelectorBitmap`, so the filter is applied inside the search rather than after a top-k
that could hold no allowed item at all.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

EXACT_BELOW = 20_000          # catalogs smaller than this get the exact index
SCAN_BELOW = 20_000           # filters leaving fewer items than this are answered by an exact scan of those rows


class VectorIndex:
    """Inner-product search over one catalog's item vectors (faiss `IndexFlatIP`, `IndexHNSWFlat` or `IndexIVFFlat`).

    kind: "auto" (flat below `exact_below` items, else HNSW), "flat", "hnsw" or "ivf".
    """

    def __init__(self, kind: str = "auto", exact_below: int = EXACT_BELOW, scan_below: int = SCAN_BELOW,
                 hnsw_m: int = 32, ef_construction: int = 128, ef_search: int = 512, nlist: int | None = None,
                 nprobe: int = 24) -> None:
        if kind not in ("auto", "flat", "hnsw", "ivf"):
            raise ValueError(f"index kind {kind!r}: expected auto, flat, hnsw or ivf")
        self.kind, self.exact_below, self.scan_below = kind, exact_below, scan_below
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.nlist, self.nprobe = nlist, nprobe

    # ------------------------------------------------------------------------------------------------ build
    def fit(self, vectors: np.ndarray) -> VectorIndex:
        x = normalise(np.asarray(vectors, np.float32))
        self._group(x)
        u = self.vectors_
        n, d = u.shape
        kind = self.kind if self.kind != "auto" else ("flat" if n < self.exact_below else "hnsw")
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            nlist = self.nlist or max(16, int(4 * np.sqrt(n)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            index.train(u[rng.choice(n, size=min(n, 64 * nlist), replace=False)])
        index.add(u)
        self.index_, self.kind_ = index, kind
        return self

    def _group(self, x: np.ndarray) -> None:
        """Distinct vectors (`vectors_`) and, when items share one, the items of each (`members_`, `starts_`)."""
        self.n_items_ = len(x)
        unique, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
        if len(unique) == len(x):
            self.vectors_, self.inverse_ = x, None
            return
        order = np.argsort(first, kind="stable")          # distinct vectors in the catalog order of their first item
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.vectors_ = unique[order]
        self.inverse_ = rank[inverse.ravel()]
        self.members_ = np.argsort(self.inverse_, kind="stable")
        self.starts_ = np.searchsorted(self.inverse_[self.members_], np.arange(len(order) + 1))

    @property
    def n_items(self) -> int:
        return self.n_items_

    # ------------------------------------------------------------------------------------------------ query
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, item ids) per query row, best first, among `allowed` items (a bool mask over the catalog,
        shared by every query). Rows with fewer than k qualifying items are padded with score -inf and id -1."""
        q = normalise(np.atleast_2d(np.asarray(queries, np.float32)))
        k = int(k)
        if allowed is not None:
            allowed = np.asarray(allowed, bool)
            if allowed.shape != (self.n_items,):
                raise ValueError(f"allowed mask has shape {allowed.shape}; expected ({self.n_items},), one per item")
        distinct = allowed
        if allowed is not None and self.inverse_ is not None:
            distinct = np.bincount(self.inverse_, weights=allowed, minlength=len(self.vectors_)) > 0
        scores, ids = self._search_distinct(q, k, distinct)
        if self.inverse_ is None:
            return scores, ids
        return self._expand(scores, ids, k, allowed)

    def _search_distinct(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            return self._search(q, k, None)
        rows = np.flatnonzero(allowed)
        if len(rows) == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if len(rows) < self.scan_below or self.kind_ == "flat":
            return _scan(self.vectors_, rows, q, k)
        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        return self._search(q, k, selector)

    def _expand(self, scores: np.ndarray, ids: np.ndarray, k: int, allowed: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Distinct-vector hits -> the (allowed) items that share each vector, best first, k per row."""
        out_s = np.full((len(ids), k), -np.inf, np.float32)
        out_i = np.full((len(ids), k), -1, np.int64)
        for r in range(len(ids)):
            filled = 0
            for s, u in zip(scores[r], ids[r], strict=True):
                if u < 0 or filled == k:
                    break
                items = self.members_[self.starts_[u]:self.starts_[u + 1]]
                if allowed is not None:
                    items = items[allowed[items]]
                take = items[: k - filled]
                out_i[r, filled:filled + len(take)] = take
                out_s[r, filled:filled + len(take)] = s
                filled += len(take)
        return out_s, out_i

    def _search(self, q: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        kk = min(k, len(self.vectors_))
        if self.kind_ == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, kk), sel=selector)
        elif self.kind_ == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = self.index_.search(q, kk, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return _pad(scores, ids.astype(np.int64), k)

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        path = Path(path)
        faiss.write_index(self.index_, str(path))

    @classmethod
    def load(cls, path: str | Path, vectors: np.ndarray, **kwargs) -> VectorIndex:
        """An index read back from `path`, with the item vectors it was built on (kept for exact scans)."""
        self = cls(**kwargs)
        self.index_ = faiss.read_index(str(path))
        self._group(normalise(np.asarray(vectors, np.float32)))
        self.kind_ = ("hnsw" if isinstance(self.index_, faiss.IndexHNSW)
                      else "ivf" if isinstance(self.index_, faiss.IndexIVF) else "flat")
        if self.index_.ntotal != len(self.vectors_):
            raise ValueError(f"index at {path} holds {self.index_.ntotal} distinct vectors; the catalog has "
                             f"{len(self.vectors_)}")
        return self


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _scan(vectors: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over a subset of rows (the filtered road for selective filters)."""
    sims = q @ vectors[rows].T
    kk = min(k, len(rows))
    part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    top = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    ids = rows[np.take_along_axis(part, order, axis=1)]
    return _pad(np.take_along_axis(top, order, axis=1).astype(np.float32), ids.astype(np.int64), k)


def _pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] >= k:
        return scores[:, :k], ids[:, :k]
    extra = k - scores.shape[1]
    return (np.hstack([scores, np.full((len(scores), extra), -np.inf, np.float32)]),
            np.hstack([ids, np.full((len(ids), extra), -1, np.int64)]))
