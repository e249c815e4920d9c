"""Beyond-accuracy measures on lists small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.evaluate import beyond


def tiny_shop() -> Dataset:
    """6 products (two categories), 3 clients; client 0 bought P0 (entry ring) and viewed P5."""
    products = pd.DataFrame({
        "product_id": [f"P{i}" for i in range(6)],
        "title": "x",
        "category": ["rings", "rings", "rings", "rings", "bags", "bags"],
        "brand": ["a", "a", "b", "b", "a", "c"],
        "price": [100.0, 200.0, 300.0, 400.0, 50.0, None],
        "stock_status": ["in_stock", "in_stock", "Out of stock", "in_stock", "in_stock", "in_stock"],
    })
    interactions = pd.DataFrame({
        "customer_id": ["C0", "C0", "C1"],
        "product_id": ["P0", "P5", "P1"],
        "interaction_type": ["purchase", "view", "view"],
        "timestamp": [1, 2, 3],
    })
    customers = pd.DataFrame({"customer_id": ["C0", "C1", "C2"], "gender": ["female", "male", None]})
    return Dataset.from_tables({"products": products, "customers": customers, "interactions": interactions})


def test_coverage_counts_distinct_items_over_the_eligible_catalog():
    eligible = np.array([True, True, True, True, False])
    assert beyond.coverage(np.array([[0, 1], [1, -1]]), eligible) == pytest.approx(2 / 4)


def test_gini_is_zero_for_equal_exposure_and_high_when_one_item_takes_all():
    eligible = np.ones(4, bool)
    assert beyond.gini(np.array([[0, 1], [2, 3]]), eligible) == pytest.approx(0.0)
    assert beyond.gini(np.array([[0], [0], [0]]), eligible) == pytest.approx(3 / 4)


def test_intra_list_diversity_is_the_share_of_differing_pairs():
    labels = np.array([0, 0, 1])
    ild = beyond.intra_list_diversity(np.array([[0, 1, 2], [0, 1, -1], [2, -1, -1]]), labels)
    assert ild[0] == pytest.approx(2 / 3)
    assert ild[1] == 0.0
    assert np.isnan(ild[2])  # one item: no pair to compare


def test_embedding_diversity_is_mean_cosine_distance():
    features = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], dtype=np.float32)
    d = beyond.embedding_diversity(np.array([[0, 1], [0, 2], [0, 1]]), features)
    assert d.tolist() == pytest.approx([1.0, 0.0, 1.0])


def test_novelty_uses_smoothed_user_share():
    data = tiny_shop()
    pop = beyond.item_popularity(data)  # 2 active training users
    assert pop[0] == pytest.approx(2 / 3) and pop[3] == pytest.approx(1 / 3)
    assert beyond.novelty(np.array([[0, 3]]), pop) == pytest.approx((-np.log2(2 / 3) - np.log2(1 / 3)) / 2)


def test_price_tiers_are_quartiles_within_each_category():
    products = tiny_shop().products
    assert beyond.price_tiers(products).tolist() == [0, 1, 2, 3, -1, -1]  # one priced bag: no spread to rank
    products = products.assign(price=[100.0, 200.0, 300.0, 400.0, 50.0, 900.0])
    assert beyond.price_tiers(products).tolist() == [0, 1, 2, 3, 1, 3]


def test_price_tiers_are_unknown_when_a_loader_wrote_no_price():
    products = tiny_shop().products.assign(price=0.0)
    assert (beyond.price_tiers(products) == -1).all()


def test_price_tier_consistency_counts_items_within_one_tier_of_a_bought_tier():
    data = tiny_shop()
    tiers = beyond.price_tiers(data.products)  # client 0 bought tier 0
    share = beyond.price_tier_consistency(np.array([[1, 2, 3, 5], [1, 2, 3, 5]]), np.array([0, 1]), data, tiers)
    assert share[0] == pytest.approx(1 / 3)  # tiers 1, 2, 3 known; only tier 1 is within one of 0
    assert np.isnan(share[1])  # client 1 never bought: undefined, not zero


def test_guardrail_check_finds_sold_out_and_already_bought_slots():
    data = tiny_shop()
    lists = np.array([[2, 0, 1], [2, 0, -1]])
    found = beyond.guardrail_violations(lists, np.array([0, 1]), data)
    assert found == {"total": 3, "out_of_stock": 2, "not_launched": 0, "purchased": 1, "duplicates": 0}
    relaxed = beyond.guardrail_violations(lists, np.array([0, 1]), data, in_stock_only=False)
    assert relaxed["total"] == 1
    data.products["created_date"] = pd.Timestamp("2030-01-01", tz="UTC")  # nothing launched yet at `now`
    early = beyond.guardrail_violations(lists, np.array([0, 1]), data, in_stock_only=False, now=1.7e9)
    assert early["not_launched"] == 5


def test_exposure_shares_sum_to_one_and_split_by_customer_group():
    data = tiny_shop()
    tiers = beyond.price_tiers(data.products)
    lists = np.array([[0, 4], [1, 3]])
    exp = beyond.exposure(lists, np.array([0, 1]), data, tiers, np.ones(6, bool),
                          {"ndcg@10": np.array([1.0, 0.0])})
    assert exp["category"] == {"rings": 0.75, "bags": 0.25}
    assert sum(exp["price_tier"].values()) == pytest.approx(1.0)
    assert exp["customer_gender"]["female"] == {"users": 1, "category": {"rings": 0.5, "bags": 0.5}, "ndcg@10": 1.0}
    assert exp["customer_gender"]["male"]["ndcg@10"] == 0.0


def test_user_slices_are_disjoint_and_cover_every_user():
    data = tiny_shop()
    masks, _ = beyond.user_slices(np.array([0, 1, 2]), data)
    assert masks["cold"].tolist() == [False, False, True]
    assert masks["warm"].tolist() == [True, True, False]
    assert sum(m.astype(int) for m in masks.values()).tolist() == [1, 1, 1]


def test_new_item_slice_restricts_recall_to_never_seen_targets():
    data = tiny_shop()
    test = sp.csr_matrix(np.array([[0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]], np.float32))
    lists = np.array([[3, 1], [1, 0], [5, 0]])
    per_user = {"hr@2": np.array([1.0, 0.0, 1.0])}
    out = beyond.slices(lists, np.array([0, 1, 2]), test, data, per_user, ks=(2,))
    # items 3 and 4 were never touched in training; item 5 was (client 0 viewed it)
    assert out["new_items"]["targets"] == 3 and out["new_items"]["users"] == 2
    assert out["new_items"]["recall@2"] == pytest.approx((1 / 2 + 0) / 2)


def test_new_items_are_recent_launches_or_never_seen():
    data = tiny_shop()
    end = pd.Timestamp(3, unit="s", tz="UTC")
    data.products["created_date"] = [end - pd.Timedelta(days=d) for d in (10, 400, 400, 400, 400, 400)]
    new, definition = beyond.new_items(data)
    # P0 launched 10 days before the end of training (and sold once); P2, P3 and P4 were never interacted with
    assert new.tolist() == [True, False, True, True, True, False]
    assert "created_date" in definition


def test_without_launch_dates_new_items_are_the_never_seen_ones():
    new, definition = beyond.new_items(tiny_shop())
    assert new.tolist() == [False, False, True, True, True, False]
    assert definition == "no training interaction"
