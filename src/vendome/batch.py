"""Batch recommendations for a segment or every customer (e-mail campaigns, CRM exports), to Parquet or CSV.

    vendome batch --workspace WS --output campaign.parquet [--segment customer_segment=VIP] [--placement email]

The lists come from the one recommend path with the workspace's guardrails, as the API would serve them on that
placement at that moment; each row carries its reason. For the e-mail placement, clients without marketing consent
are left out; clients who opted out of personalisation get the non-personalised list (best sellers within the
rules). The file appears only when it is complete (written beside it, then moved into place). Rows follow the
customers table's order, so the sharded run (`vendome.batch_sharded`, an output folder of parts) is this file cut
into pieces.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from vendome.artifacts import load_model
from vendome.data.dataset import Dataset
from vendome.models.base import Recommender
from vendome.recommend import recommend_lists
from vendome.rules import Guard, Request, load_policy
from vendome.workspace import Workspace

FALSE = {"false", "0", "no", "n", "f", ""}
# One schema for the single file and every part of a sharded run, so the parts read as one dataset (an empty
# shard would otherwise write null-typed columns that do not unify with the others).
SCHEMA = pa.schema([("customer_id", pa.string()), ("rank", pa.int64()), ("product_id", pa.string()),
                    ("score", pa.float64()), ("reason_code", pa.string()), ("reason", pa.string()),
                    ("promotion", pa.string()), ("personalised", pa.bool_())])
COLUMNS = SCHEMA.names


@dataclass
class BatchSummary:
    path: Path
    customers: int
    rows: int
    skipped_no_consent: int
    not_personalised: int
    seconds: float


def select_customers(data: Dataset, segment: dict[str, list[str]] | None = None) -> np.ndarray:
    """Dense indices of the customers matching every `column: [values]` of `segment` (all customers when None, never
    an erased client's placeholder); an unknown column is an error that lists the ones there are."""
    from vendome.serve.privacy import TOMBSTONE_PREFIX

    keep = ~data.customers["customer_id"].astype(str).str.startswith(TOMBSTONE_PREFIX).to_numpy()  # erased clients
    for column, values in (segment or {}).items():
        if column not in data.customers:
            raise ValueError(f"--segment: the customers table has no column {column!r} "
                             f"(columns: {', '.join(c for c in data.customers.columns if c != 'customer_id')})")
        keep &= data.customers[column].astype(str).isin(values).to_numpy()
    return np.flatnonzero(keep)


def audience(data: Dataset, segment: dict[str, list[str]] | None, placement: str) -> tuple[np.ndarray, int]:
    """The segment's customers who may receive this placement, in table order, and how many were left out for
    lack of marketing consent (e-mail only)."""
    users = select_customers(data, segment)
    if placement != "email" or "marketing_consent" not in data.customers:
        return users, 0
    consent = ~data.customers["marketing_consent"].astype(str).str.strip().str.lower().isin(FALSE).to_numpy()
    return users[consent[users]], int((~consent[users]).sum())


def workspace_guard(ws: Workspace, data: Dataset) -> Guard:
    """The merchandiser's rules of the workspace (the defaults when it has no rule file)."""
    from vendome.serve.service import rules_path

    path = rules_path(ws)
    return Guard(load_policy(path if path.exists() else None), data)


def score_customers(model: Recommender, data: Dataset, guard: Guard, users: np.ndarray, opted_out: np.ndarray,
                    placement: str, k: int, now: float, batch_size: int = 512, progress: bool = False,
                    lock: AbstractContextManager | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The rows of `users`' lists (dense indices), in their order: the personalised list through the recommend path,
    or the best sellers within the rules where `opted_out` (a mask over `users`) is set. A customer's rows do not
    depend on who else is in the call, which is what lets a sharded run reproduce the single file."""
    lock = lock if lock is not None else nullcontext()
    ids = data.customers["customer_id"].astype(str).to_numpy()
    products = data.products["product_id"].astype(str).to_numpy()
    request = Request(placement, now=now)
    fallback = _best_sellers(data, guard, placement, k, now) if opted_out.any() else None
    out = _Columns()
    starts = range(0, len(users), batch_size)
    for start in tqdm(starts, desc=f"batch {model.name}", unit="batch", disable=not progress):
        rows, off = users[start:start + batch_size], opted_out[start:start + batch_size]
        personal = rows[~off]
        with lock:
            items, scores, labels = recommend_lists(model, personal, k, guard=guard, request=request)
            why = model.explain_many(personal, [row[row >= 0] for row in items])
        r = 0
        for u, is_off in zip(rows, off, strict=True):
            if is_off:
                out.add(ids[u], products, *fallback, personalised=False)
                continue
            keep = items[r] >= 0
            out.add(ids[u], products, items[r][keep], scores[r][keep], why[r], labels[r], personalised=True)
            r += 1
        if on_progress is not None:
            on_progress(min(start + batch_size, len(users)), len(users))
    return out.frame()


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write `table` to `path` (.parquet with SCHEMA, or .csv) so that it appears whole or not at all: into a
    hidden temp file beside it, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            pq.write_table(pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False), tmp)
        else:
            table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run_batch(ws: Workspace, output: Path, model_name: str = "hybrid", placement: str = "email", k: int = 10,
              segment: dict[str, list[str]] | None = None, data: Dataset | None = None, batch_size: int = 512,
              progress: bool = True, now: float | None = None, *, model: Recommender | None = None,
              guard: Guard | None = None, opted_out: set[str] | None = None,
              lock: AbstractContextManager | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> BatchSummary:
    """Write the lists of the segment's customers to `output`. The API passes its live `model`, `guard`, opt-out
    set and `lock` (held per batch, so live events never change the model halfway through a batch) instead of
    loading them; `on_progress(done, total)` follows the customers written."""
    from vendome.pipeline import training_data
    from vendome.serve.privacy import Consent

    t0 = time.perf_counter()
    output = Path(output)
    if output.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"--output must end in .parquet or .csv (or be a folder, without a suffix, for a sharded "
                         f"run), got {output.name!r}")
    data = data if data is not None else training_data(ws, progress=False)
    model = model if model is not None else load_model(ws, model_name)[0]
    guard = guard if guard is not None else workspace_guard(ws, data)
    users, skipped = audience(data, segment, placement)
    opted = Consent(ws).opted_out() if opted_out is None else opted_out
    off = opted_out_mask(data, users, opted)
    now = time.time() if now is None else now
    table = score_customers(model, data, guard, users, off, placement, k, now, batch_size, progress, lock,
                            on_progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, output)
    return BatchSummary(output, int(len(users)), int(len(table)), skipped, int(off.sum()),
                        round(time.perf_counter() - t0, 2))


def opted_out_mask(data: Dataset, users: np.ndarray, opted: set[str]) -> np.ndarray:
    """Which of `users` (dense indices) opted out of personalisation."""
    ids = data.customers["customer_id"].astype(str).to_numpy()[users]
    return np.isin(ids, list(opted)) if opted else np.zeros(len(users), bool)


def _best_sellers(data: Dataset, guard: Guard, placement: str, k: int, now: float) -> tuple:
    """The non-personalised list (items, scores, reasons, promotion labels): best sellers within the rules."""
    pop = np.asarray(data.matrix().sum(0)).ravel().astype(np.float32)
    req = Request(placement, None, (), now)
    items, scores, labels = guard.select(pop, guard.allowed(None, req)[0], req, k)
    return items, scores, [_Reason("not_personalised", "a best seller (personalisation is off for this client)")] * \
        len(items), labels


@dataclass
class _Reason:
    code: str
    text: str


class _Columns:
    """Rows gathered column by column (one DataFrame at the end, not one per customer)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in COLUMNS}

    def add(self, customer_id: str, products: np.ndarray, items: np.ndarray, scores: np.ndarray, reasons, labels,
            personalised: bool) -> None:
        n = len(items)
        c = self.cols
        c["customer_id"] += [customer_id] * n
        c["rank"] += range(1, n + 1)
        c["product_id"] += products[items].tolist()
        c["score"] += np.asarray(scores, dtype=float).tolist()
        c["reason_code"] += [r.code for r in reasons]
        c["reason"] += [r.text for r in reasons]
        c["promotion"] += list(labels[:n])
        c["personalised"] += [personalised] * n

    def frame(self) -> pd.DataFrame:
        table = pd.DataFrame(self.cols, columns=COLUMNS)
        return table.astype({"rank": "int64", "score": "float64", "personalised": "bool"})
