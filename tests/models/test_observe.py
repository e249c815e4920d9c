"""Fresh events without a refit: after `observe(live, [u])`, client u is scored from her latest events exactly as a
model with the fitted shared parameters and per-user state built from `live` scores her, and every other client's
scores stay as they were."""

from __future__ import annotations

import copy
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from models.test_forget import ALL_ITEMS, COLD, HER, IDS, MODELS, OTHERS, boutique
from vendome.data.dataset import Dataset, behavior_weights
from vendome.models import make_model
from vendome.models.content import decayed_history
from vendome.models.multibehavior import behavior_counts, fold_in
from vendome.models.stacking import ITEM_FEATURES, ContextFeatures
from vendome.training.sequences import Sequences

MULTI_BEHAVIOR = ("mbmf", "mblightgcn", "mclmr", "lmmrec")   # fold-in solves her tables again: not the trained ones
R1, R2, N1, E1, W1 = range(5)       # Serpent ring, Halo ring, Serpent pendant, Serpent earrings, Tourbillon watch
HOUR = 3600

CASES = [*zip(MODELS, IDS, strict=True),
         (("bpr", {"factors": 4, "iterations": 50}, "Serpent"), "bpr"),
         (("cammsr", {"epochs": 1, "hidden": 8, "heads": 1, "layers": 1, "validate": False}, "Serpent"), "cammsr")]


def with_events(data: Dataset, events: list[tuple[int, int, str, int]]) -> Dataset:
    """`data` plus (user, item, behavior, seconds after its last event) rows, weighted and ordered as ingestion
    orders them: the live Dataset the service keeps."""
    inter = data.interactions
    rows = pd.DataFrame(events, columns=["user", "item", "behavior", "timestamp"])
    rows = rows.astype({"user": np.int32, "item": np.int32, "timestamp": np.int64})
    rows["timestamp"] += int(inter["timestamp"].max())
    rows["weight"] = behavior_weights(rows)
    live = pd.concat([inter, rows], ignore_index=True).sort_values(["timestamp", "user"], kind="stable")
    return data.with_interactions(live)


def her_new_day(data: Dataset) -> Dataset:
    """She looks at the Halo ring, wishlists it, and buys the watch (a piece none of her history predicts)."""
    return with_events(data, [(HER, R2, "view", HOUR), (HER, R2, "add_to_wishlist", 2 * HOUR),
                              (HER, W1, "purchase", 3 * HOUR)])


