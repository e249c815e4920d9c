"""Shared test fixtures: where the public datasets are, and a small demo boutique workspace."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A tiny randomly initialised CLIP saved with `save_pretrained` (borrowing MiniLM's WordPiece tokenizer
    files): exactly the layout a user gets from a real checkpoint."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from vendome.features.text import minilm_dir

    path = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 30522, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir() / name, path / name)
    return path
