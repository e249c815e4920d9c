"""Model-test fixtures shared across this folder."""

from __future__ import annotations

import pytest

from models.model_fixtures import block_dataset


@pytest.fixture(scope="module")
def blocks():
    """(Dataset, user block, item block) of the two-taste boutique."""
    return block_dataset()
