"""RecBole atomic files: `NAME.inter` with optional `NAME.user` and `NAME.item` (e.g. MovieLens-100K).

Tab-separated text whose header names each field as "name:type" (token, token_seq, float, float_seq).
`path` is the .inter file or a folder holding exactly one .inter file; the .user and .item files beside it are read
when present.

Mapping and what is derived rather than read:
- every interaction is a `purchase` event (RecBole treats each row as positive feedback); the rating is kept in a
  `rating` column. Timestamps come from the `timestamp` field (unix seconds); without one they are synthetic,
  NOT real times: 2000-01-01 UTC plus the row's position among that user's rows, in seconds (file order kept);
- products: every item in .inter or .item; title from title/movie_title/name (else "item <id>"), category = the
  first token of class/genre/categories (the whole token_seq kept as `genres`), brand and price when the .item
  file has them, else "unknown" and 0.0; other .item fields are kept as attribute columns;
- customers: the users with interactions, registration/last-active = first/last event; age, gender and
  occupation (and other .user fields) kept; zip_code is personal data and dropped; country "unknown".
  Users listed in .user without any interaction are dropped (noted).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    LoaderError,
    add_note,
    customers_from_events,
    epoch_seconds,
    finish_interactions,
    finish_products,
    require_file,
    utc_seconds,
)

TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_FIELDS = ("title", "movie_title", "name", "item_name")
CATEGORY_FIELDS = ("class", "genre", "categories", "category")
PERSONAL_FIELDS = frozenset({"zip_code", "zip", "postal_code", "email", "name", "first_name", "last_name", "phone"})
SYNTHETIC_START = "2000-01-01"


def load_recbole(path: str | Path, user_field: str = "user_id", item_field: str = "item_id",
                 time_field: str = "timestamp", rating_field: str = "rating") -> dict[str, pd.DataFrame]:
    """Load RecBole atomic files (`path`: the .inter file or its folder) into contract tables."""
    inter_path = _inter_file(Path(path).expanduser())
    inter = read_atomic(inter_path, required=(user_field, item_field))
    user = inter[user_field].astype(str)
    if time_field in inter:
        seconds = _numbers(inter_path, inter, time_field).round().astype(np.int64).to_numpy()
    else:
        seconds = epoch_seconds(SYNTHETIC_START) + user.groupby(user, sort=False).cumcount().to_numpy()
    frame = pd.DataFrame({
        "customer_id": user,
        "product_id": inter[item_field].astype(str),
        "interaction_type": "purchase",
        "timestamp": utc_seconds(seconds),
    })
    if rating_field in inter:
        frame["rating"] = _numbers(inter_path, inter, rating_field).astype(float).to_numpy()
    interactions = finish_interactions(frame)

    item_path = inter_path.with_suffix(".item")
    items = read_atomic(item_path, required=(item_field,)) if item_path.is_file() else None
    products = _products(interactions["product_id"], items, item_field)

    user_path = inter_path.with_suffix(".user")
    people = read_atomic(user_path, required=(user_field,)) if user_path.is_file() else None
    attrs = None
    if people is not None:
        attrs = people.drop(columns=[c for c in people.columns if c.lower() in PERSONAL_FIELDS])
        attrs = attrs.set_index(attrs[user_field].astype(str)).drop(columns=[user_field])
        if "age" in attrs:
            attrs["age"] = pd.to_numeric(attrs["age"], errors="coerce").round().astype("Int64")
    customers = customers_from_events(interactions["customer_id"], interactions["timestamp"], attrs)
    tables = {"products": products, "customers": customers, "interactions": interactions}
    if attrs is not None and len(attrs) > len(customers):
        add_note(tables, f"{user_path}: dropped {len(attrs) - len(customers)} users without any interaction "
                         "(no event to date their registration)")
    return tables


def _inter_file(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.glob("*.inter"))
        if len(found) != 1:
            names = ", ".join(f.name for f in found) or "none"
            raise LoaderError(path, f"expected exactly one NAME.inter file in this folder (or pass the file), "
                              f"found {names}")
        return found[0]
    return require_file(path, "a RecBole NAME.inter file")


def read_atomic(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """One atomic file as strings, columns named without their ":type"; header and row shape checked."""
    require_file(path, "a RecBole atomic file")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    names = []
    for spec in header:
        name, sep, kind = spec.partition(":")
        if not sep or not name or kind not in TYPES:
            raise LoaderError(path, f"expected a tab-separated header of name:type fields (type one of "
                              f"{', '.join(TYPES)}), got {spec!r}", 1)
        names.append(name)
    missing = [c for c in required if c not in names]
    if missing:
        raise LoaderError(path, f"expected field(s) {', '.join(missing)} in the header, found {', '.join(names)}", 1)
    try:
        df = pd.read_csv(path, sep="\t", header=None, names=names, skiprows=1, dtype=str, keep_default_na=False,
                         quoting=csv.QUOTE_NONE)
    except pd.errors.ParserError as exc:
        raise LoaderError(path, f"expected {len(names)} tab-separated fields per line: {exc}") from None
    df = df.fillna("")
    for col in required:
        empty = df[col].str.strip() == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise LoaderError(path, f"field {col}: expected an id, got an empty value", row + 2)
    return df


def _numbers(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise LoaderError(path, f"field {col}: expected a number, got {df[col].iloc[row]!r}", row + 2)
    return values


def _pick(df: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in df.columns), None)


def _products(used: pd.Series, items: pd.DataFrame | None, item_field: str) -> pd.DataFrame:
    seen = pd.unique(used)
    if items is None:
        return finish_products(pd.DataFrame({"product_id": seen, "title": [f"item {i}" for i in seen],
                                             "category": "unknown"}))
    items = items.rename(columns={item_field: "product_id"})
    items["product_id"] = items["product_id"].astype(str)
    known = set(items["product_id"])
    extra = pd.DataFrame({"product_id": [i for i in seen if i not in known]})
    items = pd.concat([items, extra], ignore_index=True).fillna("")
    out = pd.DataFrame({"product_id": items["product_id"]})
    title = _pick(items, TITLE_FIELDS)
    fallback = "item " + items["product_id"]
    out["title"] = items[title].where(items[title].str.strip() != "", fallback) if title else fallback
    genre = _pick(items, CATEGORY_FIELDS)
    if genre:
        first = items[genre].str.split().str[0].fillna("unknown").astype(str)
        out["category"] = first.where(first != "", "unknown")
        out["genres"] = items[genre]
    else:
        out["category"] = "unknown"
    if "brand" in items:
        out["brand"] = items["brand"].where(items["brand"].str.strip() != "", "unknown")
    if "price" in items:
        price = pd.to_numeric(items["price"], errors="coerce")
        out["price"] = price.where(price >= 0).fillna(0.0)
    used_cols = {"product_id", title, genre, "brand", "price"}
    for col in items.columns:
        if col not in used_cols:
            out[col] = items[col].mask(items[col] == "")
    return finish_products(out)
