"""Bigger encoders (CLIP, SigLIP) load from a local directory through the same interface, never downloading.

The `tiny_clip` fixture (tests/conftest.py) saves a tiny randomly initialised CLIP with `save_pretrained`
(borrowing MiniLM's WordPiece tokenizer files), which is exactly the layout a user gets from a real checkpoint.
"""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from vendome.features.embeddings import item_features
from vendome.features.image import HFImageEncoder, make_image_encoder
from vendome.features.text import HFTextEncoder, make_text_encoder


def test_local_clip_image_tower_encodes_through_the_common_interface(tiny_clip):
    encoder = make_image_encoder(str(tiny_clip), batch_size=2)
    assert isinstance(encoder, HFImageEncoder) and encoder.dim == 16
    images = [Image.new("RGB", (64, 48), c) for c in ("red", "green", "blue")]
    vectors = encoder.encode(images)
    assert vectors.shape == (3, 16) and np.isfinite(vectors).all()
    assert encoder.n_batches == 2
    assert not np.allclose(vectors[0], vectors[1])


def test_local_clip_text_tower_gives_unit_vectors(tiny_clip):
    encoder = make_text_encoder(str(tiny_clip))
    assert isinstance(encoder, HFTextEncoder)
    vectors = encoder.encode(["gold ring", "leather bag"])
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_item_features_accepts_a_local_model_directory(catalog, tiny_clip, tmp_path):
    feats = item_features(catalog, tmp_path / "ws", modalities=("image", "text"), image_model=str(tiny_clip),
                          text_model=str(tiny_clip), progress=False, supplied={})
    assert feats["image"].shape == (6, 16) and feats["text"].shape == (6, 16)
    assert feats["image_missing"].sum() == 3


def test_the_cache_key_follows_the_weights(tiny_clip, tmp_path):
    copy = tmp_path / tiny_clip.name
    shutil.copytree(tiny_clip, copy)
    before = HFImageEncoder(copy).name
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b"\0")
    assert HFImageEncoder(copy).name != before
