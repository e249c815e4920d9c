"""A private copy of the session's boutique workspace, for a module that writes to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from vendome.workspace import Workspace


def copy_boutique(src: Path, dst: Path) -> Workspace:
    shutil.copytree(src, dst)
    return Workspace(dst)


def trained_service(src: Path, dst: Path, model: str = "itemknn", versions: int = 1):
    """A private copy with `model` trained on it (`versions` times: each fit is a new version, the last one
    active) and the service over it: (workspace, service)."""
    from vendome.pipeline import train, training_data
    from vendome.serve.service import Recommendations

    ws = copy_boutique(src, dst)
    data = training_data(ws, threads=2, progress=False)
    for _ in range(versions):
        train(ws, model, data=data)
    return ws, Recommendations(ws, model, data=data)


# An A/B test of the home page between the two cheapest models (pop as control, itemknn): the API and browser tests
# that need a running experiment write it to the workspace's experiments.yaml.
KNN_VS_POP = """\
version: 1
experiments:
  - name: home-knn-vs-pop
    placements: [home]
    arms:
      - {name: control, model: pop, weight: 1}
      - {name: knn, model: itemknn, weight: 1}
    start: 2020-01-01
    status: running
"""