@cache
def _fitted(case: str):
    (name, params, _), = [c for c, i in CASES if i == case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the hybrid drops its visual component: no images here
        return make_model(name, **params).fit(boutique())


def fitted(case: str):
    """A fresh copy of the model fitted on the boutique (fitted once per module)."""
    return copy.deepcopy(_fitted(case))


# ------------------------------------------------------------------------------------ the reference per-user state
def als_factor(y: np.ndarray, w: np.ndarray, alpha: float, reg: float) -> np.ndarray:
    """Hu et al.'s closed form, dense: (Y^T C Y + reg I)^-1 Y^T C p with c = 1 + alpha w and p = [w > 0]."""
    y = y.astype(np.float64)
    c, p = 1.0 + alpha * w, (w > 0).astype(np.float64)
    return np.linalg.solve(y.T @ (c[:, None] * y) + reg * np.eye(y.shape[1]), y.T @ (c * p))


def bpr_gradient(model, user: int) -> np.ndarray:
    """Gradient of her BPR objective (mean over her positives of the popularity-weighted log-sigmoid margins over
    the items she has not chosen, minus reg/2 |x|^2) at her factor; the bias column is not hers to move."""
    history = model.history_.toarray()
    counts = (history > 0).sum(0).astype(np.float64)
    y, x = model.item_factors_.astype(np.float64), model.user_factors_[user].astype(np.float64)
    s = y @ x
    liked = history[user] > 0
    grad = np.zeros(y.shape[1])
    for i in np.flatnonzero(liked):
        for j in np.flatnonzero(~liked & (counts > 0)):
            q = counts[j] / counts[~liked].sum() / liked.sum()
            grad += q * expit(-(s[i] - s[j])) * (y[i] - y[j])
    return (grad - model.regularization * x)[:-1]


def rebuild_everyone(model, data: Dataset) -> None:
    """Per-user state of every client built from `data` the way each fit documents it, shared parameters kept."""
    name = model.name
    if name in ("itemknn", "als"):
        model.history_ = data.matrix()
    if name == "ease":
        model.history_ = data.matrix(binary=True)
    if name.startswith("content"):
        model.history_ = decayed_history(data, model.half_life_days)
    if name == "als":
        for u in range(data.n_users):
            w = model.history_[u].toarray().ravel()
            model.user_factors_[u] = als_factor(model.item_factors_, w, model.alpha, model.regularization)
    if name in ("sasrec", "cammsr"):
        model.sequences_ = Sequences.from_dataset(data, model.behaviors)
    if name.split(":")[0] in MULTI_BEHAVIOR:        # "mclmr:mbmf" too
        model.history_ = data.matrix()
        model.graphs_, model.last_ = behavior_counts(data, model.behaviors_)
        model.user_reps_ = fold_in(model.graphs_, model.item_reps_, model.reg, np.arange(data.n_users),
                                   seed=model.seed)
    if name == "hybrid":
        for component in model.components_.values():
            rebuild_everyone(component, data)
        if getattr(model, "context_", None) is not None:
            fresh = ContextFeatures.fit(data)
            model.context_.user, model.context_.engagement = fresh.user, fresh.engagement
            model.context_.groups = fresh.groups


# models whose scores for her stay put: pop keeps nothing on her, and her segment comes from the customers table
UNMOVED = ("pop", "pop-segment")
WITH_NOTES = [i for _, i in CASES if i not in UNMOVED]


@pytest.fixture(params=[i for _, i in CASES if i != "bpr"])
def case(request) -> str:
    return request.param


@pytest.fixture(params=[i for _, i in CASES])
def any_case(request) -> str:
    return request.param


# ------------------------------------------------------------------------------------------------- properties
def test_her_next_scores_read_her_new_events_as_fit_would_have(case):
    model, reference = fitted(case), fitted(case)
    live = her_new_day(boutique())
    before = model.score([HER])
    assert model.observe(live, np.array([HER])) is model
    rebuild_everyone(reference, live)
    assert np.allclose(model.score([HER]), reference.score([HER]), atol=1e-5)
    if case not in UNMOVED:
        assert not np.allclose(model.score([HER]), before, atol=1e-3)


def test_observing_her_leaves_every_other_client_untouched(any_case):
    model = fitted(any_case)
    before = model.score(OTHERS + [COLD])
    model.observe(her_new_day(boutique()), np.array([HER]))
    assert np.array_equal(model.score(OTHERS + [COLD]), before)


@pytest.mark.parametrize("case", [i for _, i in CASES if i not in ("als", "bpr", *MULTI_BEHAVIOR)])
def test_observing_the_data_it_was_fitted_on_changes_nothing(case):
    """Her rows are built exactly as fit built them: same weights, binarisation, decay, journeys, context."""
    model = fitted(case)
    before = model.score(np.arange(4))
    model.observe(boutique(), np.arange(4))
    assert np.array_equal(model.score(np.arange(4)), before)


def test_observing_twice_is_observing_once(any_case):
    model = fitted(any_case)
    live = her_new_day(boutique())
    once = model.observe(live, np.array([HER])).score([HER])
    assert np.array_equal(model.observe(live, np.array([HER, HER])).score([HER]), once)


@pytest.mark.parametrize("case", WITH_NOTES)
def test_her_new_purchase_is_in_her_notes_and_history(case):
    model = fitted(case)
    model.observe(her_new_day(boutique()), np.array([HER]))
    holders = list(model.components_.values()) if model.name == "hybrid" else [model]
    for m in (h for h in holders if hasattr(h, "notes_")):
        assert m.notes_.behavior(HER, W1) == "purchase"
        assert m.notes_.behavior(HER, R2) == "add_to_wishlist"
        if m.name in ("sasrec", "cammsr"):
            assert m.sequences_.items[HER][-2:].tolist() == [R2, W1]
            assert m.sequences_.intent[HER][-2:].tolist() == [False, True]
        else:
            assert m.history_[HER, W1] > 0


def test_after_forget_observe_brings_her_back_from_the_given_data_alone(any_case):
    _, _, marker = next(c for c, i in CASES if i == any_case)
    live = her_new_day(boutique())
    observed = fitted(any_case).observe(live, np.array([HER]))
    returning = fitted(any_case).forget(np.array([HER])).observe(live, np.array([HER]))
    assert np.array_equal(returning.score([HER]), observed.score([HER]))
    texts = [r.text for r in returning.explain(HER, ALL_ITEMS)]
    assert texts == [r.text for r in observed.explain(HER, ALL_ITEMS)]
    if marker is not None:  # she is a known client again, explained unlike a stranger
        assert texts != [r.text for r in returning.explain(COLD, ALL_ITEMS)]


# ------------------------------------------------------------------------------------------------- per model
def test_als_solves_her_factor_in_closed_form_against_the_fitted_items():
    model = fitted("als")
    items = model.item_factors_.copy()
    live = her_new_day(boutique())
    model.observe(live, np.array([HER]))
    expected = als_factor(items, live.matrix().toarray()[HER], model.alpha, model.regularization)
    assert np.allclose(model.user_factors_[HER], expected, atol=1e-5)
    assert np.array_equal(model.item_factors_, items)


def test_als_on_the_data_it_was_fitted_on_moves_each_factor_to_the_minimum_of_her_loss():
    """implicit's fit ends on the item half-step (and takes 3 CG steps per user), so fit's user factors are a step
    behind the final item factors; observing unchanged data completes that step exactly, so her loss can only drop."""
    model = fitted("als")
    weights = boutique().matrix().toarray()

    def loss(u: int) -> float:
        c, p = 1.0 + model.alpha * weights[u], (weights[u] > 0).astype(np.float64)
        x = model.user_factors_[u].astype(np.float64)
        return float(c @ (p - model.item_factors_ @ x) ** 2 + model.regularization * x @ x)

    users = np.flatnonzero(weights.any(1))
    fit_loss = [loss(u) for u in users]
    model.observe(boutique(), users)
    assert all(loss(u) <= before + 1e-6 for u, before in zip(users, fit_loss, strict=True))
    assert sum(map(loss, users)) < sum(fit_loss)


def test_als_recommendations_follow_her_into_the_other_taste(blocks):
    """A block-A client who buys three block-B pieces is now shown the rest of block B first."""
    data, user_block, item_block = blocks
    model = make_model("als", factors=8, iterations=10).fit(data)
    u = int(np.flatnonzero(user_block == 0)[0])
    b_pieces = np.flatnonzero(item_block == 1)
    live = with_events(data, [(u, int(i), "purchase", HOUR * (k + 1)) for k, i in enumerate(b_pieces[:3])])
    before = model.score([u])[0]
    model.observe(live, np.array([u]))
    after = model.score([u])[0]
    rest_of_b = b_pieces[3:]
    assert before[rest_of_b].mean() < before[item_block == 0].mean()
    assert after[rest_of_b].mean() > before[rest_of_b].mean() + 0.1


@pytest.fixture(scope="module")
def bpr_on_blocks(blocks):
    data, _, _ = blocks
    return make_model("bpr", factors=8, iterations=100, regularization=0.1).fit(data)


def test_bpr_on_the_data_it_was_fitted_on_finds_the_factor_its_training_converged_to(blocks, bpr_on_blocks):
    """The fold-in is the fixed point of implicit's SGD on her factor, which keeps each factor within SGD's noise."""
    model = copy.deepcopy(bpr_on_blocks)
    data, _, _ = blocks
    trained = model.user_factors_.copy()
    model.observe(data, np.arange(data.n_users))
    cosine = (trained * model.user_factors_).sum(1) / np.linalg.norm(trained, axis=1) / np.linalg.norm(
        model.user_factors_, axis=1)
    assert np.median(cosine) > 0.99 and cosine.min() > 0.95


def test_bpr_puts_her_factor_at_the_optimum_of_her_ranking_objective(blocks, bpr_on_blocks):
    """A block-A client buys three block-B pieces: her factor maximises her BPR objective, and block B rises."""
    model = copy.deepcopy(bpr_on_blocks)
    data, user_block, item_block = blocks
    u = int(np.flatnonzero(user_block == 0)[0])
    b_pieces = np.flatnonzero(item_block == 1)
    before = model.score([u])[0]
    model.observe(with_events(data, [(u, int(i), "purchase", HOUR * (k + 1)) for k, i in enumerate(b_pieces[:3])]),
                  np.array([u]))
    assert model.user_factors_[u, -1] == 1.0                   # the item-bias column stays switched on
    assert np.abs(bpr_gradient(model, u)).max() < 1e-6
    assert model.score([u])[0, b_pieces[3:]].mean() > before[b_pieces[3:]].mean() + 0.3


@pytest.mark.parametrize("name", ["sasrec", "cammsr"])
def test_a_sequence_model_reads_the_piece_she_viewed_a_moment_ago(name):
    model = fitted(name)
    live = with_events(boutique(), [(HER, R2, "view", 60)])
    before = model.score([HER])
    model.observe(live, np.array([HER]))
    assert model.sequences_.items[HER][-1] == R2
    assert not np.allclose(model.score([HER]), before)
    assert np.allclose(model.score([HER]), model.score([HER], seqs=Sequences.from_dataset(live)), atol=1e-6)


def test_the_stacked_hybrid_refreshes_her_context_and_keeps_the_item_context():
    model = fitted("hybrid-stacked")
    item = model.context_.item.copy()
    live = her_new_day(boutique())
    model.observe(live, np.array([HER]))
    fresh = ContextFeatures.fit(live)
    assert np.array_equal(model.context_.item, item)
    for (name, block), (_, expected) in zip(model.context_.blocks([HER]), fresh.blocks([HER]), strict=True):
        if name not in ITEM_FEATURES:
            assert np.allclose(block, expected), name


def test_pop_segment_gives_a_forgotten_client_her_segment_back():
    model = fitted("pop-segment")
    segment = model.segment_.copy()
    model.forget(np.array([HER])).observe(boutique(), np.array([HER]))
    assert np.array_equal(model.segment_, segment)
    assert model.segment_label(HER) is not None


# ------------------------------------------------------------------------------------------------- errors
def test_observing_an_index_outside_the_fitted_data_is_a_clear_error():
    model = fitted("ease")
    with pytest.raises(IndexError, match=r"cannot observe user indices \[7\].*0\.\.3"):
        model.observe(boutique(), np.array([7]))


def test_observing_another_catalog_is_a_clear_error():
    data = boutique()
    smaller = Dataset(data.products.iloc[:4], data.customers, data.interactions[data.interactions["item"] < 4])
    for case in ("pop", "itemknn", "hybrid-linear"):
        with pytest.raises(ValueError, match=r"fitted on 4 customers x 5 products"):
            fitted(case).observe(smaller, np.array([HER]))


def test_observing_before_fitting_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        make_model("itemknn").observe(boutique(), np.array([HER]))
