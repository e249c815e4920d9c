import numpy as np
import pytest

from models.model_fixtures import launch_boutique
from vendome.data.splits import split
from vendome.models import make_model
from vendome.models.hybrid import Hybrid, normalize
from vendome.recommend import Rules, exclusions, recommend

FAST = {"collaborative": {"factors": 4, "regularization": 1.0, "iterations": 10}}


@pytest.fixture(scope="module")
def tuned():
    """Without the attribute component, whose per-look metal would make it as informative as the pictures."""
    outer = split(launch_boutique(), "temporal", test_days=30)
    return outer, Hybrid(component_params=FAST, blender="linear", use_attributes=False, samples=30,
                         refine_steps=5).fit(outer.train)


def test_the_attribute_component_finds_new_pieces_by_their_metal():
    outer = split(launch_boutique(), "temporal", test_days=30)
    model = Hybrid(component_params=FAST, blender="linear", samples=30, refine_steps=5).fit(outer.train)
    single = model.tuning_["single"]
    assert set(single) == {"visual", "collaborative", "demographic", "recent", "attributes"}
    assert single["attributes"] > 2 * max(single[k] for k in ("collaborative", "demographic", "recent"))
    assert model.weights_.get("attributes", 0.0) + model.weights_.get("visual", 0.0) > 0.5


def test_tuned_weights_favour_the_only_informative_component(tuned):
    _, model = tuned
    assert max(model.weights_, key=model.weights_.get) == "visual"
    assert model.tuning_["weights"]["visual"] > 0.5
    assert model.tuning_["single"]["visual"] > 2 * max(v for k, v in model.tuning_["single"].items() if k != "visual")


def test_blend_is_at_least_as_good_as_the_best_component_on_validation(tuned):
    _, model = tuned
    tuning = model.tuning_
    assert tuning["mode"] == "tuned" and tuning["metric"] == "ndcg@10"
    assert set(tuning["single"]) == {"visual", "collaborative", "demographic", "recent"}
    assert tuning["blend"] >= max(tuning["single"].values())


def test_tuning_never_sees_the_callers_test_period(tuned):
    outer, model = tuned
    assert model.tuning_["validation"]["cutoff"] + 30 * 86_400 <= outer.info["cutoff"] + 1
    other_test = split(launch_boutique(test_seed=1), "temporal", test_days=30)    # same train, other test
    assert not np.array_equal(other_test.test.toarray(), outer.test.toarray())
    again = Hybrid(component_params=FAST, blender="linear", use_attributes=False, samples=30,
                   refine_steps=5).fit(other_test.train)
    assert again.weights_ == model.weights_ and again.tuning_ == model.tuning_


def test_blend_scores_are_the_weighted_normalised_components(tuned):
    _, model = tuned
    users = np.arange(6)
    parts = model.component_scores(users)
    expected = sum(model.weights_[label] * z for label, z in parts.items())
    assert np.allclose(model.score(users), expected, atol=1e-5)


def test_hybrid_explanation_names_the_leading_component_and_the_shares(tuned):
    _, model = tuned
    reason = model.explain(0, np.array([30]))[0]
    assert "blend: visual" in reason.text
    shares = {k: v for k, v in reason.signals.items() if k.endswith("_share")}
    assert abs(sum(shares.values()) - 1.0) < 1e-6 and max(shares, key=shares.get) == "visual_share"


def test_components_that_cannot_run_are_dropped_and_recorded():
    data = launch_boutique()
    del data.item_features["image"]
    with pytest.warns(RuntimeWarning, match="dropping component 'visual'"):
        model = Hybrid(component_params=FAST, blender="linear", samples=10, refine_steps=2).fit(data)
    assert "visual" not in model.weights_ and "visual" in model.tuning_["dropped"]
    assert abs(sum(model.weights_.values()) - 1.0) < 1e-6


def test_fixed_weights_are_used_as_given_without_tuning():
    model = Hybrid(weights={"visual": 3.0, "recent": 1.0}, component_params=FAST).fit(launch_boutique())
    assert model.weights_ == {"visual": 0.75, "recent": 0.25} and model.tuning_["mode"] == "fixed"


def test_zscore_and_rank_normalisation_are_per_user():
    s = np.array([[1.0, 2.0, 3.0, 10.0], [5.0, 5.0, 5.0, 5.0]], np.float32)
    z = normalize(s, "zscore")
    assert abs(z[0].mean()) < 1e-6 and abs(z[0].std() - 1) < 1e-6 and not z[1].any()
    assert np.allclose(normalize(s[:1], "rank"), [[0, 1 / 3, 2 / 3, 1]])


