import numpy as np
import pytest

from training.journeys import cycle_boutique
from vendome.models.base import Recommender
from vendome.models.sasrec import SASRec

FAST = {"hidden": 16, "heads": 2, "layers": 1, "dropout": 0.0, "max_len": 10, "batch_size": 16, "lr": 0.01}


@pytest.fixture(scope="module")
def fitted():
    data = cycle_boutique()
    return data, SASRec(epochs=40, patience=5, **FAST).fit(data)


def test_sasrec_learns_which_piece_comes_next(fitted):
    data, model = fitted
    users = np.arange(data.n_users)
    top = np.argmax(model.score(users), axis=1)
    last = np.array([model.sequences_.items[u][-1] for u in users])
    assert np.mean(top == (last + 1) % data.n_items) > 0.9


def test_early_stopping_validated_on_the_held_out_last_steps(fitted):
    _, model = fitted
    h = model.history_
    assert h.metrics and h.best_metric > 0.8          # NDCG@10 of the held-out step, through `recommend`
    assert h.best_epoch == max(h.metrics, key=lambda m: m[1])[0]


def test_the_same_seed_trains_the_same_model():
    data = cycle_boutique(n_users=20)
    a = SASRec(epochs=3, validate=False, seed=4, **FAST).fit(data).score(np.arange(5))
    b = SASRec(epochs=3, validate=False, seed=4, **FAST).fit(data).score(np.arange(5))
    assert np.array_equal(a, b)


def test_saved_model_scores_the_same(fitted, tmp_path):
    _, model = fitted
    again = Recommender.load(model.save(tmp_path / "sasrec.pkl"))
    assert np.array_equal(again.score(np.arange(4)), model.score(np.arange(4)))


def test_explanation_points_at_the_step_the_recommendation_follows(fitted):
    data, model = fitted
    nxt = (model.sequences_.items[0][-1] + 1) % data.n_items
    reason = model.explain(0, np.array([nxt]))[0]
    assert reason.code == "sequence" and "follows" in reason.text


def test_hidden_must_split_into_heads():
    with pytest.raises(ValueError, match="multiple of heads"):
        SASRec(hidden=10, heads=3).fit(cycle_boutique(n_users=5))
