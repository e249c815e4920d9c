"""Taobao UserBehavior (Alibaba Tianchi): csv without header, user_id,item_id,category_id,behavior_type,timestamp.

Mapping and what is derived rather than read:
- pv -> `view`, cart -> `add_to_cart`, fav -> `add_to_wishlist`, buy -> `purchase`; timestamps are the file's unix
  seconds (UTC; the official window is 2017-11-25..2017-12-03 China time, a few rows lie before it and are kept);
- a last line cut short (a file made by taking the head of the 100M-row original ends mid-row) is dropped and
  reported in `notes(tables)` and the log; a malformed line anywhere else is a LoaderError;
- session_id: a new session after more than 30 minutes without an event of that user;
- products are the distinct items: title "item <id>", category = the category_id (the one the item is logged with
  most often when the log disagrees), defaults elsewhere (no names, prices or images in this dataset);
- customers are the users, registration/last-active = first/last event, country "unknown".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    LoaderError,
    add_note,
    customers_from_events,
    finish_interactions,
    finish_products,
    require_file,
    sessions,
    utc_seconds,
)

COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
BEHAVIORS = {"pv": "view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "purchase"}
LAYOUT = "user_id,item_id,category_id,behavior_type,timestamp"


def load_taobao(path: str | Path) -> dict[str, pd.DataFrame]:
    """Load one UserBehavior csv (or every *.csv of a folder, in name order) into contract tables."""
    path = Path(path).expanduser()
    files = sorted(path.glob("*.csv")) if path.is_dir() else [require_file(path, "a UserBehavior csv")]
    if not files:
        raise LoaderError(path, "no *.csv file in this folder (expected UserBehavior csv files)")
    frames, dropped = [], []
    for f in files:
        df, cut = _read(f)
        frames.append(df)
        if cut:
            dropped.append(cut)
    raw = pd.concat(frames, ignore_index=True)

    seconds = raw["timestamp"].to_numpy(np.int64)
    customer = raw["user_id"].astype(str)
    interactions = finish_interactions(pd.DataFrame({
        "customer_id": customer,
        "product_id": raw["item_id"].astype(str),
        "interaction_type": raw["behavior_type"].map(BEHAVIORS),
        "timestamp": utc_seconds(seconds),
        "session_id": sessions(customer, seconds),
        "category_id": raw["category_id"].astype(str),
    }))

    # the category an item is logged with most often (the first seen on a tie); products in order of appearance
    pairs = raw[["item_id", "category_id"]].astype(str).assign(row=np.arange(len(raw)))
    per_pair = pairs.groupby(["item_id", "category_id"], sort=False)["row"].agg(["size", "min"]).reset_index()
    best = (per_pair.sort_values(["size", "min"], ascending=[False, True]).drop_duplicates("item_id")
            .sort_values("min"))
    products = finish_products(pd.DataFrame({
        "product_id": best["item_id"].to_numpy(),
        "title": ("item " + best["item_id"]).to_numpy(),
        "category": best["category_id"].to_numpy(),
    }))
    customers = customers_from_events(interactions["customer_id"], interactions["timestamp"])
    tables = {"products": products, "customers": customers, "interactions": interactions}
    for note in dropped:
        add_note(tables, note)
    return tables


def _read(path: Path) -> tuple[pd.DataFrame, str]:
    """Rows of one file, validated; a truncated last line is dropped and described in the returned note."""
    try:
        df = pd.read_csv(path, header=None, names=COLUMNS, dtype=str, keep_default_na=False).fillna("")
    except pd.errors.ParserError as exc:
        raise LoaderError(path, f"expected 5 comma-separated fields ({LAYOUT}): {exc}") from None
    except pd.errors.EmptyDataError:
        raise LoaderError(path, f"empty file (expected rows {LAYOUT})") from None
    bad = _bad_rows(df)
    note = ""
    last = len(df) - 1
    if len(bad) and bad[-1] == last and _ends_without_newline(path):
        note = (f"{path}: dropped the truncated last line {last + 1} "
                f"({','.join(v for v in df.iloc[last] if v)}: the file ends mid-row)")
        df, bad = df.iloc[:last], bad[:-1]
    if len(bad):
        row = int(bad[0])
        values = df.iloc[row]
        field, expected = next((c, e) for c, e in _checks(values) if not e[0])
        raise LoaderError(path, f"column {field}: expected {expected[1]}, got {values[field]!r}", row + 1)
    df = df.copy()
    for col in ("user_id", "item_id", "category_id", "timestamp"):
        df[col] = df[col].astype(np.int64)
    return df, note


def _bad_rows(df: pd.DataFrame) -> np.ndarray:
    ok = np.ones(len(df), bool)
    for col in ("user_id", "item_id", "category_id", "timestamp"):
        ok &= df[col].str.fullmatch(r"\d+").to_numpy(bool)
    ok &= df["behavior_type"].isin(list(BEHAVIORS)).to_numpy()
    return np.flatnonzero(~ok)


def _checks(values: pd.Series):
    """(column, (valid, what was expected)) for one row, in column order."""
    for col in ("user_id", "item_id", "category_id"):
        yield col, (str(values[col]).isdigit(), "a non-negative integer id")
    yield "behavior_type", (values["behavior_type"] in BEHAVIORS, "one of " + ", ".join(BEHAVIORS))
    yield "timestamp", (str(values["timestamp"]).isdigit(), "unix seconds")


def _ends_without_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return False
        fh.seek(-1, 2)
        return fh.read(1) not in (b"\n", b"\r")
