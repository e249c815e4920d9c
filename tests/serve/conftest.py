"""One small demo boutique for the serving tests, built once per session (export, ingestion, the house's rules,
embeddings): each test module copies it, so what one module writes (events, erasures) never leaks into another."""

from __future__ import annotations

from pathlib import Path

import pytest

from vendome.data import store
from vendome.data.demo import generate
from vendome.data.ingest import ingest_folder
from vendome.demo_job import install_demo_rules
from vendome.pipeline import training_data
from vendome.workspace import Workspace


@pytest.fixture(scope="session")
def boutique_ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("boutique")
    generate(root / "export", size="small", seed=5)
    ws = Workspace(root / "ws").ensure()
    ingest_folder(root / "export", ws)
    install_demo_rules(ws)
    training_data(ws, threads=2, progress=False)       # fills the embedding cache the copies reuse
    store.writer(ws).close()
    return ws.root
