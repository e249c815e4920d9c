"""What every public-format loader shares: the error type, id-list parsing, sessions and contract defaults.

The loaders turn a public dataset into the retail contract tables (DESIGN §2). Public datasets lack most catalog
and CRM fields, so the defaults below are the honest "unknown" of each required column: they say nothing rather
than invent a value (price 0.0, brand "unknown", empty material and image, every item in stock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.schema import CUSTOMERS, INTERACTIONS, ORDER_ITEMS, ORDERS, PRODUCTS

log = logging.getLogger("vendome.data.loaders")

SESSION_GAP_SECONDS = 30 * 60

# Required product fields that public sources rarely carry, and the neutral value used when they do not.
PRODUCT_DEFAULTS: dict[str, object] = {
    "description": "",
    "brand": "unknown",
    "price": 0.0,
    "image_url": "",
    "material": "",
    "stock_status": "in_stock",
}
UNKNOWN_COUNTRY = "unknown"


class LoaderError(ValueError):
    """A source file does not have the shape its format promises; the message names file, line and expectation."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


def require_file(path: str | Path, what: str) -> Path:
    """The path as a Path, or a LoaderError saying which file of the format is missing."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise LoaderError(p, f"no such file (expected {what})")
    return p


def require_dir(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise LoaderError(p, f"no such folder (expected {what})")
    return p


def add_note(tables: dict[str, pd.DataFrame], message: str) -> None:
    """Record something the loader changed in the data (a dropped row...): logged and kept on the interactions."""
    log.warning(message)
    tables["interactions"].attrs.setdefault("notes", []).append(message)


def notes(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The notes a loader left on its tables (dropped rows, derived values), for the CLI to show."""
    inter = tables.get("interactions")
    return list(inter.attrs.get("notes", [])) if inter is not None else []


# --------------------------------------------------------------------------- id-list text files
def read_id_lists(path: Path, layout: str = "user_id item_id item_id ...") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a "user item item ..." file (whitespace separated non-negative integers, one user per line).

    Returns per pair (user, item, position of the item on its line), in file order. Blank lines are skipped; a
    line with a non-integer token, a negative id or a user already listed is a LoaderError naming the line.
    """
    users: list[int] = []
    counts: list[int] = []
    items: list[int] = []
    first_line: dict[int, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = list(map(int, parts))
            except ValueError:
                bad = next(p for p in parts if not _is_int(p))
                raise LoaderError(path, f"expected integer ids ({layout}), got {bad!r}", lineno) from None
            if min(ids) < 0:
                raise LoaderError(path, f"expected non-negative integer ids ({layout}), got {min(ids)}", lineno)
            user = ids[0]
            if user in first_line:
                raise LoaderError(path, f"expected one line per user, user {user} is already on line "
                                  f"{first_line[user]}", lineno)
            first_line[user] = lineno
            users.append(user)
            counts.append(len(ids) - 1)
            items.extend(ids[1:])
    counts_arr = np.asarray(counts, dtype=np.int64)
    user_arr = np.repeat(np.asarray(users, dtype=np.int64), counts_arr)
    starts = np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
    position = np.arange(len(user_arr), dtype=np.int64) - starts
    return user_arr, np.asarray(items, dtype=np.int64), position


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- time and sessions
def utc_seconds(seconds: np.ndarray | pd.Series) -> pd.Series:
    """Unix seconds as tz-aware UTC datetimes."""
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True))


def epoch_seconds(iso: str) -> int:
    return int(pd.Timestamp(iso, tz="UTC").timestamp())


def sessions(customer_ids: pd.Series, seconds: np.ndarray, gap: int = SESSION_GAP_SECONDS) -> pd.Series:
    """Session ids "<customer>-<k>": a new session starts after more than `gap` seconds without an event.

    k counts a customer's sessions from 0 in time order; ties keep row order. Aligned with `customer_ids`.
    """
    n = len(customer_ids)
    if n == 0:
        return pd.Series([], dtype=str, index=customer_ids.index)
    codes = pd.factorize(customer_ids)[0]
    seconds = np.asarray(seconds, dtype=np.int64)
    order = np.lexsort((np.arange(n), seconds, codes))
    c, t = codes[order], seconds[order]
    first_of_customer = np.ones(n, bool)
    first_of_customer[1:] = c[1:] != c[:-1]
    starts = first_of_customer.copy()
    starts[1:] |= (t[1:] - t[:-1]) > gap
    running = np.cumsum(starts)
    block_start = np.maximum.accumulate(np.where(first_of_customer, np.arange(n), 0))
    k_sorted = running - running[block_start]
    k = np.empty(n, np.int64)
    k[order] = k_sorted
    return customer_ids.astype(str) + "-" + pd.Series(k, index=customer_ids.index).astype(str)


# --------------------------------------------------------------------------- contract tables
def _ordered(df: pd.DataFrame, contract: Iterable[str]) -> pd.DataFrame:
    """Contract columns first in contract order, then the extra (attribute) columns as they came."""
    contract = [c for c in contract if c in df.columns]
    extras = [c for c in df.columns if c not in contract]
    return df[contract + extras].reset_index(drop=True)


def finish_products(df: pd.DataFrame) -> pd.DataFrame:
    """Fill the required catalog fields the source lacks with their neutral defaults; ids as strings."""
    df = df.copy()
    df["product_id"] = df["product_id"].astype(str)
    for col, default in PRODUCT_DEFAULTS.items():
        df[col] = default if col not in df else df[col].fillna(default)
    df["price"] = df["price"].astype(float)
    return _ordered(df, PRODUCTS.column_names)


def finish_interactions(df: pd.DataFrame) -> pd.DataFrame:
    """Interactions in contract column order with a stable, unique interaction_id (the row number)."""
    df = df.reset_index(drop=True)
    df.insert(0, "interaction_id", pd.Series(np.arange(len(df))).astype(str))
    df["customer_id"] = df["customer_id"].astype(str)
    df["product_id"] = df["product_id"].astype(str)
    return _ordered(df, INTERACTIONS.column_names)


def empty_interactions() -> pd.DataFrame:
    return pd.DataFrame({
        "interaction_id": pd.Series([], dtype=str),
        "customer_id": pd.Series([], dtype=str),
        "product_id": pd.Series([], dtype=str),
        "interaction_type": pd.Series([], dtype=str),
        "timestamp": pd.Series([], dtype="datetime64[s, UTC]"),
    })


def customers_from_events(customer_ids: pd.Series, timestamps: pd.Series,
                          attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per customer seen in the events, in order of first appearance.

    registration_date is the first event time and last_active_date the last one (the sources have no CRM dates);
    `attributes` (indexed by customer_id) adds demographics; location_country is "unknown" unless it provides one.
    """
    ev = pd.DataFrame({"customer_id": customer_ids.astype(str).to_numpy(), "timestamp": timestamps.array})
    span = ev.groupby("customer_id", sort=False)["timestamp"].agg(["min", "max"])
    out = pd.DataFrame({
        "customer_id": span.index.astype(str),
        "registration_date": span["min"].array,
        "last_active_date": span["max"].array,
    })
    if attributes is not None and len(attributes.columns):
        attrs = attributes.copy()
        attrs.index = attrs.index.astype(str)
        out = out.join(attrs, on="customer_id")
    if "location_country" not in out:
        out["location_country"] = UNKNOWN_COUNTRY
    out["location_country"] = out["location_country"].fillna(UNKNOWN_COUNTRY)
    return _ordered(out, CUSTOMERS.column_names)


def finish_orders(orders: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _ordered(orders, ORDERS.column_names), _ordered(items, ORDER_ITEMS.column_names)
