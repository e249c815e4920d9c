"""Shared test fixtures: where the public datasets are, and a tiny demo boutique workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VENDOME_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.exists():
        pytest.skip(f"public datasets not found at {path} (set VENDOME_SHARED_DATA or place ../shared beside the repo)")
    return path
