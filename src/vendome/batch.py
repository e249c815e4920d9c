"""Batch recommendations for a segment or every customer (e-mail campaigns, CRM exports), to Parquet or CSV.

    vendome batch --workspace WS --output campaign.parquet [--segment customer_segment=VIP] [--placement email]

The lists come from the one recommend path with the workspace's guardrails, as the API would serve them on that
placement at that moment; each row carries its reason. For the e-mail placement, clients without marketing consent
are left out; clients who opted out of personalisation get the non-personalised list (best sellers within the
rules). The file appears only when it is complete (written beside it, then moved into place).
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
from tqdm import tqdm

from vendome.artifacts import load_model
from vendome.data.dataset import Dataset
from vendome.models.base import Recommender
from vendome.recommend import recommend_lists
from vendome.rules import Guard, Request, load_policy
from vendome.workspace import Workspace

FALSE = {"false", "0", "no", "n", "f", ""}
COLUMNS = ["customer_id", "rank", "product_id", "score", "reason_code", "reason", "promotion", "personalised"]


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
    from vendome.serve.service import rules_path

    t0 = time.perf_counter()
    output = Path(output)
    if output.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"--output must end in .parquet or .csv, got {output.name!r}")
    data = data if data is not None else training_data(ws, progress=False)
    model = model if model is not None else load_model(ws, model_name)[0]
    if guard is None:
        path = rules_path(ws)
        guard = Guard(load_policy(path if path.exists() else None), data)
    lock = lock if lock is not None else nullcontext()
    users = select_customers(data, segment)
    skipped = 0
    if placement == "email" and "marketing_consent" in data.customers:
        consent = ~data.customers["marketing_consent"].astype(str).str.strip().str.lower().isin(FALSE).to_numpy()
        skipped = int((~consent[users]).sum())
        users = users[consent[users]]
    opted = Consent(ws).opted_out() if opted_out is None else opted_out
    ids = data.customers["customer_id"].astype(str).to_numpy()
    off = np.isin(ids[users], list(opted)) if opted else np.zeros(len(users), bool)
    now = time.time() if now is None else now
    frames = []
    starts = range(0, len(users), batch_size)
    for start in tqdm(starts, desc=f"batch {model.name}", unit="batch", disable=not progress):
        rows = users[start:start + batch_size]
        personal = rows[~off[start:start + batch_size]]
        with lock:
            items, scores, labels = recommend_lists(model, personal, k, guard=guard,
                                                    request=Request(placement, now=now))
            why = model.explain_many(personal, [row[row >= 0] for row in items])
        for r, u in enumerate(personal):
            keep = items[r] >= 0
            frames.append(_rows(ids[u], items[r][keep], scores[r][keep], why[r], labels[r], True, data))
        if on_progress is not None:
            on_progress(min(start + batch_size, len(users)), len(users))
    if off.any():
        pop = np.asarray(data.matrix().sum(0)).ravel().astype(np.float32)
        req = Request(placement, None, (), now)
        items, scores, labels = guard.select(pop, guard.allowed(None, req)[0], req, k)
        reasons = [_Reason("not_personalised", "a best seller (personalisation is off for this client)")] * len(items)
        for u in users[off]:
            frames.append(_rows(ids[u], items, scores, reasons, labels, False, data))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    try:
        if output.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return BatchSummary(output, int(len(users)), int(len(table)), skipped, int(off.sum()),
                        round(time.perf_counter() - t0, 2))


@dataclass
class _Reason:
    code: str
    text: str


def _rows(customer_id: str, items: np.ndarray, scores: np.ndarray, reasons, labels, personalised: bool,
          data: Dataset) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": customer_id, "rank": np.arange(1, len(items) + 1),
        "product_id": data.products["product_id"].to_numpy()[items], "score": scores.astype(float),
        "reason_code": [r.code for r in reasons], "reason": [r.text for r in reasons],
        "promotion": list(labels[:len(items)]), "personalised": personalised})
