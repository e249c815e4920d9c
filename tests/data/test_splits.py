import numpy as np
import pytest

from helpers import tiny_dataset
from vendome.data.splits import split

DAY = 86_400


def test_temporal_split_keeps_the_future_out_of_training():
    data = tiny_dataset()
    cut = int(data.interactions["timestamp"].min()) + 8 * DAY
    s = split(data, "temporal", cutoff=cut)
    assert s.train.interactions["timestamp"].max() < cut
    assert s.test.toarray()[0, 3] == 1                     # c1 buys the earrings on day 9
    assert s.test.toarray()[1, 0] == 1                     # c2 buys R1 on day 10
    assert list(s.users) == [0, 1]


def test_temporal_split_drops_repeat_purchases_from_targets():
    data = tiny_dataset()
    inter = data.interactions.copy()
    extra = inter.iloc[[1]].copy()                         # c1 buys R1 again on day 20
    extra["timestamp"] += 19 * DAY
    data = data.with_interactions(__import__("pandas").concat([inter, extra]))
    s = split(data, "temporal", cutoff=int(inter["timestamp"].min()) + 15 * DAY)
    assert s.info["dropped_repeat_targets"] == 1 and s.test.nnz == 0


def test_leave_one_out_holds_out_each_users_last_purchase():
    s = split(tiny_dataset(), "loo")
    test = s.test.toarray()
    assert test[0, 3] == 1 and test[1, 0] == 1 and test.sum() == 2
    train = s.train.interactions
    assert not ((train["user"] == 0) & (train["item"] == 3)).any()
    assert 2 not in s.users                                # c3 never purchased


def test_leave_one_out_trains_only_on_the_past():
    data = tiny_dataset()
    s = split(data, "loo")
    inter = data.interactions
    for u in s.users:
        t_test = inter[(inter["user"] == u) & (inter["item"] == s.test[u].indices[0])]["timestamp"].max()
        assert s.train.interactions[s.train.interactions["user"] == u]["timestamp"].max() < t_test


def test_given_split_uses_the_formats_own_flags():
    data = tiny_dataset()
    inter = data.interactions.copy()
    inter["split"] = np.where(inter["timestamp"] == inter["timestamp"].max(), "test", "train")
    s = split(data.with_interactions(inter), "given")
    assert s.test.nnz == 1 and list(s.users) == [1]


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(ValueError, match="temporal, loo, given"):
        split(tiny_dataset(), "random")
