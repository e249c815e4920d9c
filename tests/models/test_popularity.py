import numpy as np

from models.model_fixtures import customers, dataset, products
from vendome.models.popularity import Popularity, RecentPopularity, SegmentPopularity

TITLES = ["Serpent ring", "Halo ring", "Serpent pendant", "Tourbillon watch", "Pearl earrings"]


def test_pop_ranks_the_most_bought_item_first():
    events = [(u, 2, "purchase", u) for u in range(5)] + [(u, 0, "purchase", u) for u in range(3)]
    events += [(u, 1, "view", u) for u in range(6)]  # many views, no sale
    model = Popularity().fit(dataset(products(TITLES), customers(6), events))
    scores = model.score(np.array([0, 5]))
    assert scores.shape == (2, 5) and scores.dtype == np.float32
    assert list(np.argsort(-scores[0])[:2]) == [2, 0]
    assert np.array_equal(scores[0], scores[1])


def test_pop_weighted_ranks_by_behavior_weighted_interest():
    events = [(0, 0, "purchase", 1)] + [(u, 1, "add_to_wishlist", u) for u in range(1, 6)]  # 10 vs 5 x 4
    model = Popularity(weighted=True).fit(dataset(products(TITLES), customers(6), events))
    assert np.argmax(model.score(np.array([0]))[0]) == 1


def test_pop_recent_prefers_recent_sales_over_old_best_sellers():
    old = [(u, 0, "purchase", 1 + u) for u in range(8)]            # the old best seller, sold in January
    new = [(u, 3, "purchase", 95 + u) for u in range(3)]           # three sales in the last month
    model = RecentPopularity(days=30).fit(dataset(products(TITLES), customers(8), old + new))
    order = np.argsort(-model.score(np.array([0]))[0])
    assert order[0] == 3 and order[1] == 0  # the old best seller still leads the items unsold in the window


def test_pop_recent_half_life_favours_the_newest_sales():
    events = [(u, 1, "purchase", 72) for u in range(3)] + [(u, 2, "purchase", 100) for u in range(2)]
    data = dataset(products(TITLES), customers(3), events)
    flat = RecentPopularity(days=30).fit(data).score(np.array([0]))[0]
    decayed = RecentPopularity(days=30, half_life_days=7).fit(data).score(np.array([0]))[0]
    assert flat[1] > flat[2] and decayed[2] > decayed[1]


def _two_segment_data():
    custs = customers(8, gender=["F"] * 4 + ["M"] * 4, age_group=["35-44"] * 4 + ["25-34"] * 3 + [None])
    events = [(u, 2, "purchase", u) for u in range(4)] + [(u, 3, "purchase", u) for u in range(4, 7)]
    events += [(7, 3, "purchase", 9), (0, 3, "purchase", 9), (1, 3, "purchase", 9)]
    return dataset(products(TITLES), custs, events)


def test_pop_segment_gives_each_segment_its_own_best_sellers():
    model = SegmentPopularity(shrinkage=1.0).fit(_two_segment_data())
    scores = model.score(np.array([0, 4]))
    assert np.argmax(scores[0]) == 2   # women 35-44 bought the pendant
    assert np.argmax(scores[1]) == 3   # men 25-34 bought the watch


def test_pop_segment_falls_back_to_global_popularity_without_a_segment():
    data = _two_segment_data()
    model = SegmentPopularity(shrinkage=1.0).fit(data)
    unknown = model.score(np.array([7]))[0]                         # age group missing
    glob = Popularity().fit(data).score(np.array([7]))[0]
    assert np.argmax(unknown) == np.argmax(glob) == 3
    assert model.segment_label(7) is None


def test_pop_segment_shrinkage_pulls_small_segments_toward_global():
    custs = customers(7, gender=["F"] * 6 + ["M"], age_group=["35-44"] * 7)
    events = [(u, 2, "purchase", u) for u in range(6)] + [(6, 0, "purchase", 1)]   # one man bought a ring
    data = dataset(products(TITLES), custs, events)
    assert np.argmax(SegmentPopularity(shrinkage=0.0).fit(data).score(np.array([6]))[0]) == 0
    assert np.argmax(SegmentPopularity(shrinkage=50.0).fit(data).score(np.array([6]))[0]) == 2


def test_pop_segment_uses_the_columns_that_exist_and_bins_ages():
    custs = customers(4, age=[38, 41, 23, 29])                      # no gender, no age_group
    events = [(0, 1, "purchase", 1), (1, 1, "purchase", 2), (2, 4, "purchase", 3), (3, 4, "purchase", 4)]
    model = SegmentPopularity(shrinkage=0.5).fit(dataset(products(TITLES), custs, events))
    assert model.columns_ == ["age_group"]
    assert np.argmax(model.score(np.array([0]))[0]) == 1 and np.argmax(model.score(np.array([2]))[0]) == 4
    assert model.segment_label(0) == "clients 35-44"


def test_pop_segment_explains_with_the_segment_in_words():
    custs = customers(2, gender=["F", "F"], age_group=["35-44", "35-44"])
    model = SegmentPopularity(segment_by=("gender", "age_group", "location_country"), shrinkage=1.0)
    model.fit(dataset(products(TITLES), custs, [(0, 2, "purchase", 1), (1, 2, "purchase", 2)]))
    reason = model.explain(0, np.array([2]))[0]
    assert reason.text == "popular with women 35-44 in France"
    assert reason.signals["segment_share"] > reason.signals["global_share"] * 0.99
