"""The evaluator: full ranking through the serving path, honest numbers, failures recorded, seeds averaged."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from evaluate.eval_fixtures import (
    COLD_USERS,
    HEAVY_USERS,
    NEW_ITEMS,
    Broken,
    Forbidden,
    Oracle,
    Popularity,
    RandomScores,
    Tunable,
    make,
)
from vendome.data.dataset import Dataset
from vendome.data.splits import Split
from vendome.evaluate.beyond import guardrail_violations
from vendome.evaluate.run import evaluate, run_protocol
from vendome.recommend import recommend

ACCURACY_KEYS = [f"{m}@{k}" for k in (5, 10, 20) for m in ("hr", "ndcg", "recall", "mrr", "map")]


def test_a_model_that_knows_the_targets_scores_perfectly(boutique_split):
    report = evaluate(boutique_split, {"oracle": Oracle(boutique_split.test).fit(boutique_split.train)},
                      progress=False)
    entry = report["models"]["oracle"]
    assert entry["hr@10"] == 1.0 and entry["ndcg@10"] == pytest.approx(1.0)
    assert entry["recall@20"] == 1.0 and entry["mrr@5"] == 1.0


def test_random_scores_hit_about_k_over_catalog_size():
    """2,000 users, one target each among 200 items: HR@10 of random lists is 10/200."""
    rng = np.random.default_rng(1)
    n_users, n_items = 2000, 200
    products = pd.DataFrame({"product_id": [f"P{i}" for i in range(n_items)], "title": "x", "category": "rings",
                             "brand": "a", "price": 1.0, "stock_status": "in_stock"})
    views = pd.DataFrame({"customer_id": [f"C{u}" for u in range(n_users)], "product_id": "P0",
                          "interaction_type": "view", "timestamp": 1})
    data = Dataset.from_tables({"products": products, "interactions": views})
    test = sp.csr_matrix((np.ones(n_users), (np.arange(n_users), rng.integers(0, n_items, n_users))),
                         shape=(n_users, n_items))
    split = Split(train=data, test=test, users=np.arange(n_users), protocol="temporal")
    entry = evaluate(split, {"random": RandomScores(seed=3).fit(data)}, progress=False)["models"]["random"]
    assert entry["hr@10"] == pytest.approx(10 / n_items, abs=0.02)
    assert entry["hr@20"] == pytest.approx(20 / n_items, abs=0.025)


def test_report_holds_every_metric_at_every_cutoff_and_the_beyond_accuracy_measures(boutique_split):
    entry = evaluate(boutique_split, {"pop": Popularity().fit(boutique_split.train)}, progress=False)["models"]["pop"]
    for key in [*ACCURACY_KEYS, "coverage@10", "gini@10", "ild_category@10", "ild_brand@10", "novelty@10",
                "price_tier_consistency@10", "guardrail_violations", "eval_seconds", "params", "slices",
                "exposure", "seeds", "std"]:
        assert key in entry, key
    assert entry["ild_embedding@10"] is None  # the boutique has no item features


def test_embedding_diversity_is_reported_when_items_have_image_features(boutique_split):
    train = boutique_split.train
    features = np.random.default_rng(0).standard_normal((train.n_items, 8)).astype(np.float32)
    split = Split(train=Dataset(train.products, train.customers, train.interactions, item_features={"image": features}),
                  test=boutique_split.test, users=boutique_split.users, protocol="temporal")
    entry = evaluate(split, {"pop": Popularity().fit(split.train)}, progress=False)["models"]["pop"]
    assert 0.5 < entry["ild_embedding@10"] < 1.5  # random directions: cosine distance around 1


def test_guardrails_hold_even_for_a_model_that_wants_to_break_them(boutique_split):
    """Forbidden ranks sold-out and already-bought pieces first; the served lists must contain neither."""
    entry = evaluate(boutique_split, {"forbidden": Forbidden().fit(boutique_split.train)},
                     progress=False)["models"]["forbidden"]
    assert entry["guardrail_violations"] == 0
    assert entry["guardrails"] == {"total": 0, "out_of_stock": 0, "not_launched": 0, "purchased": 0, "duplicates": 0}


def test_a_temporal_split_never_serves_a_piece_launched_after_its_cutoff(boutique_split):
    """The lists are 'served' at the cutoff: a product created later cannot be on them, however well it scores."""
    train = copy.copy(boutique_split.train)  # the fixture is shared: change a copy of its catalog
    cutoff = pd.Timestamp("2025-06-01", tz="UTC")
    late = np.arange(train.n_items) % 3 == 0
    train.products = train.products.copy()
    train.products["created_date"] = np.where(late, cutoff + pd.Timedelta(days=3), cutoff - pd.Timedelta(days=90))
    timed = Split(train, boutique_split.test, boutique_split.users, "temporal", {"cutoff": int(cutoff.timestamp())})
    model = Oracle(boutique_split.test).fit(train)
    entry = evaluate(timed, {"oracle": model}, progress=False)["models"]["oracle"]
    assert entry["guardrails"]["not_launched"] == 0
    items, _ = recommend(model, timed.users, k=10)  # the same model without the rule does reach for them
    assert guardrail_violations(items, timed.users, train, now=cutoff.timestamp())["not_launched"] > 0


def test_the_guardrail_check_catches_lists_served_without_the_rules(boutique_split):
    """The counterpart of the test above: the same model's unfiltered lists do break both guardrails."""
    items, _ = recommend(Forbidden().fit(boutique_split.train), boutique_split.users, k=10)
    found = guardrail_violations(items, boutique_split.users, boutique_split.train)
    assert found["out_of_stock"] > 0 and found["purchased"] > 0


