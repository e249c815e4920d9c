"""Ingestion: read an export folder, validate every table against the contract, then write the store.

Everything is checked before anything is written: a folder with problems raises one `ValidationError` listing them
all (file, spreadsheet row, column, raw value, what was expected) and leaves the workspace exactly as it was.
Checks are vectorised with pandas so a few hundred thousand click-stream rows validate in seconds. Personal data
is pseudonymised (e-mail, postal code: salted SHA-256 with the workspace's secret salt) or dropped (names, phone,
address) here, so it never reaches the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vendome.data import store
from vendome.data.schema import (
    EMBEDDING_PREFIX,
    PII_DROPPED,
    PII_EXEMPT_TABLES,
    PII_HASHED,
    TABLE_NAMES,
    TABLES,
    Column,
    TableSpec,
)
from vendome.workspace import Workspace

MAX_VALUE_CHARS = 60
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})
_SEPARATORS = re.compile(r"[\s\-]+")


# --------------------------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One violation of the contract, located as a person would look it up in the file."""

    file: str
    row: int | None  # spreadsheet row (the header is row 1); None for a whole-file or whole-column problem
    column: str | None
    value: str | None
    expected: str

    def __str__(self) -> str:
        where = self.file + (f" row {self.row}" if self.row is not None else "")
        where += f", column {self.column}" if self.column else ""
        got = f": got {self.value!r}" if self.value is not None else ""
        return f"{where}{got}; expected {self.expected}"


class Problems(list):
    """Listed problems plus `total`, which also counts those left off beyond the per-check cap."""

    def __init__(self, items=(), total: int | None = None) -> None:
        super().__init__(items)
        self.total = len(self) if total is None else total


class ValidationError(Exception):
    """The input breaks the contract; `.problems` lists the problems, `.total` counts all of them."""

    def __init__(self, problems: list[Problem], total: int | None = None, max_problems: int = 50) -> None:
        self.problems = list(problems)
        self.total = total if total is not None else getattr(problems, "total", len(self.problems))
        self.max_problems = max_problems
        super().__init__(self.problems)

    def shown(self) -> list[Problem]:
        """At most `max_problems`, taken in turn from each kind (file, column, expectation), so that one kind with
        hundreds of rows cannot hide the others."""
        groups: dict[tuple, list[Problem]] = {}
        for p in self.problems:
            groups.setdefault((p.file, p.column, p.expected), []).append(p)
        picked: list[Problem] = []
        depth = 0
        while len(picked) < min(self.max_problems, len(self.problems)):
            for g in groups.values():
                if depth < len(g) and len(picked) < self.max_problems:
                    picked.append(g[depth])
            depth += 1
        order = {id(p): i for i, p in enumerate(self.problems)}
        return sorted(picked, key=lambda p: order[id(p)])

    def __str__(self) -> str:
        shown = self.shown()
        header = ("file", "row", "column", "value", "expected")
        rows = [(p.file, "" if p.row is None else str(p.row), p.column or "", "" if p.value is None else p.value,
                 p.expected) for p in shown]
        widths = [min(max([len(h)] + [len(r[i]) for r in rows]), 40) for i, h in enumerate(header[:-1])]
        lines = [f"{self.total:,} problem{'s' if self.total != 1 else ''} found; nothing was written."]
        for r in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
        more = self.total - len(shown)
        if more > 0:
            lines.append(f"… and {more:,} more problem{'s' if more != 1 else ''}")
        return "\n".join(lines)


class _Collector:
    """Collects problems, listing at most `cap` per (file, column, check) and counting the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = max(int(cap), 1)
        self.items: list[Problem] = []
        self.total = 0

    def one(self, file: str, expected: str, row: int | None = None, column: str | None = None,
            value: object = None) -> None:
        self.total += 1
        self.items.append(Problem(file, row, column, _show(value), expected))

    def rows(self, file: str, column: str | None, mask: np.ndarray, raw: pd.Series, base: int,
             expected: str | list[str]) -> None:
        """Problems at the rows where `mask` is true (positions; `base` turns a position into a row number)."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(positions):
            return
        self.total += len(positions)
        listed = positions[: self.cap]
        values = raw.iloc[listed].tolist()
        for k, (pos, value) in enumerate(zip(listed, values, strict=True)):
            exp = expected if isinstance(expected, str) else expected[k]
            self.items.append(Problem(file, int(pos) + base, column, _show(value), exp))

    def result(self) -> Problems:
        return Problems(self.items, self.total)


