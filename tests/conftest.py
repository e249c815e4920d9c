"""Shared test fixtures: where the public datasets are, and a small demo boutique workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vendome.data import store
from vendome.data.demo import generate
from vendome.data.ingest import ingest_folder
from vendome.demo_job import install_demo_rules
from vendome.pipeline import training_data
from vendome.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VENDOME_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.exists():
        pytest.skip(f"public datasets not found at {path} (set VENDOME_SHARED_DATA or place ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def boutique_ws(tmp_path_factory) -> Path:
    """One small demo boutique (export, ingestion, the house's rules, embeddings), built once per session: a test
    module that writes to it works on a copy (tests/serve/copies.py)."""
    root = tmp_path_factory.mktemp("boutique")
    generate(root / "export", size="small", seed=5)
    ws = Workspace(root / "ws").ensure()
    ingest_folder(root / "export", ws)
    install_demo_rules(ws)
    training_data(ws, threads=2, progress=False)       # fills the embedding cache the copies reuse
    store.writer(ws).close()
    return ws.root
