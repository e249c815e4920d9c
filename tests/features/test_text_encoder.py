"""The offline text encoder (all-MiniLM-L6-v2 from its PyPI package) and the product text it reads."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from vendome.features.text import make_text_encoder, minilm_dir, product_text, product_texts


@pytest.fixture(scope="module")
def minilm():
    return make_text_encoder("minilm")


def test_minilm_weights_come_from_the_installed_package():
    path = minilm_dir()
    assert "site-packages" in str(path) and (path / "model.safetensors").is_file()


def test_minilm_gives_384_d_unit_vectors(minilm):
    vectors = minilm.encode(["Diamond solitaire ring in platinum", "Leather tote bag"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    a, paraphrase, unrelated = minilm.encode([
        "A platinum engagement ring set with a round diamond",
        "Round-cut diamond solitaire engagement ring in platinum",
        "Waterproof hiking boots with a rubber sole",
    ])
    assert a @ paraphrase > 0.7
    assert a @ paraphrase > a @ unrelated + 0.4


def test_encoder_counts_its_batches():
    encoder = make_text_encoder("minilm", batch_size=2)
    encoder.encode(["one", "two", "three"])
    assert encoder.n_batches == 2


def test_product_text_joins_present_fields_with_description_last():
    row = {"title": "Eternity band", "description": "Sapphires set all around.", "category": "rings",
           "subcategory": None, "material": "white gold", "color": float("nan"), "stone_type": "sapphire",
           "collection": "", "brand": "Vendome"}
    assert product_text(row) == ("Eternity band. Category: rings. Material: white gold. Stone: sapphire. "
                                 "Brand: Vendome. Sapphires set all around")


def test_product_texts_follow_catalog_rows():
    products = pd.DataFrame({"title": ["Ring", "Bag"], "brand": ["A", "B"]})
    assert product_texts(products) == ["Ring. Brand: A", "Bag. Brand: B"]


def test_unknown_text_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown text model 'bert-huge'.*minilm"):
        make_text_encoder("bert-huge")
    with pytest.raises(FileNotFoundError, match="config.json.*never downloaded"):
        make_text_encoder(str(tmp_path))
