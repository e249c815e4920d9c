import numpy as np
import pytest
import torch

from models.model_fixtures import customers, dataset, products
from training.journeys import cycle_boutique
from vendome.training.sequences import NextItemBatches, Sequences, pad_left, time_buckets


@pytest.fixture(scope="module")
def journeys():
    return Sequences.from_dataset(cycle_boutique())


def test_a_run_of_events_on_one_piece_is_one_step(journeys):
    assert all(len(s) == 8 for s in journeys.items)               # the clicks did not add steps
    assert all(np.all(np.diff(s) % 12 == 1) for s in journeys.items)


def test_holding_out_the_last_step_keeps_the_rest_for_training(journeys):
    prefixes, users, last = journeys.hold_out_last(min_length=3)
    assert len(users) == len(journeys)
    for u, item in zip(users, last, strict=True):
        assert item == journeys.items[u][-1] and np.array_equal(prefixes.items[u], journeys.items[u][:-1])


def test_time_buckets_grow_with_the_log_of_the_gap():
    assert time_buckets(np.array([0, 0, 1, 3, 1_000, 100_000])).tolist() == [0, 0, 1, 1, 9, 16]


def test_every_target_is_the_step_after_its_input(journeys):
    batches = NextItemBatches(journeys, max_len=5, batch_size=7, seed=1)
    seen = 0
    for items, gaps, targets, weights in batches.epoch(0):
        assert torch.all(weights[targets > 0] == 1.0) and torch.all(weights[targets == 0] == 0.0)
        real = targets > 0
        assert torch.equal(real, items > 0) and gaps.shape == items.shape
        assert torch.all((targets[real] - 1) == (items[real] - 1 + 1) % 12)
        seen += int(real.sum())
    assert seen == sum(len(s) - 1 for s in journeys.items)        # every transition trained once per epoch


def test_long_journeys_are_cut_into_windows_that_cover_every_transition(journeys):
    batches = NextItemBatches(journeys, max_len=3, batch_size=4)
    seen = sum(int((t > 0).sum()) for _, _, t, _ in batches.epoch(0))
    assert seen == sum(len(s) - 1 for s in journeys.items)
    assert max(items.shape[1] for items, _, _, _ in batches.epoch(0)) <= 3


def test_batches_depend_only_on_seed_and_epoch(journeys):
    a = [x[0] for x in NextItemBatches(journeys, 50, 8, seed=5).epoch(1)]
    b = [x[0] for x in NextItemBatches(journeys, 50, 8, seed=5).epoch(1)]
    c = [x[0] for x in NextItemBatches(journeys, 50, 8, seed=5).epoch(2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_scoring_input_is_left_padded_with_the_latest_step_last(journeys):
    items, gaps = pad_left(journeys, np.array([0, 1]), max_len=10)
    assert items.shape == (2, 10) and (items[:, :2] == 0).all()
    assert items[0, -1] == journeys.items[0][-1] + 1


@pytest.fixture(scope="module")
def shopper():
    """One client: views 0, 1, then views, carts and buys 2 (one step), views 3, buys 4, views 5."""
    events = [(0, 0, "view", 0.0), (0, 1, "view", 1.0), (0, 2, "view", 2.0), (0, 2, "add_to_cart", 2.1),
              (0, 2, "purchase", 2.2), (0, 3, "view", 3.0), (0, 4, "purchase", 4.0), (0, 5, "view", 5.0)]
    data = dataset(products([f"piece {i}" for i in range(6)]), customers(1), events)
    return Sequences.from_dataset(data)


def test_a_step_holds_intent_when_any_event_of_its_run_is_a_purchase(shopper):
    assert shopper.items[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert shopper.intent[0].tolist() == [False, False, True, False, True, False]


def test_validation_can_hold_out_the_last_purchase_instead_of_the_last_view(shopper):
    prefixes, users, held = shopper.hold_out_last(min_length=3, intent_only=True)
    assert users.tolist() == [0] and held.tolist() == [4]
    assert prefixes.items[0].tolist() == [0, 1, 2, 3] and prefixes.intent[0].tolist() == [False, False, True, False]
    _, _, last = shopper.hold_out_last(min_length=3)
    assert last.tolist() == [5]


def test_browse_weight_discounts_the_steps_that_are_not_purchases(shopper):
    items, _, targets, weights = next(NextItemBatches(shopper, 10, 4, browse_weight=0.2).epoch(0))
    assert (targets[0] - 1).tolist() == [1, 2, 3, 4, 5]
    assert torch.allclose(weights[0], torch.tensor([0.2, 1.0, 0.2, 1.0, 0.2]))
    cycle = Sequences.from_dataset(cycle_boutique())              # no purchase anywhere
    with pytest.raises(ValueError, match="nothing to learn"):
        NextItemBatches(cycle, 10, 4, browse_weight=0.0)
