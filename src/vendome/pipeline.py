"""Jobs the CLI runs: load the workspace for training, train and store a model, evaluate, the demo end to end.

Kept apart from the CLI so tests and notebooks call the same functions the commands do.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from vendome.artifacts import save_model
from vendome.data.dataset import Dataset
from vendome.data.store import load_dataset
from vendome.workspace import Workspace

DEMO_MODELS = ("pop", "pop-recent", "pop-segment", "content-visual", "content-text",
               "content-attributes", "itemknn", "als", "bpr",
               "ease", "hybrid")


def available_modalities(data: Dataset) -> tuple[str, ...]:
    """The content modalities this catalog can feed: images if any product has a local image, text if any has copy."""
    mods = []
    urls = data.products.get("image_url")
    if urls is not None and urls.fillna("").astype(str).str.len().gt(0).any():
        mods.append("image")
    desc = data.products.get("description")
    if desc is not None and desc.fillna("").astype(str).str.len().gt(0).any():
        mods.append("text")
    return tuple(mods)


def training_data(ws: Workspace, modalities: str | tuple[str, ...] = "auto", threads: int = 1,
                  progress: bool = True) -> Dataset:
    """The workspace's Dataset with the item features the catalog supports (cached by content hash)."""
    data = load_dataset(ws)
    mods = available_modalities(data) if modalities == "auto" else tuple(modalities)
    if not mods:
        return data
    from vendome.features.embeddings import attach_features

    return attach_features(data, ws, modalities=mods, threads=threads, progress=progress)


def parse_settings(pairs: list[str] | None) -> dict:
    """`key=value` strings into typed parameters (JSON literals where they parse, strings otherwise)."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def build_model(name: str, params: dict | None = None, seed: int | None = None, epochs: int | None = None,
                threads: int | None = None):
    """A model from the registry with CLI-level seed/epochs/threads mapped onto the parameters it has."""
    from vendome.models import make_model

    model = make_model(name, **(params or {}))
    names = model.get_params()
    extra = {}
    if seed is not None and "seed" in names:
        extra["seed"] = seed
    if threads is not None and "threads" in names and "threads" not in (params or {}):
        extra["threads"] = threads
    if epochs is not None:
        for key in ("epochs", "iterations"):
            if key in names:
                extra[key] = epochs
    return model.set_params(**extra)


def train(ws: Workspace, name: str, params: dict | None = None, seed: int | None = None, epochs: int | None = None,
          threads: int = 1, data: Dataset | None = None, nproc: int = 1):
    """Fit a model on all of the workspace's data and store it as the active version.

    nproc > 1: data-parallel training of a neural model in nproc processes under torchrun, threads // nproc
    threads each (training/distributed.py); the data and its features are loaded once, here.
    """
    from vendome.training.distributed import check_model

    model = build_model(name, params, seed, epochs, threads)   # an unknown model or parameter fails here, first
    check_model(name, nproc)
    data = data if data is not None else training_data(ws, threads=threads)
    if nproc > 1:
        from vendome.artifacts import load_model
        from vendome.training.distributed import launch

        report = launch(data, name, nproc, params=params, seed=seed, epochs=epochs,
                        threads=max(1, threads // nproc), workspace=ws.root)
        folder = Path(report["folder"])
        return load_model(ws, name, folder.name)[0], folder, report["seconds"]
    t0 = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - t0
    folder = save_model(ws, model, {"fit_seconds": round(seconds, 3), "dataset": data.describe()})
    return model, folder, seconds


def evaluate_workspace(ws: Workspace, models: list[str], protocol: str, *, seeds: tuple[int, ...] = (0,),
                       test_days: float = 30, params: dict | None = None, threads: int = 1,
                       json_path: Path | None = None, html_path: Path | None = None,
                       data: Dataset | None = None, pairs: list[tuple[str, ...]] | None = None,
                       house_rules: bool = True) -> dict:
    """Evaluate models side by side on one split of the workspace data; write JSON and HTML reports. With
    `house_rules`, the workspace's rules.yaml (when it has one) shapes the lists, as it does in serving."""
    from vendome.evaluate.report import write_html, write_json
    from vendome.evaluate.run import run_protocol
    from vendome.rules import load_policy

    data = data if data is not None else training_data(ws, threads=threads)
    specs = {m: dict((params or {}).get(m, {})) for m in models}
    rules_file = ws.root / "rules.yaml"
    policy = load_policy(rules_file) if house_rules and rules_file.exists() else None
    report = run_protocol(data, specs, protocol, seeds=seeds, test_days=test_days, pairs=pairs, policy=policy)
    if json_path:
        write_json(report, json_path)
    if html_path:
        write_html(report, html_path)
    return report


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children (ru_maxrss is in KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0
