"""Paired tests: a real per-user difference is detected, a null one is not, and claims need seeds."""

from __future__ import annotations

import numpy as np
import pytest

from vendome.evaluate.significance import compare, holm, paired_test, significance_table


def per_user(seed: int = 0, n: int = 400, shift: float = 0.0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    return {"base": {"ndcg@10": base},
            "better": {"ndcg@10": base + shift + rng.normal(0, 0.05, n)},
            "same": {"ndcg@10": base + rng.normal(0, 0.05, n)}}


def test_a_real_improvement_is_significant_and_its_interval_excludes_zero():
    r = compare(per_user(shift=0.03), "better", "base", "ndcg@10", n_seeds=3)
    assert r["wilcoxon_p"] < 1e-6 and r["ttest_p"] < 1e-6
    assert 0 < r["ci_low"] < 0.03 < r["ci_high"]
    assert r["verdict"].startswith("better > base")


def test_noise_alone_is_not_significant():
    r = compare(per_user(), "same", "base", "ndcg@10")
    assert r["wilcoxon_p"] > 0.05 and r["ttest_p"] > 0.05
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["verdict"].startswith("no significant difference")


def test_identical_models_give_p_one():
    x = np.array([0.0, 1.0, 0.5])
    r = paired_test(x, x.copy())
    assert r["wilcoxon_p"] == 1.0 and r["diff"] == 0.0


def test_bootstrap_interval_agrees_with_the_t_interval():
    rng = np.random.default_rng(2)
    b = rng.random(3000)
    a = b + 0.02 + rng.normal(0, 0.1, 3000)
    boot, t = paired_test(a, b, ci="bootstrap", n_boot=1000), paired_test(a, b, ci="t")
    assert boot["ci_low"] < boot["diff"] < boot["ci_high"]
    assert boot["ci_low"] == pytest.approx(t["ci_low"], abs=0.001)
    assert boot["ci_high"] == pytest.approx(t["ci_high"], abs=0.001)


def test_a_single_seed_win_is_flagged_as_not_enough():
    r = compare(per_user(shift=0.03), "better", "base", "ndcg@10", n_seeds=1)
    assert "only 1 seed" in r["verdict"]


def test_compare_names_a_missing_model():
    with pytest.raises(KeyError, match="'ghost'"):
        compare(per_user(), "ghost", "base", "ndcg@10")


def test_holm_adjustment_is_monotone_and_capped():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.9]) == [1.0, 1.0]


def test_table_compares_every_model_with_the_best_and_the_named_pairs():
    pu = per_user(shift=0.03)
    summary = {n: {"ndcg@10": float(v["ndcg@10"].mean())} for n, v in pu.items()}
    table = significance_table(pu, summary, pairs=[("same", "base"), ("base", "gone")], n_seeds={"better": 3})
    assert table["best"] == "better"
    assert [(r["a"], r["b"]) for r in table["vs_best"]] == [("better", "base"), ("better", "same")]
    assert all(r["wilcoxon_p_holm"] >= r["wilcoxon_p"] for r in table["vs_best"])
    assert table["pairs"][0]["verdict"].startswith("no significant difference")
    assert table["pairs"][1]["error"] == "no results for gone"


def test_pairs_may_name_their_own_metric_such_as_new_item_recall():
    per_user = {"a": {"ndcg@10": np.array([0.1, 0.2]), "new_items:recall@10": np.array([1.0, 1.0, 0.0])},
                "b": {"ndcg@10": np.array([0.1, 0.1]), "new_items:recall@10": np.array([0.0, 0.0, 0.0])}}
    summary = {"a": {"ndcg@10": 0.15}, "b": {"ndcg@10": 0.1}}
    out = significance_table(per_user, summary, metric="ndcg@10", pairs=[("a", "b", "new_items:recall@10")],
                             n_seeds={})
    row = out["pairs"][0]
    assert row["metric"] == "new_items:recall@10" and row["mean_a"] == pytest.approx(2 / 3)