def test_slice_counts_add_up_to_the_test_users(boutique_split):
    entry = evaluate(boutique_split, {"pop": Popularity().fit(boutique_split.train)}, progress=False)["models"]["pop"]
    slices = entry["slices"]
    counts = {s: slices[s]["users"] for s in ("cold", "warm", "regular", "heavy")}
    assert sum(counts.values()) == len(boutique_split.users)
    assert counts["cold"] == len(COLD_USERS)
    assert counts["heavy"] == len(HEAVY_USERS)
    new_targets = int(boutique_split.test[:, list(NEW_ITEMS)].sum())
    assert slices["new_items"]["targets"] == new_targets > 0
    assert slices["new_items"]["recall@10"] == 0.0  # popularity cannot rank never-seen items


def test_a_failing_model_is_recorded_and_the_others_go_on(boutique_split):
    broken = Broken()
    broken.n_items_ = boutique_split.train.n_items
    report = evaluate(boutique_split, {"broken": broken, "pop": Popularity().fit(boutique_split.train)},
                      progress=False)
    assert report["models"]["broken"]["error"] == "RuntimeError: scoring failed"
    assert report["models"]["pop"]["ndcg@10"] >= 0
    assert report["significance"]["best"] == "pop"


def test_several_seeds_give_means_std_and_per_user_averages(boutique_split):
    models = [RandomScores(seed=s).fit(boutique_split.train) for s in (0, 1, 2)]
    report = evaluate(boutique_split, {"random": models}, seeds=[10, 11, 12], progress=False)
    entry = report["models"]["random"]
    singles = [evaluate(boutique_split, {"r": m}, progress=False) for m in models]
    per_seed = [s["models"]["r"]["ndcg@10"] for s in singles]
    assert entry["seeds"] == {"10": per_seed[0], "11": per_seed[1], "12": per_seed[2]}
    assert entry["ndcg@10"] == pytest.approx(np.mean(per_seed))
    assert entry["std"]["ndcg@10"] == pytest.approx(np.std(per_seed, ddof=1))
    averaged = np.mean([s["per_user"]["models"]["r"]["hr@5"] for s in singles], axis=0)
    np.testing.assert_allclose(report["per_user"]["models"]["random"]["hr@5"], averaged)


def test_run_protocol_fits_stochastic_models_per_seed_and_deterministic_ones_once(boutique):
    report = run_protocol(boutique, {"pop": {"model": "popularity"}, "random": {}}, "temporal", seeds=(0, 1, 2),
                          progress=False, make=make)
    pop, rnd = report["models"]["pop"], report["models"]["random"]
    assert pop["deterministic"] and list(pop["seeds"]) == ["deterministic"]
    assert not rnd["deterministic"] and list(rnd["seeds"]) == ["0", "1", "2"]
    assert rnd["std"]["ndcg@10"] > 0
    assert rnd["params"] == {"seed": 2} and pop["fit_seconds"] >= 0
    assert report["dataset"]["n_interactions"] == len(boutique.interactions)
    assert report["dataset"]["split"]["n_test_users"] == 50
    assert report["significance"]["vs_best"][0]["n_seeds"] == 3


def test_run_protocol_records_a_model_that_cannot_fit(boutique):
    report = run_protocol(boutique, {"broken": {}, "popularity": {}}, "temporal", progress=False, make=make)
    assert report["models"]["broken"]["error"] == "ValueError: dataset has no 'image' item features"
    assert "ndcg@10" in report["models"]["popularity"]
    assert list(report["models"]) == ["broken", "popularity"]


@pytest.mark.parametrize(("protocol", "expected"), [("loo", "loo"), ("temporal", "temporal")])
def test_run_protocol_tunes_the_hybrid_on_the_matching_validation(boutique, protocol, expected):
    Tunable.seen_validation.clear()
    run_protocol(boutique, {"tunable": {}}, protocol, progress=False, make=make)
    assert Tunable.seen_validation == [expected]


def test_run_protocol_compares_named_pairs(boutique):
    report = run_protocol(boutique, {"popularity": {}, "random": {}}, "temporal", seeds=(0, 1), progress=False,
                          make=make, pairs=[("random", "popularity")])
    pair = report["significance"]["pairs"][0]
    assert (pair["a"], pair["b"], pair["n"]) == ("random", "popularity", 50)
    assert "wilcoxon_p" in pair and "ttest_p" in pair


def test_exposure_averaged_over_seeds_still_shares_every_slot(boutique_split):
    models = [RandomScores(seed=s).fit(boutique_split.train) for s in (0, 1, 2)]
    exposure = evaluate(boutique_split, {"random": models}, progress=False)["models"]["random"]["exposure"]
    assert sum(exposure["category"].values()) == pytest.approx(1.0)
    assert sum(exposure["brand"].values()) == pytest.approx(1.0)
    groups = exposure["customer_gender"]
    assert sum(g["users"] for g in groups.values()) == len(boutique_split.users)
