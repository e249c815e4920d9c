import numpy as np
import pandas as pd

from helpers import tiny_dataset
from vendome.models.base import Recommender
from vendome.recommend import Rules, eligible_items, exclusions, recommend, top_k


class FixedScores(Recommender):
    """Every user gets the same scores: the item index order reversed (item 4 best)."""

    name = "fixed"

    def fit(self, data):
        self.n_items_ = data.n_items
        return self

    def score(self, users):
        return np.tile(np.arange(self.n_items_, dtype=np.float32), (len(users), 1))


def test_top_k_is_sorted_best_first():
    items, vals = top_k(np.array([[0.1, 0.9, 0.5, 0.7]]), 3)
    assert list(items[0]) == [1, 3, 2] and np.all(np.diff(vals[0]) <= 0)


def test_out_of_stock_items_are_never_recommended():
    data = tiny_dataset()
    model = FixedScores().fit(data)
    items, _ = recommend(model, np.arange(3), k=3, eligible=eligible_items(data, Rules()))
    assert 4 not in items                                   # W1 is out of stock


def test_a_product_is_not_recommended_before_its_launch_date():
    data = tiny_dataset()
    data.products["created_date"] = pd.to_datetime(["2025-01-01", "2025-06-01", None, "2025-01-01", "2025-01-01"],
                                                   utc=True)
    now = pd.Timestamp("2025-03-01", tz="UTC").timestamp()
    mask = eligible_items(data, Rules(in_stock_only=False), now=now)
    assert mask.tolist() == [True, False, True, True, True]  # R2 launches in June; an unknown date is no embargo
    assert eligible_items(data, Rules(in_stock_only=False, launched_only=False), now=now).all()
    assert eligible_items(data, Rules(in_stock_only=False)).all()  # no clock given: no launch check
    later = pd.Timestamp("2025-07-01", tz="UTC").timestamp()
    assert eligible_items(data, Rules(in_stock_only=False), now=later).all()


def test_purchased_items_are_excluded_per_user():
    data = tiny_dataset()
    model = FixedScores().fit(data)
    rules = Rules(in_stock_only=False)
    items, _ = recommend(model, np.array([0, 2]), k=5, exclude=exclusions(data, rules))
    assert 0 not in items[0] and 3 not in items[0]          # c1 bought R1 and E1
    assert items[0][-1] == -1 and items[0][-2] == -1        # only 3 items left to fill 5 slots
    assert list(items[1]) == [4, 3, 2, 1, 0]                # c3 bought nothing


def test_batches_give_the_same_answer_as_one_pass():
    data = tiny_dataset()
    model = FixedScores().fit(data)
    ex = exclusions(data, Rules())
    a, _ = recommend(model, np.arange(3), k=3, exclude=ex, batch_size=1)
    b, _ = recommend(model, np.arange(3), k=3, exclude=ex, batch_size=100)
    assert np.array_equal(a, b)
