"""Accuracy metrics against hand-computed cases (definitions in vendome.evaluate.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from vendome.evaluate.metrics import hit_matrix, per_user_metrics, summarize


def one_user(targets: list[int], n_items: int = 10) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(targets)), ([0] * len(targets), targets)), shape=(1, n_items))


def test_two_targets_at_ranks_one_and_three():
    items = np.array([[0, 1, 2, 3, 4]])
    hits = hit_matrix(items, one_user([0, 2]), np.array([0]))
    m = per_user_metrics(hits, np.array([2]), ks=(5,))
    assert hits.tolist() == [[True, False, True, False, False]]
    assert m["hr@5"][0] == 1.0
    assert m["recall@5"][0] == 1.0
    assert m["ndcg@5"][0] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert m["mrr@5"][0] == 1.0
    assert m["map@5"][0] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_single_target_at_rank_three_and_cutoff_below_it():
    items = np.array([[5, 6, 7, 8, 9]])
    m = per_user_metrics(hit_matrix(items, one_user([7]), np.array([0])), np.array([1]), ks=(2, 5))
    assert m["hr@2"][0] == 0.0 and m["ndcg@2"][0] == 0.0 and m["mrr@2"][0] == 0.0
    assert m["hr@5"][0] == 1.0
    assert m["ndcg@5"][0] == pytest.approx(1 / math.log2(4))
    assert m["mrr@5"][0] == pytest.approx(1 / 3)
    assert m["map@5"][0] == pytest.approx(1 / 3)


def test_more_targets_than_k_caps_the_ideal_and_map():
    items = np.array([[0, 1]])
    m = per_user_metrics(hit_matrix(items, one_user([0, 1, 2, 3]), np.array([0])), np.array([4]), ks=(2,))
    assert m["ndcg@2"][0] == pytest.approx(1.0)
    assert m["map@2"][0] == pytest.approx(1.0)
    assert m["recall@2"][0] == pytest.approx(0.5)


def test_empty_slots_never_hit():
    items = np.array([[3, -1, -1]])
    hits = hit_matrix(items, one_user([0, 3]), np.array([0]))
    assert hits.tolist() == [[True, False, False]]


def test_summary_is_the_mean_over_users():
    test = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32))
    items = np.array([[0, 1], [0, 1]])
    m = summarize(per_user_metrics(hit_matrix(items, test, np.array([0, 1])), np.array([1, 1]), ks=(2,)))
    assert m["hr@2"] == 0.5


def test_cutoff_longer_than_the_lists_is_refused():
    with pytest.raises(ValueError, match="k=20"):
        per_user_metrics(np.zeros((1, 10), bool), np.array([1]), ks=(20,))
