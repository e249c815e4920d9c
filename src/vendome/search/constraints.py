"""The attribute guard of composed search: what a query's constraints allow, as masks over the catalog.

    guard = AttributeGuard(products)                           # once per catalog: lower-cased codes, float prices
    allowed = guard.hard_mask(parsed.constraints)              # (n_items,) bool: every HARD constraint holds
    bonus = guard.soft_matches(parsed.constraints)             # (n_items,) float: soft constraints each item meets
    assert guard.violations(i, parsed.constraints) == []       # row-by-row re-check of a served item

Hard constraints are filters a served item may never break ("no diamonds", "under 2,000"); soft ones are
preferences that only re-rank ("in rose gold"). `satisfies` is the reference semantics, written as plain Python on
one record so the vectorised masks have something independent to agree with:

- strings compare case-insensitively on the stripped text (`str(value).strip().lower()`);
- a missing value (None, NaN, NA, or a column the catalog lacks) never satisfies `in` and always satisfies `not_in`
  (a piece with no stone recorded is not excluded by "no diamonds", and is not a match for "with rubies");
- numbers (`lt`, `le`, `gt`, `ge`, `between` inclusive) read the column as floats; a missing or unreadable number
  satisfies no numeric constraint. Price constraints read `price`, the list price, never `sale_price`: a client's
  "under 2,000" must not depend on a markdown that may end before she buys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

SET_OPS = ("in", "not_in")
NUMBER_OPS = ("lt", "le", "gt", "ge", "between")
OPS = SET_OPS + NUMBER_OPS
# Columns whose codes are computed up front (the others when a constraint first names them).
ATTRIBUTE_COLUMNS = ("category", "subcategory", "brand", "collection", "material", "color", "stone_type", "gender",
                     "stock_status")
LABELS = {"stone_type": "stone", "subcategory": "type", "stock_status": "stock"}
_NUMBER_WORDS = {"lt": "under", "le": "up to", "gt": "over", "ge": "from"}
_CACHE_SIZE = 256  # masks kept per guard: 256 x 100,000 items is 25 MB at most


@dataclass(frozen=True)
class Constraint:
    """One condition on a catalog column. `value` is a tuple of strings for `in`/`not_in`, a float for `lt`, `le`,
    `gt`, `ge` and a (lo, hi) pair of floats, both inclusive, for `between`; lists and single strings are coerced
    so a constraint is always hashable and JSON-ready."""

    attribute: str
    op: str
    value: object
    hard: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown constraint op {self.op!r}; expected one of {OPS}")
        value = self.value
        if self.op in SET_OPS:
            items = (value,) if isinstance(value, str) or not isinstance(value, Iterable) else value
            value = tuple(str(v) for v in items)
        elif self.op == "between":
            lo, hi = value  # type: ignore[misc]
            value = (float(lo), float(hi))
        else:
            value = float(value)  # type: ignore[arg-type]
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "hard", bool(self.hard))

    def to_dict(self) -> dict:
        """JSON-ready: {"attribute", "op", "value", "hard", "source"}, tuples as lists."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"attribute": self.attribute, "op": self.op, "value": value, "hard": self.hard, "source": self.source}

    def describe(self) -> str:
        """Plain words for a client or a merchandiser: "stone: not diamond", "price under 2,000"."""
        label = LABELS.get(self.attribute, self.attribute.replace("_", " "))
        if self.op == "in":
            return f"{label}: {' or '.join(self.value)}"  # type: ignore[arg-type]
        if self.op == "not_in":
            return f"{label}: not {' or '.join(self.value)}"  # type: ignore[arg-type]
        if self.op == "between":
            lo, hi = self.value  # type: ignore[misc]
            return f"{label} between {_amount(lo)} and {_amount(hi)}"
        return f"{label} {_NUMBER_WORDS[self.op]} {_amount(self.value)}"  # type: ignore[arg-type]


