"""Reviews and client notes: contract tables read through ingestion, on the Dataset, and kept out of the test."""

from __future__ import annotations

import pandas as pd
import pytest

from vendome.data.dataset import Dataset
from vendome.data.ingest import ValidationError, ingest_folder
from vendome.data.splits import split
from vendome.data.store import load_dataset


def with_texts(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = {k: v.copy() for k, v in tables.items()}
    out["reviews"] = pd.DataFrame({
        "review_id": ["R1", "R2"], "customer_id": ["C001", "C002"], "product_id": ["P001", "P004"],
        "title": ["Stunning", None], "text": ["A gift for our anniversary, she loved it.", "Pearls are her thing."],
        "rating": [5, 4], "timestamp": pd.to_datetime(["2024-03-20T10:00:00Z", "2024-04-10T09:00:00Z"])})
    out["client_notes"] = pd.DataFrame({
        "note_id": ["N1"], "customer_id": ["C003"], "text": ["Only wears rose gold; no diamonds."],
        "author": ["SA Paris"], "timestamp": pd.to_datetime(["2024-05-01T12:00:00Z"])})
    return out


def test_reviews_and_notes_are_ingested_and_read_onto_the_dataset(tables, make_export, tmp_path, ws, now):
    summary = ingest_folder(make_export(with_texts(tables), tmp_path / "src"), ws, now=now)
    assert summary.counts["reviews"] == 2 and summary.counts["client_notes"] == 1
    data = load_dataset(ws)
    texts = data.texts
    assert list(texts["kind"]) == ["review", "review", "note"]
    assert texts["text"].iloc[0] == "Stunning. A gift for our anniversary, she loved it."
    assert data.customers["customer_id"].iloc[texts["user"].iloc[2]] == "C003" and texts["item"].iloc[2] == -1
    assert data.products["product_id"].iloc[texts["item"].iloc[1]] == "P004"


def test_a_review_of_an_unknown_product_or_without_text_is_refused(tables, make_export, tmp_path, ws, now):
    bad = with_texts(tables)
    bad["reviews"].loc[1, "product_id"] = "P999"
    bad["client_notes"].loc[0, "text"] = None
    with pytest.raises(ValidationError) as info:
        ingest_folder(make_export(bad, tmp_path / "bad"), ws, now=now)
    found = {(p.file, p.row, p.column) for p in info.value.problems}
    assert ("reviews.csv", 3, "product_id") in found and ("client_notes.csv", 2, "text") in found


def test_splits_keep_only_texts_written_before_what_they_hold_out():
    products = pd.DataFrame({"product_id": ["a", "b", "c"], "title": list("abc")})
    customers = pd.DataFrame({"customer_id": ["u", "v"]})
    day = 86_400
    inter = pd.DataFrame({"customer_id": ["u", "u", "v", "v"], "product_id": ["a", "b", "a", "c"],
                          "interaction_type": "purchase", "timestamp": [1 * day, 50 * day, 2 * day, 3 * day]})
    reviews = pd.DataFrame({"customer_id": ["u", "u", "v"], "product_id": ["a", "b", "c"],
                            "text": ["before", "of the test purchase", "v's, after the cut"],
                            "timestamp": [2 * day, 51 * day, 40 * day]})
    data = Dataset.from_tables({"products": products, "customers": customers, "interactions": inter,
                                "reviews": reviews})
    temporal = split(data, "temporal", cutoff=30 * day)
    assert list(temporal.train.texts["text"]) == ["before"]
    loo = split(data, "loo")
    assert list(loo.train.texts["text"]) == ["before"]         # u's test is b (day 50), v's is c (day 3)