def test_auto_collaborative_takes_the_candidate_that_validates_best(tuned):
    _, model = tuned
    candidates = model.tuning_["collaborative_candidates"]
    assert set(candidates) == {"als", "ease", "itemknn"}
    assert model.tuning_["collaborative"] == max(candidates, key=candidates.get)


def test_a_named_collaborative_model_is_used_as_is():
    outer = split(launch_boutique(), "temporal", test_days=30)
    model = Hybrid(collaborative="itemknn", samples=5, refine_steps=1).fit(outer.train)
    assert model.tuning_["collaborative"] == "itemknn" and model.tuning_["collaborative_candidates"] is None


# ------------------------------------------------------------------------------------------- stacked blender
@pytest.fixture(scope="module")
def stacked():
    outer = split(launch_boutique(), "temporal", test_days=30)
    return outer, Hybrid(component_params=FAST).fit(outer.train)


def _hit_rate(model, outer) -> float:
    items, _ = recommend(model, outer.users, 10, exclude=exclusions(outer.train, Rules()))
    return float(np.mean([outer.test[u, items[k]].toarray().any() for k, u in enumerate(outer.users)]))


def test_the_stacked_blend_finds_the_new_launch_that_collaborative_filtering_cannot(stacked):
    outer, model = stacked
    assert model.tuning_["mode"] == "stacked" and model.stack_ is not None
    als = make_model("als", factors=4, regularization=1.0, iterations=10).fit(outer.train)
    assert _hit_rate(als, outer) < 0.2          # the second launch has no history at all
    assert _hit_rate(model, outer) > 0.9


def test_stacked_windows_are_consecutive_months_before_the_callers_test(stacked):
    outer, model = stacked
    windows = model.tuning_["validation"]["windows"]
    assert len(windows) >= 2
    cutoffs = [w["cutoff"] for w in windows]
    assert cutoffs[0] + 30 * 86_400 <= outer.info["cutoff"] + 1
    assert np.allclose(np.diff(cutoffs), -30 * 86_400)
    assert all(w["n_targets"] > 0 and w["candidates_per_user"] > 10 for w in windows)


def test_stacked_tuning_is_the_same_whatever_the_callers_test_holds(stacked):
    outer, model = stacked
    other_test = split(launch_boutique(test_seed=1), "temporal", test_days=30)
    again = Hybrid(component_params=FAST).fit(other_test.train)
    assert again.tuning_["coefficients"] == model.tuning_["coefficients"]
    assert np.allclose(again.score(np.arange(5)), model.score(np.arange(5)))


def test_stacked_score_is_the_sum_of_the_contributions_that_explain_it(stacked):
    _, model = stacked
    items = np.arange(model.n_items_)
    for user in (0, 7):
        parts = model.contributions(user, items)
        assert set(model.components_) <= set(parts) and "new_arrival" in parts and "engagement" in parts
        rest = model.score(np.array([user]))[0] - sum(parts.values())
        assert np.allclose(rest, rest[0], atol=1e-4)   # what is left is the same constant for every item


def test_stacked_explanation_names_the_leading_signal_and_the_shares(stacked):
    _, model = stacked
    user = 3
    top = np.argsort(-model.score(np.array([user]))[0])[:5]
    for item, reason in zip(top, model.explain(user, top), strict=True):
        shares = {k: v for k, v in reason.signals.items() if k.endswith("_share")}
        assert abs(sum(shares.values()) - 1.0) < 1e-6
        leader = max(shares, key=shares.get).removesuffix("_share")
        assert reason.text and "(blend: " + leader in reason.text, (item, reason)
        assert {f"{c}_weight" for c in model.components_} <= set(reason.signals)


def test_an_unknown_blender_is_refused():
    with pytest.raises(ValueError, match="blender must be one of stacked, linear"):
        Hybrid(blender="boosted").fit(launch_boutique())


def test_a_list_explained_after_scoring_reuses_the_scores_until_her_state_changes(tuned, tmp_path):
    outer, model = tuned
    data = outer.train
    u = np.array([0])
    first = model.component_scores(u)
    assert model.component_scores(u) is first                          # the explanation does not score again
    assert all(not z.flags.writeable for z in first.values())          # and nobody can change what is kept
    model.observe(data, u)
    assert model.component_scores(u) is not first                      # her new state is read, not the old one
    path = model.save(tmp_path / "hybrid.pkl")
    assert "_memo" not in vars(Hybrid.load(path))                      # never pickled with the model
