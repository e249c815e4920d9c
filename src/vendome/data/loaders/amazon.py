"""Amazon review sequences in the S3-Rec format (Beauty, Sports_and_Outdoors, ... as used by S3-Rec, ICLRec, TIGER).

`<Name>.txt` holds one user per line, "user_id item_1 ... item_n", items in review-time order, no timestamps;
`<Name>_item2attributes.json` maps item id -> anonymised attribute ids (category-path nodes and brand).

Mapping and what is derived rather than read:
- every review becomes a `purchase` interaction (a review implies the item was bought);
- timestamps are synthetic, NOT real times: 2014-01-01 UTC plus the item's position on its line in seconds. They
  are strictly increasing per user and reproduce the file order exactly, which is all leave-one-out needs; a
  global temporal cut-off is meaningless on them (use protocol `loo`, as the published tables do);
- products are every item id in the sequences or the attribute file: title "item <id>", category "attr_<first
  attribute id>" ("unknown" when the item has none), column `attributes` = all attribute ids space separated;
  brand "unknown" (the brand is one of the anonymised attributes but not marked), price 0.0, no image;
- customers are the users, registration/last-active = their first/last synthetic time, country "unknown".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    LoaderError,
    customers_from_events,
    epoch_seconds,
    finish_interactions,
    finish_products,
    read_id_lists,
    require_file,
    utc_seconds,
)

SYNTHETIC_START = "2014-01-01"


def load_amazon(path: str | Path, attributes: str | Path | None = None,
                start: str = SYNTHETIC_START) -> dict[str, pd.DataFrame]:
    """Load `<Name>.txt` (and `attributes`, default: the `<Name>_item2attributes.json` beside it if present)."""
    path = require_file(path, "an S3-Rec sequence file '<Name>.txt'")
    if attributes is None:
        sibling = path.with_name(f"{path.stem}_item2attributes.json")
        attributes = sibling if sibling.is_file() else None
    attrs = _read_attributes(require_file(attributes, "an item2attributes json")) if attributes is not None else {}

    users, items, position = read_id_lists(path, "user_id item_1 item_2 ... in time order")
    seconds = epoch_seconds(start) + position
    timestamps = utc_seconds(seconds)
    interactions = finish_interactions(pd.DataFrame({
        "customer_id": pd.Series(users).astype(str),
        "product_id": pd.Series(items).astype(str),
        "interaction_type": "purchase",
        "timestamp": timestamps,
    }))

    ids = np.union1d(np.unique(items), np.fromiter(attrs, dtype=np.int64, count=len(attrs)))
    attr_lists = [attrs.get(int(i), []) for i in ids]
    products = finish_products(pd.DataFrame({
        "product_id": ids.astype(str),
        "title": [f"item {i}" for i in ids],
        "category": [f"attr_{a[0]}" if a else "unknown" for a in attr_lists],
        "attributes": [" ".join(map(str, a)) for a in attr_lists],
    }))
    customers = customers_from_events(interactions["customer_id"], interactions["timestamp"])
    return {"products": products, "customers": customers, "interactions": interactions}


def _read_attributes(path: Path) -> dict[int, list[int]]:
    """item id -> attribute ids, validated (JSON errors name the line)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LoaderError(path, f"expected a JSON object {{item_id: [attribute_id, ...]}} ({exc.msg})",
                          exc.lineno) from None
    if not isinstance(raw, dict):
        raise LoaderError(path, f"expected a JSON object {{item_id: [attribute_id, ...]}}, got {type(raw).__name__}")
    out: dict[int, list[int]] = {}
    for key, values in raw.items():
        if not (key.isdigit() and isinstance(values, list) and all(isinstance(v, int) for v in values)):
            raise LoaderError(path, f"item {key!r}: expected an integer item id mapped to a list of integer "
                              f"attribute ids, got {values!r}")
        out[int(key)] = values
    return out
