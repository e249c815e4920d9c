"""Behavior-aware base models (mbmf, mblightgcn) and the MCLMR plug-in: the graphs and confounders they read, what
they learn on a planted funnel, the exactness of the backdoor formula, the switches, and the reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.model_fixtures import customers, dataset, products
from vendome.data.dataset import Dataset
from vendome.models import make_model
from vendome.models.mclmr import MCLMR, MCLMRNet, Strata
from vendome.models.multibehavior import BehaviorGraphs, fold_in, hold_out_last_target

FAST = {"factors": 8, "epochs": 40, "batch_size": 64, "lr": 0.05, "validate": False}


def funnel(n_users: int = 24, n_items: int = 16, seed: int = 0) -> Dataset:
    """Two tastes. Every client views six pieces of her block, carts three of those and buys two of the carted
    ones; the last client of each block only browses (views, no purchase)."""
    rng = np.random.default_rng(seed)
    block = np.arange(n_items) % 2
    events = []
    for u in range(n_users):
        mine = rng.permutation(np.flatnonzero(block == u % 2))[:6]
        events += [(u, int(i), "view", float(d)) for d, i in enumerate(mine)]
        if u >= n_users - 2:
            continue
        events += [(u, int(i), "add_to_cart", 6.0 + d) for d, i in enumerate(mine[:3])]
        events += [(u, int(i), "purchase", 9.0 + d) for d, i in enumerate(mine[:2])]
    titles = [f"{'Serpent' if b == 0 else 'Halo'} piece {i}" for i, b in enumerate(block)]
    return dataset(products(titles), customers(n_users), events, name="funnel")


@pytest.fixture(scope="module")
def data() -> Dataset:
    return funnel()


@pytest.fixture(scope="module")
def fitted(data):
    models = {name: make_model(name, seed=0, **FAST).fit(data) for name in ("mbmf", "mblightgcn", "mclmr:mbmf")}
    models["mclmr:mblightgcn"] = make_model("mclmr:mblightgcn", seed=0, k_users=3, k_items=3, **FAST).fit(data)
    return models


# ---------------------------------------------------------------------------------------------- graphs
def test_graphs_follow_the_funnel_with_the_target_last(data):
    g = BehaviorGraphs.from_dataset(data)
    assert g.behaviors == ("view", "add_to_cart", "purchase")
    assert [m.nnz for m in g.matrices] == [24 * 6, 22 * 3, 22 * 2]
    habits = g.habits()
    assert np.allclose(habits[:, :3].sum(1), 1.0)
    assert np.allclose(habits[0, :3], [6 / 11, 3 / 11, 2 / 11])
    assert habits[23, 2] == 0 and habits[23, 0] == 1.0      # the browser: views only
    profiles = g.profiles()
    assert np.all((profiles[:, -1] > 0) & (profiles[:, -1] < 1))   # smoothed view-to-buy rate


def test_adjacency_is_symmetric_and_normalised(data):
    g = BehaviorGraphs.from_dataset(data)
    a = g.adjacency(0).to_dense().numpy()
    assert np.allclose(a, a.T)
    degree = (a > 0).sum(1)
    u, i = 0, g.matrices[0][0].indices[0]
    assert math.isclose(a[u, g.n_users + i], 1 / math.sqrt(degree[u] * degree[g.n_users + i]), rel_tol=1e-5)


def test_unknown_behaviors_and_missing_target_are_errors(data):
    with pytest.raises(ValueError, match="unknown behaviors"):
        BehaviorGraphs.from_dataset(data, ("view", "like"))
    views = data.with_interactions(data.interactions[data.interactions["behavior"] == "view"])
    with pytest.raises(ValueError, match="no purchase events"):
        BehaviorGraphs.from_dataset(views)


def test_validation_holds_out_the_last_purchase_only(data):
    g = BehaviorGraphs.from_dataset(data)
    kept, users, items = hold_out_last_target(data, g, None, seed=0)
    assert len(users) == 22
    for u, i in zip(users, items, strict=True):
        assert g.matrices[-1][u, i] == 1 and kept.matrices[-1][u, i] == 0
        assert kept.matrices[0][u, i] == 1                 # her view of it stays, as a test purchase's does
    assert kept.matrices[-1].nnz == g.matrices[-1].nnz - 22


# ---------------------------------------------------------------------------------------------- learning
@pytest.mark.parametrize("name", ["mbmf", "mblightgcn", "mclmr:mbmf", "mclmr:mblightgcn"])
def test_models_recommend_her_own_taste_and_carry_it_to_the_browser(fitted, data, name):
    model = fitted[name]
    block = np.arange(data.n_items) % 2
    scores = model.score(np.arange(data.n_users))
    bought = data.target_matrix().toarray() > 0
    scores[bought] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :3]
    in_block = block[top] == (np.arange(data.n_users) % 2)[:, None]
    assert in_block.mean() >= 0.9, name
    assert in_block[-2:].all(), f"{name}: the two browsers get their block from their views alone"


def test_mclmr_registry_names_its_base():
    assert make_model("mclmr:mblightgcn").base == "mblightgcn"
    with pytest.raises(ValueError, match="valid bases: mbmf, mblightgcn"):
        make_model("mclmr:ease")
    with pytest.raises(ValueError, match="wraps 'mbmf'"):
        make_model("mclmr:mbmf", base="mblightgcn")


def test_bad_switches_are_errors(data):
    with pytest.raises(ValueError, match="adjustment must be one of backdoor, observed, none"):
        MCLMR(adjustment="average", **FAST).fit(data)
    with pytest.raises(ValueError, match="same_stratum_weight"):
        MCLMR(same_stratum_weight=0.0, **FAST).fit(data)


# ---------------------------------------------------------------------------------------------- the causal part
def test_backdoor_score_is_the_prior_weighted_sum_over_every_pair_of_strata(fitted, data):
    model = fitted["mclmr:mbmf"]
    rng = np.random.default_rng(1)
    model.t_user_ = rng.normal(size=model.t_user_.shape).astype(np.float32)   # strata that matter
    model.t_item_ = rng.normal(size=model.t_item_.shape).astype(np.float32)
    users = np.arange(data.n_users)
    ut, it = model.user_reps_[-1][users], model.item_reps_[-1]
    e = model.evidence_tables(users)
    assert e[0].sum() == data.matrix(("view",)).nnz and e[-1].sum() == 0     # her views, never the label
    experts = np.stack([(model.user_reps_[b][users] @ model.w_[b]) @ model.item_reps_[b].T for b in range(3)])
    s = (model.gate_tables(users) * (experts + model.beta_[:, None, None] * e)).sum(0)
    brute = np.zeros_like(s)
    for k, pk in enumerate(model.strata_.user_prior):
        for ell, pl in enumerate(model.strata_.item_prior):
            tk, tl = model.t_user_[k], model.t_item_[ell]
            y = s + ((ut + tk) @ tl)[:, None] + (it @ tk)[None, :]          # y(u, i, k, l), eq. (2)
            brute += pk * pl * y
    assert np.allclose(model.score_tables(users), brute, atol=1e-4)


def test_observed_adjustment_conditions_on_her_stratum_and_none_ignores_strata(fitted, data):
    model = fitted["mclmr:mbmf"]
    rng = np.random.default_rng(2)
    model.t_user_ = rng.normal(size=model.t_user_.shape).astype(np.float32)
    model.t_item_ = rng.normal(size=model.t_item_.shape).astype(np.float32)
    users = np.arange(data.n_users)
    backdoor = model.score_tables(users)
    model.adjustment = "observed"
    observed = model.score_tables(users)
    model.adjustment = "none"
    none = model.score_tables(users)
    model.adjustment = "backdoor"
    ut, it = model.user_reps_[-1], model.item_reps_[-1]
    tk, tl = model.t_user_[model.strata_.users], model.t_item_[model.strata_.items]
    assert np.allclose(observed - none, (ut + tk) @ tl.T + tk @ it.T, atol=1e-4)
    assert not np.allclose(observed, backdoor, atol=1e-3)


def test_strata_priors_are_their_shares(data):
    strata = Strata(BehaviorGraphs.from_dataset(data), k_users=3, k_items=4, seed=0)
    assert len(strata.user_prior) == 2           # two distinct habits (buyers alike, browsers alike): no empty stratum
    assert math.isclose(strata.user_prior.sum(), 1.0, rel_tol=1e-6)
    assert np.allclose(strata.user_prior, np.bincount(strata.users) / data.n_users)
    browsers = strata.users[-2:]
    assert browsers[0] == browsers[1] and (strata.users[:-2] != browsers[0]).all()   # habits set them apart
    assert len(strata.item_prior) == 4


def test_contrastive_term_is_infonce_with_same_stratum_negatives_down_weighted(data):
    g = BehaviorGraphs.from_dataset(data)
    model = MCLMR(k_users=2, k_items=2, **FAST)
    model.prepare(data, g)
    net: MCLMRNet = model.build(g)
    users, items = net.reps()
    rows = torch.arange(6)
    strata = torch.tensor([0, 0, 1, 1, 0, 1] + [0] * (g.n_users - 6))
    got = net.contrastive(users, rows, strata)
    a = F.normalize(users[-1][rows], dim=-1)
    same = (strata[rows][:, None] == strata[rows][None, :]) & ~torch.eye(6, dtype=torch.bool)
    expected = []
    for b in range(2):
        p = F.normalize(users[b][rows], dim=-1)
        logits = a @ p.T / net.temperature + same.float() * math.log(0.5)
        both = [F.cross_entropy(logits, torch.arange(6)), F.cross_entropy(logits.T, torch.arange(6))]
        expected.append(sum(both) / 2)
    assert torch.allclose(got, torch.stack(expected).mean(), atol=1e-5)


# ---------------------------------------------------------------------------------------------- serving surface
def test_reasons_name_what_she_did_and_which_behavior_led(fitted, data):
    model = fitted["mclmr:mbmf"]
    carted = data.interactions.query("user == 20 and behavior == 'add_to_cart'")["item"].to_numpy()
    unseen = np.setdiff1d(np.flatnonzero(np.arange(data.n_items) % 2 == 0),
                          data.interactions.query("user == 20")["item"].to_numpy())
    reasons = model.explain(20, np.array([carted[-1], unseen[0]]))
    assert reasons[0].text.startswith("the client added it to the cart (last on 9 Jan 2026) and viewed it "
                                      "(last on 3 Jan")
    assert "led by the client's" in reasons[0].text
    assert reasons[0].signals["count_cart"] == 1 and reasons[0].signals["count_views"] == 1
    shares = [v for k, v in reasons[0].signals.items() if k.startswith("behavior_")]
    assert math.isclose(sum(shares), 1.0, rel_tol=1e-5) and len(shares) == 3
    assert "close to" in reasons[1].text and "adjusted for habits and popularity" in reasons[1].text


def test_save_load_round_trip_scores_the_same(fitted, tmp_path):
    from vendome.models.base import Recommender

    for name in ("mblightgcn", "mclmr:mbmf"):
        model = fitted[name]
        loaded = Recommender.load(model.save(tmp_path / f"{name}.pkl"))
        assert np.array_equal(loaded.score(np.arange(5)), model.score(np.arange(5)))


def test_fold_in_is_per_client_and_ranks_her_pieces_first(fitted, data):
    model = fitted["mbmf"]
    rows = [m[[3, 4]] for m in model.graphs_]
    alone = fold_in([m[[4]] for m in model.graphs_], model.item_reps_, model.reg, np.array([4]))
    together = fold_in(rows, model.item_reps_, model.reg, np.array([3, 4]))
    assert np.allclose(alone[:, 0], together[:, 1])
    views = model.graphs_[0][4].indices
    scores = model.item_reps_[0] @ together[0, 1]
    assert set(np.argsort(-scores)[:len(views)]) == set(views)
