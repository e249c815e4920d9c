"""Right to be forgotten in the models: after `forget(u)`, client u is scored exactly like a client with no history,
explanations no longer name her pieces, and every other client's scores are untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from helpers import tiny_tables
from vendome.data.dataset import Dataset
from vendome.models import make_model

HER, OTHERS, COLD = 0, [1, 2], 3          # c1 (bought the Serpent ring and earrings), c2, c3, and c4 who did nothing
HER_PIECES = ("Serpent ring", "Serpent pendant", "Serpent earrings")
ALL_ITEMS = np.arange(5)

# name, parameters, a word her explanations contain before she is forgotten (None: the model keeps nothing on her)
MODELS = [
    ("pop", {}, None),
    ("pop-segment", {}, "women"),
    ("itemknn", {}, "Serpent"),
    ("als", {"factors": 4, "iterations": 3}, "Serpent"),
    ("ease", {"regularization": 1.0}, "Serpent"),
    ("content-attributes", {}, "Serpent"),
    ("sasrec", {"epochs": 1, "hidden": 8, "heads": 1, "layers": 1, "validate": False}, "Serpent"),
    ("hybrid", {"weights": {"collaborative": 0.6, "demographic": 0.2, "attributes": 0.2},
                "collaborative": "itemknn"}, "Serpent"),
    ("hybrid", {"validation": "loo", "collaborative": "itemknn", "samples": 5, "refine_steps": 1}, "Serpent"),
    ("mbmf", {"factors": 4, "epochs": 5, "batch_size": 8, "validate": False}, "Serpent"),
    ("mblightgcn", {"factors": 4, "epochs": 5, "batch_size": 8, "validate": False}, "Serpent"),
    ("mclmr:mbmf", {"factors": 4, "epochs": 5, "batch_size": 8, "validate": False, "k_users": 2, "k_items": 2},
     "Serpent"),
    ("lmmrec:mbmf", {"factors": 4, "epochs": 5, "batch_size": 8, "validate": False, "profile": "labels"},
     "Serpent"),
]
IDS = ["pop", "pop-segment", "itemknn", "als", "ease", "content-attributes", "sasrec", "hybrid-linear",
       "hybrid-stacked", "mbmf", "mblightgcn", "mclmr", "lmmrec"]


def boutique() -> Dataset:
    """The tiny boutique, where c3 (a man) also buys the watch, so that women's taste differs from everyone's; plus
    c4, a registered client with no history and no demographics."""
    tables = tiny_tables()
    tables["customers"] = pd.concat([tables["customers"], pd.DataFrame({"customer_id": ["c4"]})], ignore_index=True)
    watch = pd.DataFrame({"interaction_id": ["i-watch"], "customer_id": ["c3"], "product_id": ["W1"],
                          "interaction_type": ["purchase"], "timestamp": [pd.Timestamp("2026-01-08", tz="UTC")]})
    tables["interactions"] = pd.concat([tables["interactions"], watch], ignore_index=True)
    return Dataset.from_tables(tables, name="tiny")


def fitted(name: str, params: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the hybrid drops its visual component: no images here
        return make_model(name, **params).fit(boutique())


@pytest.fixture(scope="module", params=list(zip(MODELS, IDS, strict=True)), ids=IDS)
def model_case(request):
    (name, params, marker), _ = request.param
    return name, params, marker


def test_a_forgotten_client_is_scored_exactly_like_a_client_with_no_history(model_case):
    name, params, marker = model_case
    model = fitted(name, params)
    if marker is not None:  # the model did hold something about her
        assert not np.array_equal(model.score([HER]), model.score([COLD]))
    model.forget(np.array([HER]))
    assert np.array_equal(model.score([HER]), model.score([COLD]))


def test_forgetting_a_client_leaves_every_other_client_untouched(model_case):
    name, params, _ = model_case
    model = fitted(name, params)
    before = model.score(OTHERS + [COLD])
    model.forget(np.array([HER]))
    assert np.array_equal(model.score(OTHERS + [COLD]), before)


def test_explanations_no_longer_mention_her_history(model_case):
    name, params, marker = model_case
    model = fitted(name, params)
    if marker is not None:
        assert any(marker in r.text for r in model.explain(HER, ALL_ITEMS))
    model.forget(np.array([HER]))
    texts = [r.text for r in model.explain(HER, ALL_ITEMS)]
    assert not any(piece in text for piece in HER_PIECES for text in texts)
    assert texts == [r.text for r in model.explain(COLD, ALL_ITEMS)]  # no segment, no history: a stranger's reasons


def test_forget_returns_the_model_and_can_be_repeated():
    model = fitted("itemknn", {})
    assert model.forget(np.array([HER, HER])) is model
    once = model.score([HER])
    model.forget(np.array([HER]))
    assert np.array_equal(model.score([HER]), once)


def test_forgetting_an_index_outside_the_fitted_data_is_a_clear_error():
    model = fitted("ease", {"regularization": 1.0})
    with pytest.raises(IndexError, match=r"cannot forget user indices \[7\].*0\.\.3"):
        model.forget(np.array([7]))
