"""The content-addressed embedding cache, with a tiny deterministic encoder standing in for a network."""

from __future__ import annotations

import numpy as np

from vendome.features.cache import EmbeddingCache, content_key, encode_cached


class LengthEncoder:
    """Encodes a text as (length, vowels, 1): enough to tell which rows were computed."""

    name, dim, batch_size = "length-v1", 3, 2

    def __init__(self):
        self.n_batches = 0

    def encode(self, texts):
        self.n_batches += 1
        return np.array([[len(t), sum(c in "aeiou" for c in t), 1.0] for t in texts], np.float32)


def test_keys_depend_on_content_and_model():
    assert content_key("gold ring", "m1") == content_key(b"gold ring", "m1")
    assert content_key("gold ring", "m1") != content_key("gold ring", "m2")
    assert content_key("gold ring", "m1") != content_key("gold rings", "m1")


def test_identical_contents_are_encoded_once(tmp_path):
    encoder = LengthEncoder()
    X, failed, stats = encode_cached(encoder, ["ring", "bag", "ring"], EmbeddingCache(tmp_path, encoder.name),
                                     progress=False)
    np.testing.assert_array_equal(X[0], X[2])
    assert stats.computed == 2 and stats.cached == 0 and not failed.any()
    assert encoder.n_batches == 1


def test_cached_rows_are_not_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path, LengthEncoder.name)
    encode_cached(LengthEncoder(), ["ring", "bag"], cache, progress=False)
    encoder = LengthEncoder()
    X, _, stats = encode_cached(encoder, ["bag", "scarf", "ring"], cache, progress=False)
    assert stats.cached == 2 and stats.computed == 1 and encoder.n_batches == 1
    np.testing.assert_array_equal(X, [[3, 1, 1], [5, 1, 1], [4, 1, 1]])


def test_a_damaged_entry_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path, LengthEncoder.name)
    encode_cached(LengthEncoder(), ["ring"], cache, progress=False)
    (entry,) = tmp_path.rglob("*.npy")
    entry.write_bytes(b"\x93NUMPY truncated")
    X, _, stats = encode_cached(LengthEncoder(), ["ring"], cache, progress=False)
    assert stats.computed == 1
    np.testing.assert_array_equal(X, [[4, 1, 1]])


def test_undecodable_contents_are_flagged_not_cached(tmp_path):
    encoder = LengthEncoder()
    cache = EmbeddingCache(tmp_path, encoder.name)
    X, failed, stats = encode_cached(encoder, ["ring", "broken"], cache, progress=False,
                                     decode=lambda t: None if t == "broken" else t)
    np.testing.assert_array_equal(failed, [False, True])
    assert not X[1].any() and stats.failed == 1
    assert content_key("broken", encoder.name) not in cache
