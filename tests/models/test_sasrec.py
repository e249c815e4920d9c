import numpy as np
import pytest

from models.model_fixtures import customers, dataset, products
from training.journeys import cycle_boutique
from vendome.models.base import Recommender
from vendome.models.sasrec import SASRec
from vendome.training.sequences import KINDS, Sequences

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


def carted_or_viewed(n_users: int = 800, held: int = 200, seed: int = 0):
    """Each client views one of two pieces and carts the other (in random order, a day apart), then buys the
    companion of the carted one (piece k + 10). Only the behavior type tells which step to follow; the last `held`
    clients have not bought yet."""
    rng = np.random.default_rng(seed)
    events, carted = [], []
    for u in range(n_users):
        a, b = rng.choice(10, 2, replace=False)
        cart_first = rng.random() < 0.5
        events += [(u, int(a), "add_to_cart" if cart_first else "view", 0.0),
                   (u, int(b), "view" if cart_first else "add_to_cart", 1.0)]
        carted.append(int(a if cart_first else b))
        if u < n_users - held:
            events.append((u, carted[-1] + 10, "purchase", 2.0))
    titles = [f"piece {i}" for i in range(20)]
    return dataset(products(titles), customers(n_users), events, name="carted"), np.array(carted)


def test_behavior_tokens_let_the_journey_tell_a_cart_from_a_glance():
    data, carted = carted_or_viewed()
    held = np.arange(600, 800)
    hits = {}
    for tokens in (False, True):
        model = SASRec(hidden=16, layers=1, heads=1, dropout=0.1, epochs=40, batch_size=64, lr=5e-3,
                       validate=False, behavior_tokens=tokens).fit(data)
        top = model.score(held).argmax(1)
        hits[tokens] = float((top == carted[held] + 10).mean())
    assert hits[True] >= 0.9, hits
    assert hits[False] <= 0.7, hits                    # a coin toss between the two pieces she touched
    seqs = Sequences.from_dataset(data, kinds=True)
    assert seqs.kinds[0].max() == KINDS.index("purchase") + 1
    assert set(seqs.kinds[700]) == {KINDS.index("view") + 1, KINDS.index("add_to_cart") + 1}
