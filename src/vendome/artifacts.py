"""Versioned model artifacts in the workspace: WS/models/NAME/VERSION/{model.pkl, meta.json} and an ACTIVE pointer.

A version is never overwritten; activation only moves the pointer, so a roll-back is one write.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vendome.models.base import Recommender
from vendome.workspace import Workspace


def save_model(ws: Workspace, model: Recommender, meta: dict | None = None, activate: bool = True) -> Path:
    """Store a fitted model as a new version; returns the version folder."""
    base = ws.models / model.name
    version = _new_version(versions(ws, model.name))
    folder = base / version
    folder.mkdir(parents=True, exist_ok=False)
    model.save(folder / "model.pkl")
    info = {"name": model.name, "version": version, "params": _jsonable(model.get_params()),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"), **(meta or {})}
    (folder / "meta.json").write_text(json.dumps(info, indent=2, default=str))
    if activate:
        activate_version(ws, model.name, version)
    return folder


def _new_version(existing: list[str]) -> str:
    """`YYYYmmddTHHMMSS-micros` of now, later in sort order than every existing version: versions sort by name
    (a roll-back takes the one before), so two fits within one second must not come out of order."""
    ns = time.time_ns()
    micros = ns // 1_000
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000)) + f"-{micros % 1_000_000:06d}"
    if existing and version <= existing[-1]:          # a clock step back, or a fit in the same microsecond
        stamp, _, tail = existing[-1].partition("-")
        version = f"{stamp}-{int(tail or 0) + 1:06d}" if tail.isdigit() and int(tail) < 999_999 else \
            existing[-1] + "0"
    return version


def activate_version(ws: Workspace, name: str, version: str) -> None:
    if not (ws.models / name / version / "model.pkl").exists():
        raise FileNotFoundError(f"no version {version!r} of model {name!r} in {ws.models}")
    pointer = ws.models / name / "ACTIVE"
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version)
    os.replace(tmp, pointer)


def versions(ws: Workspace, name: str) -> list[str]:
    base = ws.models / name
    return sorted(p.name for p in base.iterdir() if (p / "model.pkl").exists()) if base.exists() else []


def active_version(ws: Workspace, name: str) -> str | None:
    pointer = ws.models / name / "ACTIVE"
    return pointer.read_text().strip() if pointer.exists() else None


def load_model(ws: Workspace, name: str, version: str | None = None) -> tuple[Recommender, dict]:
    """The active (or a named) version of a model and its metadata."""
    version = version or active_version(ws, name)
    if version is None:
        trained = sorted(p.name for p in ws.models.iterdir()) if ws.models.exists() else []
        raise FileNotFoundError(f"model {name!r} has not been trained in {ws.root} "
                                f"(trained: {', '.join(trained) or 'none'}); "
                                f"run `vendome train {name} --workspace {ws.root}`")
    folder = ws.models / name / version
    meta = json.loads((folder / "meta.json").read_text())
    return Recommender.load(folder / "model.pkl"), meta


def forget_in_stored_models(ws: Workspace, users: np.ndarray) -> dict[str, list[str]]:
    """Erasure in every stored version of every model: each is loaded, forgets `users` (dense indices of the
    workspace's customers, which erasure keeps in place) and is written back over itself atomically. A version
    fitted on another customer table (its user count differs) cannot be mapped and is deleted, so nothing of the
    erased client survives on disk. Returns model -> versions rewritten (deleted ones are listed with a '-')."""
    from vendome.data.store import load_dataset

    n_users = load_dataset(ws, events=False).n_users
    out: dict[str, list[str]] = {}
    for folder in sorted(ws.models.glob("*/*/model.pkl")) if ws.models.exists() else []:
        name, version = folder.parent.parent.name, folder.parent.name
        model = Recommender.load(folder)
        if getattr(model, "n_users_", n_users) != n_users:
            shutil.rmtree(folder.parent)
            out.setdefault(name, []).append(f"-{version}")
            continue
        model.forget(users)
        model.save(folder)
        out.setdefault(name, []).append(version)
    return out


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out
