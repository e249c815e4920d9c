import numpy as np
import pytest

from vendome.models import make_model

FAST = {"als": {"factors": 4, "iterations": 15, "regularization": 1.0},
        "bpr": {"factors": 8, "iterations": 200, "learning_rate": 0.05},
        "ease": {"regularization": 5.0}}


def _unseen_top(model, data, users, k):
    scores = model.score(users)
    scores[data.target_matrix()[users].toarray() > 0] = -np.inf   # what she bought is excluded when serving
    return np.argsort(-scores, axis=1)[:, :k]


@pytest.mark.parametrize("name", ["als", "bpr", "ease"])
def test_collaborative_models_recover_planted_tastes(name, blocks):
    data, user_block, item_block = blocks
    model = make_model(name, **FAST[name]).fit(data)
    users = np.arange(data.n_users)
    top = _unseen_top(model, data, users, k=3)
    agree = item_block[top] == user_block[:, None]
    assert agree.mean() > 0.95, f"{name}: only {agree.mean():.0%} of recommendations match the client's block"


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factorization_is_reproducible_for_a_seed(name, blocks):
    data = blocks[0]
    a = make_model(name, seed=3, **FAST[name]).fit(data).score(np.arange(4))
    b = make_model(name, seed=3, **FAST[name]).fit(data).score(np.arange(4))
    assert np.array_equal(a, b)


def test_items_never_seen_in_training_get_no_collaborative_score(blocks):
    data = blocks[0]
    no_events = data.with_interactions(data.interactions[data.interactions["item"] != 7])
    model = make_model("als", **FAST["als"]).fit(no_events)
    assert not model.item_factors_[7].any()
    assert np.all(model.score(np.arange(5))[:, 7] == 0.0)