def _show(value: object) -> str | None:
    if value is None or (not isinstance(value, (str, list, tuple, np.ndarray)) and pd.isna(value)):
        return None if value is None else ""
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------- reading a folder
def read_folder(src: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """Read the contract tables of an export folder (NAME.csv or NAME.parquet; embeddings also as .npy + ids).

    CSV cells are read as text so that type problems can be reported with the raw value. Raises ValidationError
    for problems with the folder itself (missing products, a table given twice, unreadable files).
    """
    src = Path(src)
    if not src.is_dir():
        raise ValidationError([Problem(str(src), None, None, None, "a folder holding products.csv or "
                                       "products.parquet and the other tables")])
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, Path] = {}
    out = _Collector(cap=50)
    for name in TABLE_NAMES:
        candidates = [src / f"{name}.csv", src / f"{name}.parquet"]
        if name == "product_embeddings":
            candidates.append(src / f"{name}.npy")
        found = [p for p in candidates if p.is_file()]
        if len(found) > 1:
            out.one(found[0].name, f"one file per table, not both {' and '.join(p.name for p in found)}")
            continue
        if not found:
            if TABLES[name].required:
                seen = ", ".join(sorted(p.name for p in src.iterdir() if p.is_file())[:20]) or "no files"
                out.one(f"{name}.csv", f"{name}.csv or {name}.parquet in {src} (found: {seen})")
            continue
        path = found[0]
        try:
            if path.suffix == ".csv":
                tables[name] = pd.read_csv(path, dtype=str, keep_default_na=True, encoding="utf-8-sig")
            elif path.suffix == ".parquet":
                tables[name] = pd.read_parquet(path)
            else:
                tables[name] = _read_embeddings_npy(path, out)
            files[name] = path
        except _Unreadable:
            continue
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
            kind = "CSV" if path.suffix == ".csv" else path.suffix.lstrip(".")
            out.one(path.name, f"a readable UTF-8 {kind} file ({_first_line(e)})")
    if out.total:
        raise ValidationError(out.result())
    return tables, files


class _Unreadable(Exception):
    pass


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _read_embeddings_npy(path: Path, out: _Collector) -> pd.DataFrame:
    """product_embeddings.npy (n, d) + product_embeddings_ids.txt + optional product_embeddings.json."""
    ids_path = path.with_name("product_embeddings_ids.txt")
    meta_path = path.with_name("product_embeddings.json")
    if not ids_path.is_file():
        out.one(path.name, f"{ids_path.name} beside it, one product_id per line")
        raise _Unreadable
    matrix = np.load(path, allow_pickle=False)
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        out.one(path.name, f"a 2-D numeric array (got shape {matrix.shape}, dtype {matrix.dtype})")
        raise _Unreadable
    ids = [line.strip() for line in ids_path.read_text(encoding="utf-8").splitlines()]
    while ids and not ids[-1]:
        ids.pop()
    if len(ids) != len(matrix):
        out.one(ids_path.name, f"one product_id per row of {path.name} ({len(matrix)} rows, {len(ids)} ids)")
        raise _Unreadable
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    return pd.DataFrame({
        "product_id": pd.Series(ids, dtype="str"),
        "modality": str(meta.get("modality", "image")),
        "model": str(meta.get("model", "unknown")),
        "vector": pd.Series(list(matrix.astype(np.float32)), dtype=object),
    })


# --------------------------------------------------------------------------------------------- validation
def validate_tables(tables: dict[str, pd.DataFrame], files: dict[str, Path] | None = None,
                    now: pd.Timestamp | str | None = None, max_problems: int = 50, *, salt: bytes | None = None,
                    base_dir: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], Problems]:
    """Check every contract rule on every table; return (clean tables, problems).

    Clean tables carry contract dtypes (ids as text, prices float64, dates as UTC datetimes), enum values in
    their canonical spelling, local image paths made absolute, and personal data pseudonymised with `salt`
    (a throw-away random salt when None) or dropped. `files` maps table -> path, for naming files in problems and
    resolving relative image paths (else `base_dir`, else the current folder). `now` defaults to the clock; times
    more than a day after it are reported. At most `max_problems` are listed per column and check.
    """
    files = files or {}
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    salt = os.urandom(16) if salt is None else salt
    base_dir = Path(base_dir if base_dir is not None else files["products"].parent if "products" in files
                    else Path.cwd()).resolve()
    out = _Collector(max_problems)
    label = {name: files[name].name if name in files else name for name in TABLE_NAMES}

    if "products" not in tables:
        out.one("products.csv", "a products table (products.csv or products.parquet)")
    for a, b in (("orders", "order_items"), ("order_items", "orders")):
        if a in tables and b not in tables:
            out.one(label[a], f"{b}.csv or {b}.parquet beside it (orders and their lines come together)")

    clean: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        if name in tables:
            base = 1 if name in files and files[name].suffix == ".npy" else 2
            clean[name] = _check_table(TABLES[name], tables[name], label[name], base, now, out)

    _check_foreign_keys(clean, tables, files, label, out)
    if "products" in clean and "image_url" in clean["products"]:
        clean["products"]["image_url"] = _check_images(clean["products"]["image_url"], Path(base_dir),
                                                       label["products"], out)
    for name, df in clean.items():
        if name not in PII_EXEMPT_TABLES:
            clean[name] = _pseudonymise(df, salt)
    return clean, out.result()


