"""The faiss index: exact below the threshold, approximate above, filters applied inside the search."""

from __future__ import annotations

import numpy as np
import pytest

from vendome.search.index import VectorIndex, normalise


def clustered(n: int = 3000, d: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Vectors around a few centres, as catalog embeddings are (random isotropic data is no test of an ANN)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    return (c[rng.integers(centres, size=n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    s = normalise(q) @ normalise(x).T
    if allowed is not None:
        s[:, ~allowed] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def test_small_catalogs_get_the_exact_index_and_its_exact_answer():
    x = clustered(500)
    index = VectorIndex().fit(x)
    assert index.kind_ == "flat"
    _, ids = index.search(x[:20], 10)
    assert (ids == exact_top(x, x[:20], 10)).mean() > 0.99          # ties aside, the same lists


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_most_of_the_exact_neighbours(kind):
    x = clustered(3000)
    index = VectorIndex(kind=kind, exact_below=0).fit(x)
    assert index.kind_ == kind
    _, ids = index.search(x[:50], 20)
    truth = exact_top(x, x[:50], 20)
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(ids, truth, strict=True)])
    assert recall > 0.9


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("share", [0.003, 0.5])
def test_a_filter_is_never_broken_and_selective_filters_stay_exact(kind, share):
    x = clustered(3000)
    rng = np.random.default_rng(1)
    allowed = rng.random(len(x)) < share
    index = VectorIndex(kind=kind, exact_below=0, scan_below=100).fit(x)
    scores, ids = index.search(x[:30], 10, allowed=allowed)
    got = ids[ids >= 0]
    assert allowed[got].all()
    if allowed.sum() < 100:           # the exact scan of the few allowed rows
        n = int(min(allowed.sum(), 10))
        assert (ids[:, n:] == -1).all()
        assert (ids[:, :n] == exact_top(x, x[:30], 10, allowed)[:, :n]).mean() > 0.99


def test_fewer_allowed_items_than_k_pad_with_minus_one():
    x = clustered(200)
    allowed = np.zeros(len(x), bool)
    allowed[[3, 7]] = True
    scores, ids = VectorIndex().fit(x).search(x[:2], 5, allowed=allowed)
    assert ids.shape == (2, 5)
    assert set(ids[0, :2]) == {3, 7} and (ids[:, 2:] == -1).all() and np.isinf(scores[:, 2:]).all()
    _, none = VectorIndex().fit(x).search(x[:1], 5, allowed=np.zeros(len(x), bool))
    assert (none == -1).all()


def test_a_mask_of_the_wrong_length_is_refused():
    index = VectorIndex().fit(clustered(100))
    with pytest.raises(ValueError, match="one per item"):
        index.search(np.ones((1, 32), np.float32), 5, allowed=np.ones(99, bool))


def test_a_saved_index_answers_as_the_original(tmp_path):
    x = clustered(3000)
    index = VectorIndex(kind="hnsw", exact_below=0).fit(x)
    index.save(tmp_path / "index.faiss")
    again = VectorIndex.load(tmp_path / "index.faiss", x)
    assert again.kind_ == "hnsw"
    np.testing.assert_array_equal(index.search(x[:10], 10)[1], again.search(x[:10], 10)[1])
    with pytest.raises(ValueError, match="catalog has"):
        VectorIndex.load(tmp_path / "index.faiss", x[:10])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_items_that_share_a_vector_are_indexed_once_and_all_returned(kind):
    """Size variants: every design sold as several SKUs with the design's vector."""
    designs = clustered(400, seed=3)
    copies = np.repeat(np.arange(len(designs)), 5)                    # 2,000 SKUs, 400 distinct vectors
    x = designs[copies]
    index = VectorIndex(kind=kind, exact_below=0 if kind == "hnsw" else 20_000, scan_below=10).fit(x)
    assert index.index_.ntotal == 400 and index.n_items == 2000
    scores, ids = index.search(designs[:3], 12)
    for row, q in zip(ids, designs[:3], strict=True):
        best = exact_top(designs, q[None], 3)[0]
        assert set(copies[row]) == set(best)                           # 3 designs x 4 SKUs each, then the 4th...
        assert sorted(row[:5]) == list(np.flatnonzero(copies == best[0]))   # ...best design's SKUs first
    allowed = np.ones(len(x), bool)
    allowed[np.flatnonzero(copies == exact_top(designs, designs[:1], 1)[0, 0])[:4]] = False   # 4 of 5 SKUs sold out
    _, ids = index.search(designs[:1], 6, allowed=allowed)
    assert allowed[ids[ids >= 0]].all() and len(set(copies[ids[0]])) == 2
