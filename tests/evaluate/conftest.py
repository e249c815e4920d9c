"""Fixtures of the evaluator tests: the small boutique (see eval_fixtures) and its temporal split."""

from __future__ import annotations

import pytest

from evaluate.eval_fixtures import boutique_tables
from vendome.data.dataset import Dataset
from vendome.data.splits import Split, split


@pytest.fixture(scope="session")
def boutique() -> Dataset:
    return Dataset.from_tables(boutique_tables(), name="boutique")


@pytest.fixture(scope="session")
def boutique_split(boutique: Dataset) -> Split:
    return split(boutique, "temporal", test_days=30)
