import numpy as np
import pandas as pd

from helpers import T0, tiny_dataset, tiny_tables
from vendome.data.dataset import BEHAVIOR_WEIGHTS, Dataset


def test_indices_follow_table_rows():
    data = tiny_dataset()
    assert data.n_items == 5 and data.n_users == 3
    assert data.item_index["N1"] == 2 and data.user_index["c3"] == 2


def test_matrix_sums_behavior_weights():
    data = tiny_dataset()
    m = data.matrix()
    assert m[0, 0] == BEHAVIOR_WEIGHTS["view"] + BEHAVIOR_WEIGHTS["purchase"]
    assert m[1, 1] == BEHAVIOR_WEIGHTS["add_to_wishlist"] + BEHAVIOR_WEIGHTS["purchase"]


def test_target_matrix_holds_purchases_only():
    t = tiny_dataset().target_matrix().toarray()
    assert t.sum() == 4 and t[0, 0] == 1 and t[2].sum() == 0


def test_completed_order_lines_count_once_and_cancelled_lines_not_at_all():
    tables = tiny_tables()
    tables["orders"] = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["c3", "c1"],
                                     "order_date": [T0 + pd.Timedelta(days=7), T0 + pd.Timedelta(days=1)],
                                     "order_status": ["completed", "cancelled"]})
    tables["order_items"] = pd.DataFrame({"order_item_id": ["l1", "l2"], "order_id": ["o1", "o2"],
                                          "product_id": ["N1", "R1"], "quantity": [1, 1], "unit_price": [1.0, 1.0]})
    data = Dataset.from_tables(tables)
    t = data.target_matrix().toarray()
    assert t[2, 2] == 1                      # c3 bought N1 through a completed order
    assert t[0, 0] == 0                      # c1's click-stream purchase of R1 belongs to a cancelled order
    buys = data.interactions[data.interactions["behavior"] == "purchase"]
    assert len(buys) == 4


def test_long_views_weigh_more_than_short_ones():
    tables = tiny_tables()
    tables["interactions"]["interaction_duration"] = [45, None, 5, None, None, None, None, 2, None]
    data = Dataset.from_tables(tables)
    views = data.interactions[data.interactions["behavior"] == "view"].sort_values("timestamp")
    assert list(views["weight"]) == [2.0, 1.0, 1.0]


def test_sequences_are_in_time_order():
    seqs = tiny_dataset().sequences()
    assert list(seqs[0]) == [0, 0, 2, 3]
    assert np.array_equal(seqs[2], [4, 1])
