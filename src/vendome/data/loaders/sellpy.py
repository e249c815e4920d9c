"""Sellpy second-hand fashion case data: wishlist and order events of 100 users on one-off items.

A folder with user_item_interactions.csv (user_objectid, item_objectid, interaction_type, createdat),
item_data_for_interactions.csv (item_objectid, metadata, category, image; `metadata` is a Python dict literal),
user_features.csv (country and demography/brand affinities) and optionally live_item_data.csv (items for sale now).

Mapping and what is derived rather than read:
- wishlist -> `add_to_wishlist`, order -> `purchase` (no order ids or prices, so no orders table);
  session_id: a new session after more than 30 minutes without an event of that user;
- products: title "<brand> <type>" (the type alone without a brand, "item <id>" with neither), category = the
  category path ("Clothing > Dresses > Dresses"), subcategory = its last node, brand ("unknown" when absent),
  color and material = their lists joined with ", ", gender "women"/"men"/"unisex" from the demography when it is
  one of those; price 0.0 (not in the data), image_url "" (the studio photo URL is kept in `image_remote_url`
  and never fetched), description "". Attribute columns: condition, size, pattern, demography, defects
  ("type (location); ..."). The one item whose metadata is empty keeps only its category;
- `live=True` also adds the items of live_item_data.csv (for sale now, no events: a cold-start pool);
- customers: country -> location_country ("unknown" when empty), `demography_affinity` and `brand_affinity` =
  JSON objects {name: share} from the paired array columns; registration/last-active = first/last event.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    LoaderError,
    customers_from_events,
    finish_interactions,
    finish_products,
    require_dir,
    require_file,
    sessions,
)

BEHAVIORS = {"wishlist": "add_to_wishlist", "order": "purchase"}
GENDER = {"Women": "women", "Men": "men", "Unisex (Adults)": "unisex"}


def load_sellpy(path: str | Path, live: bool = False) -> dict[str, pd.DataFrame]:
    """Load a Sellpy case folder into contract tables (`live` adds the unsold catalog as products)."""
    folder = require_dir(path, "the Sellpy case folder")
    events = _read_csv(folder / "user_item_interactions.csv",
                       ("user_objectid", "item_objectid", "interaction_type", "createdat"))
    kind = events["interaction_type"].map(BEHAVIORS)
    if kind.isna().any():
        row = int(np.flatnonzero(kind.isna().to_numpy())[0])
        raise LoaderError(folder / "user_item_interactions.csv", f"column interaction_type: expected one of "
                          f"{', '.join(BEHAVIORS)}, got {events['interaction_type'].iloc[row]!r}", row + 2)
    when = pd.to_datetime(events["createdat"], utc=True, format="ISO8601", errors="coerce")
    if when.isna().any():
        row = int(np.flatnonzero(when.isna().to_numpy())[0])
        raise LoaderError(folder / "user_item_interactions.csv", f"column createdat: expected an ISO-8601 time, "
                          f"got {events['createdat'].iloc[row]!r}", row + 2)
    seconds = (when.astype("datetime64[ms, UTC]").astype(np.int64) // 1000).to_numpy()
    customer = events["user_objectid"].astype(str)
    interactions = finish_interactions(pd.DataFrame({
        "customer_id": customer,
        "product_id": events["item_objectid"].astype(str),
        "interaction_type": kind,
        "timestamp": when,
        "session_id": sessions(customer, seconds),
    }))

    items = _items(folder / "item_data_for_interactions.csv")
    if live:
        fresh = _items(require_file(folder / "live_item_data.csv", "the live item csv"))
        items = pd.concat([items, fresh[~fresh["product_id"].isin(items["product_id"])]], ignore_index=True)
    missing = ~interactions["product_id"].isin(items["product_id"])
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise LoaderError(folder / "user_item_interactions.csv", f"column item_objectid: expected an item of "
                          f"item_data_for_interactions.csv, got {interactions['product_id'].iloc[row]!r}", row + 2)
    products = finish_products(items)

    users = folder / "user_features.csv"
    attrs = _user_attributes(users) if users.is_file() else None
    customers = customers_from_events(interactions["customer_id"], interactions["timestamp"], attrs)
    return {"products": products, "customers": customers, "interactions": interactions}


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    require_file(path, "a file of the Sellpy case")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise LoaderError(path, f"expected comma-separated columns {', '.join(required)}: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise LoaderError(path, f"line 1: expected header columns {', '.join(required)}, missing {', '.join(missing)}")
    return df


def _items(path: Path) -> pd.DataFrame:
    """Catalog rows from an item csv; metadata dict literals parsed, with the line of a malformed one."""
    df = _read_csv(path, ("item_objectid", "metadata", "category", "image"))
    rows = []
    for i, (pid, meta, category, image) in enumerate(df[["item_objectid", "metadata", "category", "image"]]
                                                     .itertuples(index=False)):
        md = _metadata(path, meta, i + 2)
        brand, kind = md.get("brand"), md.get("type")
        title = " ".join(str(v) for v in (brand, kind) if v) or f"item {pid}"
        category = category if isinstance(category, str) and category else "unknown"
        rows.append({
            "product_id": pid,
            "title": title,
            "category": category,
            "subcategory": category.split(">")[-1].strip(),
            "brand": str(brand) if brand else "unknown",
            "material": _join(md.get("material")),
            "color": _join(md.get("color")),
            "gender": GENDER.get(md.get("demography")),
            "size": md.get("size"),
            "condition": md.get("condition"),
            "pattern": md.get("pattern"),
            "demography": md.get("demography"),
            "defects": "; ".join(f"{d.get('type', '?')} ({d.get('location', '?')})" if d.get("location")
                                 else str(d.get("type", "?")) for d in md.get("defects") or [] if isinstance(d, dict)),
            "image_url": "",
            "image_remote_url": image if isinstance(image, str) else "",
        })
    return pd.DataFrame(rows)


def _metadata(path: Path, text: object, line: int) -> dict:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        md = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        md = None
    if not isinstance(md, dict):
        raise LoaderError(path, f"column metadata: expected a Python dict literal, got {text[:60]!r}", line)
    return md


def _join(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _user_attributes(path: Path) -> pd.DataFrame:
    """Country and affinities per user, indexed by user id; the paired name/score arrays become JSON objects."""
    df = _read_csv(path, ("user_objectid", "country"))
    attrs = pd.DataFrame(index=df["user_objectid"].astype(str))
    attrs["location_country"] = df["country"].to_numpy()
    for names_col, scores_col, out in (("demography_array", "score_array_demography", "demography_affinity"),
                                       ("brand_array", "score_array_brand", "brand_affinity")):
        if names_col in df and scores_col in df:
            attrs[out] = [_affinity(path, n, s, i + 2, names_col)
                          for i, (n, s) in enumerate(zip(df[names_col], df[scores_col], strict=True))]
    return attrs


def _affinity(path: Path, names: object, scores: object, line: int, column: str) -> str:
    if not isinstance(names, str) or not isinstance(scores, str):
        return "{}"
    try:
        keys, values = ast.literal_eval(names), ast.literal_eval(scores)
    except (ValueError, SyntaxError):
        keys, values = None, None
    if not (isinstance(keys, list) and isinstance(values, list) and len(keys) == len(values)):
        raise LoaderError(path, f"column {column}: expected a list literal paired with an equally long score list, "
                          f"got {names[:60]!r}", line)
    return json.dumps(dict(zip(map(str, keys), map(float, values), strict=True)), ensure_ascii=False)