def _amount(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if x == int(x) else f"{x:,.2f}"


# ------------------------------------------------------------------------------------------ reference semantics
def is_missing(value: object) -> bool:
    """None, NaN, pd.NA, NaT: the same values `Series.isna` flags."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like values are not missing
        return False


def text(value: object) -> str:
    """The comparison form of a categorical value."""
    return str(value).strip().lower()


def to_number(value: object) -> float:
    """A float, or NaN when the value is missing or does not read as a number."""
    if is_missing(value):
        return math.nan
    try:
        return float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _compare(x: float, op: str, value: object) -> bool:
    if math.isnan(x):
        return False
    if op == "lt":
        return x < value  # type: ignore[operator]
    if op == "le":
        return x <= value  # type: ignore[operator]
    if op == "gt":
        return x > value  # type: ignore[operator]
    if op == "ge":
        return x >= value  # type: ignore[operator]
    lo, hi = value  # type: ignore[misc]
    return lo <= x <= hi


def satisfies(row: Mapping, c: Constraint) -> bool:
    """Whether one product record (a dict, or anything with `.get`, such as a pandas row) meets `c`."""
    value = row.get(c.attribute)
    if c.op in SET_OPS:
        if is_missing(value):
            return c.op == "not_in"
        inside = text(value) in {text(v) for v in c.value}  # type: ignore[union-attr]
        return inside == (c.op == "in")
    return _compare(to_number(value), c.op, c.value)


# ------------------------------------------------------------------------------------------------ the guard
class AttributeGuard:
    """Constraint masks over one catalog, vectorised and cached per (attribute, op, value)."""

    def __init__(self, products: pd.DataFrame) -> None:
        self.products = products
        self.n_items = len(products)
        self._codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self._numbers: dict[str, np.ndarray] = {}
        self._cache: dict[tuple, np.ndarray] = {}
        for column in ATTRIBUTE_COLUMNS:
            if column in products.columns:
                self._column_codes(column)
        self._column_numbers("price")

    # -------------------------------------------------------------------------------------- column arrays
    def _column_codes(self, column: str) -> tuple[np.ndarray, dict[str, int]]:
        """(n_items,) int codes of the comparison text (-1: missing) and the text -> code table."""
        if column not in self._codes:
            if column in self.products.columns:
                raw = self.products[column]
                missing = raw.isna().to_numpy()
                keys = np.array([None if m else text(v) for v, m in zip(raw.to_numpy(object), missing, strict=True)],
                                dtype=object)
                codes, uniques = pd.factorize(keys, use_na_sentinel=True)
                table = {str(u): k for k, u in enumerate(uniques)}
            else:
                codes, table = np.full(self.n_items, -1, np.int64), {}
            self._codes[column] = (np.asarray(codes, np.int64), table)
        return self._codes[column]

    def _column_numbers(self, column: str) -> np.ndarray:
        """(n_items,) floats, NaN where missing or unreadable."""
        if column not in self._numbers:
            if column not in self.products.columns:
                values = np.full(self.n_items, np.nan)
            else:
                raw = self.products[column]
                if is_numeric_dtype(raw.dtype):
                    values = raw.to_numpy(dtype=float, na_value=np.nan)
                else:
                    values = np.array([to_number(v) for v in raw.to_numpy(object)], dtype=float)
            self._numbers[column] = values
        return self._numbers[column]

    # ---------------------------------------------------------------------------------------------- masks
    def mask(self, c: Constraint) -> np.ndarray:
        """(n_items,) bool: the items meeting `c`, hard or soft (read-only, cached)."""
        if c.op in SET_OPS:
            wanted = frozenset(text(v) for v in c.value)  # type: ignore[union-attr]
            inside = self._cached(("in", c.attribute, wanted), lambda: self._in_mask(c.attribute, wanted))
            if c.op == "in":
                return inside
            return self._cached(("not_in", c.attribute, wanted), lambda: ~inside)
        return self._cached((c.op, c.attribute, c.value), lambda: self._number_mask(c))

    def _cached(self, key: tuple, compute) -> np.ndarray:
        mask = self._cache.get(key)
        if mask is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            mask = compute()
            mask.setflags(write=False)
            self._cache[key] = mask
        return mask

    def _in_mask(self, column: str, wanted: frozenset[str]) -> np.ndarray:
        codes, table = self._column_codes(column)
        lookup = np.zeros(len(table) + 1, bool)  # the last slot, read by missing (-1) codes, stays False
        lookup[[table[w] for w in wanted if w in table]] = True
        return lookup[codes]

    def _number_mask(self, c: Constraint) -> np.ndarray:
        x = self._column_numbers(c.attribute)
        with np.errstate(invalid="ignore"):
            if c.op == "lt":
                return x < c.value
            if c.op == "le":
                return x <= c.value
            if c.op == "gt":
                return x > c.value
            if c.op == "ge":
                return x >= c.value
            lo, hi = c.value  # type: ignore[misc]
            return (x >= lo) & (x <= hi)

    def hard_mask(self, constraints: Sequence[Constraint]) -> np.ndarray:
        """(n_items,) bool: True where every hard constraint holds (all True when there is none)."""
        out = np.ones(self.n_items, bool)
        for c in constraints:
            if c.hard:
                out &= self.mask(c)
        return out

    def soft_matches(self, constraints: Sequence[Constraint]) -> np.ndarray:
        """(n_items,) float: how many of the soft constraints each item meets (0 .. number of soft constraints)."""
        out = np.zeros(self.n_items, float)
        for c in constraints:
            if not c.hard:
                out += self.mask(c)
        return out

    def violations(self, i: int, constraints: Sequence[Constraint]) -> list[Constraint]:
        """The hard constraints item row `i` breaks, re-checked on the raw record with `satisfies` (no masks, no
        codes, no cache), so a bug in the vectorised path cannot agree with itself."""
        row = {column: self.products[column].iat[i] for column in self.products.columns}
        return [c for c in constraints if c.hard and not satisfies(row, c)]