def _check_table(spec: TableSpec, raw: pd.DataFrame, file: str, base: int, now: pd.Timestamp,
                 out: _Collector) -> pd.DataFrame:
    df = _normalise_headers(raw, spec).reset_index(drop=True)
    for col in spec.required_columns:
        if col not in df.columns:
            have = ", ".join(map(str, df.columns[:30]))
            out.one(file, f"a column named {col!r} (required; the file has: {have})", column=col)
    if spec.name == "product_embeddings":
        df = _check_embeddings(df, file, base, out)
    clean = pd.DataFrame(index=df.index)
    for col in df.columns:
        spec_col = spec.column(col)
        if spec_col is None:
            clean[col] = _extra(df[col]) if col != "vector" else df[col]
        else:
            clean[col] = _check_column(spec_col, df[col], file, base, now, out)
    if spec.primary_key and spec.primary_key in clean:
        _check_unique(clean[spec.primary_key], df[spec.primary_key], spec.primary_key, file, base, out)
    return clean


def _normalise_headers(df: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Trim header whitespace and match contract names case-insensitively ("Price " -> price)."""
    known = {c.lower(): c for c in spec.column_names}
    renamed, taken = {}, set(map(str, df.columns))
    for col in df.columns:
        name = str(col).strip()
        target = known.get(name.lower(), name)
        if target != col and target not in taken:
            renamed[col] = target
            taken.add(target)
    return df.rename(columns=renamed) if renamed else df


def _extra(values: pd.Series) -> pd.Series:
    """Unknown columns are kept; free-form objects (lists, dicts) become text so the store can hold them."""
    if values.dtype == object:
        return values.map(lambda v: v if isinstance(v, str) or _is_na(v) else str(v)).astype("str")
    return values


def _is_na(v: object) -> bool:
    return v is None or (np.isscalar(v) and pd.isna(v))


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as text, integers without a trailing .0 (Parquet ids may be numbers), blank cells as missing."""
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")
    text = values.astype("str").where(values.notna())
    stripped = text.str.strip()
    return stripped.where(stripped != "")


def _check_column(col: Column, raw: pd.Series, file: str, base: int, now: pd.Timestamp,
                  out: _Collector) -> pd.Series:
    present = raw.notna().to_numpy()
    if col.kind in ("str", "enum") or pd.api.types.is_string_dtype(raw) or raw.dtype == object:
        text = _as_text(raw)
        present = text.notna().to_numpy()
    else:
        text = raw
    if not col.nullable:
        out.rows(file, col.name, ~present, raw, base, "a value (this column may not be empty)")

    if col.kind == "str":
        values, bad = text, np.zeros(len(raw), bool)
    elif col.kind == "enum":
        canon = {}
        for v in pd.unique(text.dropna()):  # few distinct values: normalise each once
            key = _SEPARATORS.sub("_", v.lower())
            canon[v] = col.aliases.get(key, key)
        norm = text.map(canon)
        values = norm.astype("str")
        bad = present & ~norm.isin(col.values).to_numpy()
    elif col.kind in ("int", "float"):
        values, bad = _parse_number(raw if pd.api.types.is_numeric_dtype(raw) else text, col, present)
    elif col.kind == "bool":
        values, bad = _parse_bool(raw if pd.api.types.is_bool_dtype(raw) else text, present)
    else:
        values, bad = _parse_datetime(raw if not pd.api.types.is_string_dtype(raw) else text, col, present)
    out.rows(file, col.name, bad, raw, base, col.expected())
    ok = present & ~bad

    if col.min_value is not None:
        low = ok & (values.to_numpy(dtype=float, na_value=np.nan) < col.min_value)
        out.rows(file, col.name, low, raw, base, col.expected())
    if col.not_future and len(values):
        limit = now + pd.Timedelta(days=1)
        future = ok & (values > limit).fillna(False).to_numpy(dtype=bool)
        out.rows(file, col.name, future, raw, base,
                 f"a time no later than {limit:%Y-%m-%d %H:%M} UTC (this one is in the future)")
    return values


def _parse_number(raw: pd.Series, col: Column, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype("Int64")
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    arr = num.to_numpy()
    bad = present & ~np.isfinite(np.nan_to_num(arr, nan=np.inf, posinf=np.inf, neginf=np.inf))
    if col.kind == "float":
        return num.where(~bad), bad
    bad |= present & np.isfinite(arr) & (np.floor(np.nan_to_num(arr)) != np.nan_to_num(arr))
    num = num.where(~bad)
    return (num.astype("Int64") if num.isna().any() else num.astype("int64")), bad


def _parse_bool(raw: pd.Series, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw):
        values = raw.astype("boolean")
    else:
        low = raw.astype("str").str.lower()
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[low.isin(_TRUE).to_numpy()] = True
        values[low.isin(_FALSE).to_numpy()] = False
    bad = present & values.isna().to_numpy()
    return (values if values.isna().any() else values.astype(bool)), bad


def _parse_datetime(raw: pd.Series, col: Column, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """ISO 8601 with or without zone (naive means UTC); numbers as unix seconds where the column allows it."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        values = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw):
        values = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        if not col.unix_seconds:
            values = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
        else:
            values = pd.to_datetime(raw.astype("float64"), unit="s", utc=True, errors="coerce")
    else:
        text = raw.astype("str")
        values = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
        if present.any():
            values[present] = pd.to_datetime(text[present], utc=True, format="ISO8601", errors="coerce")
        todo = present & values.isna().to_numpy()
        if col.unix_seconds and todo.any():
            secs = pd.to_numeric(text[todo], errors="coerce")
            values[todo] = pd.to_datetime(secs, unit="s", utc=True, errors="coerce")
    values = values.astype("datetime64[us, UTC]")
    return values, present & values.isna().to_numpy()


def _check_unique(ids: pd.Series, raw: pd.Series, column: str, file: str, base: int, out: _Collector) -> None:
    dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
    if not dup.any():
        return
    first = pd.Series(np.arange(len(ids)), index=ids.index).groupby(ids.to_numpy()).transform("min").to_numpy()
    expected = [f"a unique {column} (already used on row {int(first[p]) + base})" for p in np.flatnonzero(dup)]
    out.rows(file, column, dup, raw, base, expected[: out.cap])


def _check_foreign_keys(clean: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame], files: dict[str, Path],
                        label: dict[str, str], out: _Collector) -> None:
    for name, df in clean.items():
        for fk in TABLES[name].foreign_keys:
            parent = clean.get(fk.table)
            if parent is None or fk.column not in df or fk.ref_column not in parent:
                continue  # an absent table (customers) or column has been reported or is allowed
            child = df[fk.column]
            unknown = child.notna().to_numpy() & ~_isin(child, parent[fk.ref_column].dropna())
            base = 1 if name in files and files[name].suffix == ".npy" else 2
            raw = _normalise_headers(tables[name], TABLES[name]).reset_index(drop=True)[fk.column]
            out.rows(label[name], fk.column, unknown, raw, base,
                     f"an existing {fk.ref_column} from {label[fk.table]}")


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Membership test; Arrow's hash kernel when both sides are Arrow-backed text (fast on click streams)."""
    if isinstance(values.array, pd.arrays.ArrowStringArray) and isinstance(allowed.array, pd.arrays.ArrowStringArray):
        found = pc.is_in(pa.array(values.array), value_set=pa.array(allowed.array))
        return found.to_numpy(zero_copy_only=False).astype(bool)
    return values.isin(allowed).to_numpy()


def _check_images(urls: pd.Series, base_dir: Path, file: str, out: _Collector) -> pd.Series:
    """Resolve local image paths against the export folder; URLs are kept and never fetched."""
    text = urls.astype("str")
    local = urls.notna().to_numpy() & ~text.str.match(_URL).fillna(False).to_numpy()
    local |= urls.notna().to_numpy() & text.str.startswith("file://").fillna(False).to_numpy()
    if not local.any():
        return urls
    resolved = {}
    for value in pd.unique(text[local]):
        path = Path(value.removeprefix("file://")).expanduser()
        resolved[value] = Path(os.path.normpath(path if path.is_absolute() else base_dir / path))
    full = text[local].map(lambda v: str(resolved[v]))
    exists = {str(p): p.is_file() for p in resolved.values()}
    missing = np.zeros(len(urls), bool)
    missing[local] = ~full.map(exists).to_numpy(dtype=bool)
    expected = [f"an existing image file (looked for {full.iloc[k]})"
                for k in np.flatnonzero(missing[local])[: out.cap]]
    out.rows(file, "image_url", missing, urls, 2, expected)
    result = urls.copy()
    result[local] = full.to_numpy()
    return result


def _check_embeddings(df: pd.DataFrame, file: str, base: int, out: _Collector) -> pd.DataFrame:
    """Turn emb_0..emb_n columns (or a `vector` column) into one float32 vector per row, checking widths."""
    df = df.copy()
    if "modality" not in df:
        df["modality"] = "image"
    if "model" not in df:
        df["model"] = "unknown"
    df["modality"] = _as_text(df["modality"]).fillna("image")
    df["model"] = _as_text(df["model"]).fillna("unknown")
    emb_cols = sorted((c for c in df.columns if re.fullmatch(rf"{EMBEDDING_PREFIX}\d+", str(c))),
                      key=lambda c: int(str(c)[len(EMBEDDING_PREFIX):]))
    if "vector" in df:
        rows = [np.asarray(v, np.float64).ravel() for v in df["vector"]]
        width_max = max((len(r) for r in rows), default=0)
        matrix = np.full((len(rows), width_max), np.nan)
        for i, r in enumerate(rows):
            matrix[i, : len(r)] = r
    elif emb_cols:
        cells = df[emb_cols]
        matrix = np.column_stack([pd.to_numeric(cells[c], errors="coerce").to_numpy(np.float64, na_value=np.nan)
                                  for c in emb_cols]) if len(df) else np.zeros((0, len(emb_cols)))
        for c, j in zip(emb_cols, range(len(emb_cols)), strict=True):
            unparsable = cells[c].notna().to_numpy() & np.isnan(matrix[:, j])
            out.rows(file, c, unparsable, cells[c], base, "a number")
        df = df.drop(columns=emb_cols)
    else:
        out.one(file, f"vector columns {EMBEDDING_PREFIX}0..{EMBEDDING_PREFIX}n", column=f"{EMBEDDING_PREFIX}0")
        df["vector"] = pd.Series([np.zeros(0, np.float32)] * len(df), dtype=object)
        return df
    filled = ~np.isnan(matrix) & ~np.isinf(matrix)
    width = np.where(filled.any(axis=1), matrix.shape[1] - np.argmax(filled[:, ::-1], axis=1), 0)
    gaps = (np.arange(matrix.shape[1])[None, :] < width[:, None]) & ~filled
    modality = df["modality"]
    shown = pd.Series([f"{int(w)} numbers" for w in width], index=df.index)
    out.rows(file, "vector", width == 0, shown, base, "an embedding vector (all emb_ cells are empty)")
    out.rows(file, "vector", gaps.any(axis=1), shown, base, "finite numbers with no empty cell or NaN inside")
    for mod in pd.unique(modality):
        rows = (modality == mod).to_numpy() & (width > 0)
        if not rows.any():
            continue
        common = int(pd.Series(width[rows]).mode().iloc[0])
        out.rows(file, "vector", rows & (width != common), shown, base,
                 f"a vector of {common} numbers like the other {mod} embeddings")
    pair = df["product_id"].astype("str") + "\x00" + modality if "product_id" in df else modality
    dup = pair.duplicated(keep="first").to_numpy()
    out.rows(file, "product_id", dup, df.get("product_id", modality), base,
             "one vector per product_id and modality (this one repeats)")
    df["vector"] = pd.Series([matrix[i, : width[i]].astype(np.float32) for i in range(len(matrix))],
                             index=df.index, dtype=object)
    return df


# --------------------------------------------------------------------------------------------- personal data
def pseudonym(value: str, salt: bytes, column: str = "email") -> str:
    """The stored pseudonym of a personal value (used to find a person again, e.g. for erasure)."""
    return _pseudonymise_values(pd.Series([value], dtype="str"), salt, column).iloc[0]


def _pseudonymise_values(values: pd.Series, salt: bytes, column: str) -> pd.Series:
    text = values.astype("str").str.strip()
    text = text.str.lower() if column.lower() == "email" else text.str.upper().str.replace(r"\s+", "", regex=True)
    uniq = pd.unique(text.dropna())
    digest = {v: hashlib.sha256(salt + b"\x00" + v.encode("utf-8")).hexdigest() for v in uniq}
    return text.map(digest).where(values.notna()).astype("str")


def _pseudonymise(df: pd.DataFrame, salt: bytes) -> pd.DataFrame:
    drop = [c for c in df.columns if str(c).lower() in PII_DROPPED]
    df = df.drop(columns=drop)
    for c in df.columns:
        if str(c).lower() in PII_HASHED:
            df[c] = _pseudonymise_values(df[c], salt, str(c))
    return df


# --------------------------------------------------------------------------------------------- ingestion
@dataclass
class IngestSummary:
    """What an ingestion wrote."""

    workspace: Path
    source: str
    counts: dict[str, int]
    content_hash: str
    seconds: float
    meta: dict = field(default_factory=dict)

    def __str__(self) -> str:
        rows = ", ".join(f"{n} {k}" for k, n in self.counts.items())
        return (f"ingested {self.source} into {self.workspace} in {self.seconds:.1f}s: {rows} "
                f"(content {self.content_hash[:12]})")


def ingest_folder(src: str | Path, ws: Workspace | str | Path, *, now: pd.Timestamp | str | None = None,
                  max_problems: int = 50, source: str | None = None) -> IngestSummary:
    """Validate an export folder and, only when it is clean, replace the workspace store with it."""
    start = time.perf_counter()
    src = Path(src)
    try:
        tables, files = read_folder(src)
    except ValidationError as e:
        e.max_problems = max_problems
        raise
    return _ingest(tables, ws, files=files, source=source or str(src.resolve()), now=now,
                   max_problems=max_problems, base_dir=src, start=start)


def _without_erased(ws: Workspace, tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], int]:
    """Leave out every row of customers erased from this workspace before (recognised by their receipts, so their
    ids are never stored): a CRM export that still holds her must not bring her back."""
    erased = store.erased_receipts(ws)
    if not erased:
        return tables, 0
    ids: set[str] = set()
    for df in tables.values():              # every table that names a customer: what she wrote included
        if "customer_id" in df:
            ids |= set(df["customer_id"].astype(str))
    gone = {c for c in ids if store.erasure_receipt(ws, c) in erased}
    if not gone:
        return tables, 0
    out = dict(tables)
    for name in out:
        if "customer_id" in out[name]:
            out[name] = out[name][~out[name]["customer_id"].astype(str).isin(gone)].reset_index(drop=True)
    if "order_items" in out and "orders" in tables:
        orders = tables["orders"]
        theirs = set(orders.loc[orders["customer_id"].astype(str).isin(gone), "order_id"].astype(str))
        lines = out["order_items"]
        out["order_items"] = lines[~lines["order_id"].astype(str).isin(theirs)].reset_index(drop=True)
    return out, len(gone)


def ingest_tables(tables: dict[str, pd.DataFrame], ws: Workspace | str | Path, *, source: str = "tables",
                  files: dict[str, Path] | None = None, now: pd.Timestamp | str | None = None,
                  max_problems: int = 50, base_dir: str | Path | None = None) -> IngestSummary:
    """Same as `ingest_folder` for contract tables built in memory (public-format loaders)."""
    return _ingest(tables, ws, files=files, source=source, now=now, max_problems=max_problems, base_dir=base_dir,
                   start=time.perf_counter())


def _ingest(tables: dict[str, pd.DataFrame], ws: Workspace | str | Path, *, files: dict[str, Path] | None,
            source: str, now: pd.Timestamp | str | None, max_problems: int, base_dir: str | Path | None,
            start: float) -> IngestSummary:
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    existing = store.read_salt(ws)
    salt = existing or os.urandom(32)
    clean, problems = validate_tables(tables, files, now=now, max_problems=max_problems, salt=salt,
                                      base_dir=base_dir)
    if problems.total:
        raise ValidationError(problems, max_problems=max_problems)
    if existing is None:
        store.write_salt(ws, salt)
    clean, left_out = _without_erased(ws, clean)
    meta = store.write_tables(ws, clean, {"source": source, "erased_customers_left_out": left_out})
    return IngestSummary(ws.root, source, meta["counts"], meta["content_hash"], time.perf_counter() - start, meta)
