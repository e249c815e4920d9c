"""item_features / attach_features: cached by content, supplied vectors first, missing images as zero rows."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from vendome.features.embeddings import attach_features, item_features, local_image_path, modality_names
from vendome.features.image import make_image_encoder
from vendome.features.text import make_text_encoder
from vendome.workspace import Workspace


def features(catalog, ws, modalities=("image", "text"), **kwargs):
    return item_features(catalog, ws, modalities=modalities, progress=False, supplied={}, **kwargs)


def test_missing_images_get_zero_rows_and_the_mask(catalog, tmp_path):
    feats = features(catalog, tmp_path / "ws", modalities=("image",))
    # p4 is an http URL (never fetched), p5 has no image_url, p6 is not an image file
    np.testing.assert_array_equal(feats["image_missing"], [False, False, False, True, True, True])
    assert feats["image"].shape == (6, 1280) and feats["image"].dtype == np.float32
    assert not feats["image"][3:].any()
    np.testing.assert_allclose(np.linalg.norm(feats["image"][:3], axis=1), 1.0, atol=1e-5)


def test_image_features_are_centred_over_the_catalog(catalog, tmp_path):
    feats = features(catalog, tmp_path / "ws", modalities=("image",))
    raw = make_image_encoder("mobilenet_v2").encode([_photo(catalog, i) for i in range(3)])
    centred = raw - raw.mean(axis=0)
    expected = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(feats["image"][:3], expected, atol=1e-5)
    # raw CNN features of any two products look alike; centred ones tell rings from the pendant
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert (unit @ unit.T).min() > 0.5
    present = feats["image"][:3]
    assert present[0] @ present[1] > 0 > present[0] @ present[2]


def test_second_run_is_served_from_the_cache_without_loading_a_model(catalog, tmp_path):
    first_img, first_txt = make_image_encoder("mobilenet_v2"), make_text_encoder("minilm")
    first = features(catalog, tmp_path / "ws", image_model=first_img, text_model=first_txt)
    assert first_img.n_batches == 1 and first_txt.n_batches == 1

    again_img, again_txt = make_image_encoder("mobilenet_v2"), make_text_encoder("minilm")
    again = features(catalog, tmp_path / "ws", image_model=again_img, text_model=again_txt)
    assert again_img.n_batches == 0 and again_txt.n_batches == 0
    assert again_img._net is None  # weights never even loaded
    assert first.keys() == again.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_only_changed_content_is_recomputed(catalog, tmp_path):
    features(catalog, tmp_path / "ws", modalities=("text",))
    products = catalog.products.copy()
    products.loc[2, "title"] = "Drop pendant, long chain"
    changed = dataclasses.replace(catalog, products=products)
    encoder = make_text_encoder("minilm", batch_size=1)
    feats = features(changed, tmp_path / "ws", modalities=("text",), text_model=encoder)
    assert encoder.n_batches == 1  # one new text out of six
    np.testing.assert_allclose(feats["text"][2], make_text_encoder("minilm").encode([_text(changed, 2)])[0],
                               atol=1e-6)


def test_cache_files_are_written_whole(catalog, tmp_path):
    ws = Workspace(tmp_path / "ws")
    features(catalog, ws, modalities=("text",))
    files = [p for p in ws.features.rglob("*") if p.is_file()]
    assert len(files) == 6 and all(p.suffix == ".npy" for p in files)  # no temporary files left behind


def test_text_features_are_unit_vectors_of_the_product_text(catalog, tmp_path):
    feats = features(catalog, tmp_path / "ws", modalities=("text",))
    assert feats["text"].shape == (6, 384)
    assert not feats["text_missing"].any()
    np.testing.assert_allclose(np.linalg.norm(feats["text"], axis=1), 1.0, atol=1e-5)
    rings = feats["text"][0] @ feats["text"][1]
    assert rings > feats["text"][0] @ feats["text"][4]  # solitaire ~ eternity band, not ~ tote bag


def test_supplied_embeddings_win_and_align_by_product_id(catalog, tmp_path):
    ids = np.array(["p3", "p1", "p2", "p4"])  # shuffled, p5 and p6 absent
    vectors = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
    encoder = make_image_encoder("mobilenet_v2")
    feats = item_features(catalog, tmp_path / "ws", modalities=("image",), image_model=encoder, progress=False,
                          supplied={"image": (ids, vectors, "catalog-clip")})
    assert encoder.n_batches == 0
    np.testing.assert_array_equal(feats["image"][[0, 1, 2, 3]], vectors[[1, 2, 0, 3]])
    assert not feats["image"][4:].any()
    np.testing.assert_array_equal(feats["image_missing"], [False, False, False, False, True, True])


def test_the_workspace_product_embeddings_table_is_read_by_default(catalog, tmp_path):
    from vendome.data.store import write_tables

    vectors = np.eye(3, 4, dtype=np.float32)
    table = pd.DataFrame({"product_id": ["p2", "p1", "p9"], "modality": "text", "model": "catalog-e5",
                          "vector": list(vectors)})
    write_tables(tmp_path / "ws", {"products": catalog.products, "product_embeddings": table})
    encoder = make_text_encoder("minilm")
    feats = item_features(catalog, tmp_path / "ws", modalities=("text",), text_model=encoder, progress=False)
    assert encoder.n_batches == 0
    np.testing.assert_array_equal(feats["text"][:2], vectors[[1, 0]])
    np.testing.assert_array_equal(feats["text_missing"], [False, False, True, True, True, True])


def test_supplied_embeddings_with_duplicate_ids_are_rejected(catalog, tmp_path):
    with pytest.raises(ValueError, match=r"product_embeddings \(text\), column product_id: duplicate ids p1"):
        item_features(catalog, tmp_path / "ws", modalities=("text",), progress=False,
                      supplied={"text": (np.array(["p1", "p1"]), np.ones((2, 4), np.float32), "m")})


def test_attach_features_returns_the_dataset_with_features(catalog, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vendome.features.embeddings"):
        data = attach_features(catalog, tmp_path / "ws", modalities=("image",), progress=False, supplied={})
    assert catalog.item_features == {}  # the input is not modified
    assert data.features("image").shape == (6, 1280)
    assert modality_names(data.item_features) == ["image"]
    assert data.interactions is catalog.interactions
    assert "3 computed, 0 cached, 3 missing" in caplog.text
    assert "product_id p6" in caplog.text  # the unreadable file is named


def test_unknown_modality_is_a_clear_error(catalog, tmp_path):
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        features(catalog, tmp_path / "ws", modalities=("audio",))


def test_local_image_reading_never_fetches_urls(tmp_path):
    assert local_image_path("https://example.com/a.jpg") == (None, "remote URL (not fetched)")
    assert local_image_path(float("nan")) == (None, "no image_url")
    assert local_image_path(str(tmp_path / "nope.png")) == (None, "file not found")
    (tmp_path / "a.png").write_bytes(b"x")
    assert local_image_path((tmp_path / "a.png").as_uri()) == (tmp_path / "a.png", None)
    assert local_image_path(str(tmp_path)) == (None, "file not found")  # a folder is not an image


def _photo(data, i):
    from PIL import Image

    return Image.open(data.products["image_url"].iloc[i])


def _text(data, i):
    from vendome.features.text import product_text

    return product_text(data.products.iloc[i])
