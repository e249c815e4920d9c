"""Importers for public recommendation datasets, each mapped onto the retail contract tables (DESIGN §2).

`load(format, path, **opts)` returns `dict[str, DataFrame]` with products, customers and interactions (plus orders
and order_items when the source has orders), in contract column names, ready for `vendome.data.ingest`. What a
format lacks is filled with neutral values that each module's docstring lists; anything a loader drops is logged
and kept in `notes(tables)`. Malformed input raises `LoaderError` naming the file, the line and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from vendome.data.loaders.amazon import load_amazon
from vendome.data.loaders.common import LoaderError, notes
from vendome.data.loaders.hm import load_hm
from vendome.data.loaders.mbgcn import load_mbgcn
from vendome.data.loaders.recbole import load_recbole
from vendome.data.loaders.sellpy import load_sellpy
from vendome.data.loaders.taobao import load_taobao

LOADERS: dict[str, Callable[..., dict[str, pd.DataFrame]]] = {
    "amazon-seq": load_amazon,
    "mbgcn": load_mbgcn,
    "taobao": load_taobao,
    "hm": load_hm,
    "sellpy": load_sellpy,
    "recbole": load_recbole,
}


def load(format: str, path: str | Path, **opts) -> dict[str, pd.DataFrame]:
    """Contract tables from a public dataset at `path` in `format` (one of LOADERS)."""
    if format not in LOADERS:
        raise LoaderError(path, f"unknown format {format!r}; expected one of {', '.join(LOADERS)}")
    return LOADERS[format](path, **opts)


__all__ = ["LOADERS", "LoaderError", "load", "notes"]
