"""Ingestion: the contract is checked in full before anything is written, and personal data never lands."""

from __future__ import annotations

import json
import re
import stat
import time

import numpy as np
import pandas as pd
import pytest

from vendome.data import store
from vendome.data.ingest import (
    Problem,
    ValidationError,
    ingest_folder,
    ingest_tables,
    pseudonym,
    read_folder,
    validate_tables,
)
from vendome.workspace import Workspace


def test_clean_export_ingests_with_matching_counts(export, ws, now):
    summary = ingest_folder(export, ws, now=now)

    assert summary.counts == {"products": 10, "customers": 5, "orders": 4, "order_items": 5, "interactions": 18}
    assert summary.source == str(export.resolve())
    assert re.fullmatch(r"[0-9a-f]{64}", summary.content_hash)
    stored = store.read_tables(ws)
    assert {k: len(v) for k, v in stored.items()} == summary.counts
    assert store.read_meta(ws)["content_hash"] == summary.content_hash


def test_clean_tables_have_contract_dtypes(export, ws, now):
    ingest_folder(export, ws, now=now)
    stored = store.read_tables(ws)

    assert str(stored["interactions"]["timestamp"].dtype) == "datetime64[us, UTC]"
    assert str(stored["orders"]["order_date"].dtype) == "datetime64[us, UTC]"
    assert stored["products"]["price"].dtype == np.float64
    assert stored["order_items"]["quantity"].dtype == np.int64
    assert pd.api.types.is_string_dtype(stored["products"]["product_id"])
    assert stored["products"]["sku_code"].tolist()[:2] == ["VDM-001", "VDM-002"]  # unknown columns are kept


def test_personal_data_never_reaches_the_store(export, ws, now, pii):
    ingest_folder(export, ws, now=now)

    customers = store.read_tables(ws)["customers"]
    assert not {"first_name", "last_name", "phone"} & set(customers.columns)
    assert customers["email"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert customers["postal_code"].str.fullmatch(r"[0-9a-f]{64}").all()
    raw = Workspace(ws).db.read_bytes()
    for values in pii.values():
        for value in values:
            assert value.encode() not in raw, value


def test_pseudonyms_are_stable_across_reingestion_and_the_salt_is_private(export, ws, now, pii):
    ingest_folder(export, ws, now=now)
    first = store.read_tables(ws)["customers"]["email"].tolist()
    ingest_folder(export, ws, now=now)
    second = store.read_tables(ws)["customers"]["email"].tolist()

    assert first == second
    salt = store.read_salt(ws)
    assert first[0] == pseudonym(pii["email"][0].upper(), salt, "email")  # e-mails match case-insensitively
    assert stat.S_IMODE((Workspace(ws).root / store.SALT_FILE).stat().st_mode) == 0o600


def test_corrupted_export_lists_every_problem_and_leaves_the_workspace_untouched(
        tmp_path, tables, make_export, digest, ws, now):
    ingest_folder(make_export(tables, tmp_path / "good"), ws, now=now)
    before = digest(ws)

    bad = {k: v.copy() for k, v in tables.items()}
    p = bad["products"].astype({"price": object})
    p.loc[2, "price"] = "abc"            # row 4
    p.loc[5, "price"] = -50.0            # row 7
    bad["products"] = pd.concat([p, p.iloc[[1]]], ignore_index=True)  # row 12 repeats P002 of row 3
    bad["orders"] = bad["orders"].drop(columns=["order_date"])
    bad["interactions"].loc[3, "customer_id"] = "C999"                                 # row 5
    bad["interactions"].loc[6, "timestamp"] = pd.Timestamp("2099-01-01T00:00:00Z")     # row 8
    src = make_export(bad, tmp_path / "bad")

    with pytest.raises(ValidationError) as info:
        ingest_folder(src, ws, now=now)

    found = {(p.file, p.row, p.column): p for p in info.value.problems}
    assert found[("products.csv", 4, "price")].value == "abc"
    assert found[("products.csv", 4, "price")].expected == "a number >= 0"
    assert found[("products.csv", 7, "price")].value == "-50.0"
    assert found[("products.csv", 12, "product_id")].expected == "a unique product_id (already used on row 3)"
    assert "'order_date'" in found[("orders.csv", None, "order_date")].expected
    assert found[("interactions.csv", 5, "customer_id")].value == "C999"
    assert found[("interactions.csv", 5, "customer_id")].expected == "an existing customer_id from customers.csv"
    assert "future" in found[("interactions.csv", 8, "timestamp")].expected
    assert info.value.total == len(info.value.problems) == 6
    text = str(info.value)
    assert "6 problems found" in text and "C999" in text and "abc" in text
    assert digest(ws) == before


def test_a_failed_first_ingestion_creates_nothing(tmp_path, tables, make_export, ws, now):
    tables["products"].loc[0, "stock_status"] = "sold out soon"
    with pytest.raises(ValidationError) as info:
        ingest_folder(make_export(tables, tmp_path / "bad"), ws, now=now)

    assert info.value.problems[0].expected.startswith("one of in_stock, low_stock")
    assert not ws.exists()


def test_problems_beyond_the_cap_are_counted_not_listed(tables, now, export, ws):
    interactions = pd.concat([tables["interactions"]] * 10, ignore_index=True)
    interactions["interaction_id"] = [f"I{i}" for i in range(len(interactions))]
    interactions["interaction_type"] = "glance"
    tables["interactions"] = interactions

    with pytest.raises(ValidationError) as info:
        ingest_tables(tables, ws, now=now, max_problems=10, base_dir=export)

    assert info.value.total == 180
    assert len(info.value.problems) == 10
    assert "… and 170 more problems" in str(info.value)


def test_cap_applies_per_column_and_check(tables, now, export):
    tables["interactions"]["interaction_type"] = "glance"
    tables["products"]["price"] = -1.0

    _, problems = validate_tables(tables, now=now, max_problems=3, base_dir=export)

    assert problems.total == 18 + 10
    assert sorted({p.column for p in problems}) == ["interaction_type", "price"]
    assert len(problems) == 6


def test_reingesting_the_same_export_is_idempotent(export, ws, now):
    first = ingest_folder(export, ws, now=now)
    tables_before = store.read_tables(ws)
    second = ingest_folder(export, ws, now=now)

    assert second.content_hash == first.content_hash
    after = store.read_tables(ws)
    for name, df in tables_before.items():
        pd.testing.assert_frame_equal(after[name], df)


def test_csv_and_parquet_exports_give_the_same_store(tmp_path, tables, make_export, now):
    csv = ingest_folder(make_export(tables, tmp_path / "csv"), tmp_path / "ws_csv", now=now)
    pq = ingest_folder(make_export(tables, tmp_path / "pq", fmt="parquet"), tmp_path / "ws_pq", now=now)

    a, b = store.read_tables(tmp_path / "ws_csv"), store.read_tables(tmp_path / "ws_pq")
    assert csv.counts == pq.counts
    for name in a:
        left, right = a[name], b[name]
        if name == "products":  # local pictures resolve into each export folder
            assert left["image_url"].str.startswith(str(tmp_path / "csv")).sum() == 7
            assert right["image_url"].str.startswith(str(tmp_path / "pq")).sum() == 7
            left, right = left.drop(columns="image_url"), right.drop(columns="image_url")
        if name == "customers":  # each workspace has its own pseudonym salt
            left, right = left.drop(columns=["email", "postal_code"]), right.drop(columns=["email", "postal_code"])
        pd.testing.assert_frame_equal(left, right)


def test_image_paths_resolve_urls_stay_and_missing_files_are_reported(tmp_path, tables, make_export, now):
    src = make_export(tables, tmp_path / "export")
    clean, problems = validate_tables(*read_folder(src), now=now)
    urls = clean["products"].set_index("product_id")["image_url"]

    assert problems.total == 0
    assert urls["P001"] == str(src / "images" / "P001.jpg")
    assert urls["P003"] == "https://cdn.example.com/p003.jpg"
    assert pd.isna(urls["P008"])

    (src / "images" / "P004.jpg").unlink()
    _, problems = validate_tables(*read_folder(src), now=now)
    assert [(p.file, p.row, p.column, p.value) for p in problems] == [
        ("products.csv", 5, "image_url", "images/P004.jpg")]
    assert str(src / "images" / "P004.jpg") in problems[0].expected


def test_interaction_timestamps_accept_unix_seconds_and_zones(tables, now, export):
    ts = tables["interactions"]["timestamp"]
    raw = ts.map(lambda t: t.isoformat()).astype(object)
    raw[0] = str(int(ts[0].timestamp()))                          # unix seconds
    raw[1] = (ts[1].tz_convert("Europe/Paris")).isoformat()        # with an offset
    raw[2] = ts[2].strftime("%Y-%m-%d %H:%M:%S")                   # naive means UTC
    tables["interactions"]["timestamp"] = raw

    clean, problems = validate_tables(tables, now=now, base_dir=export)

    assert problems.total == 0
    assert clean["interactions"]["timestamp"].tolist() == ts.tolist()


def test_enum_spellings_are_normalised(tables, now, export):
    tables["orders"]["order_status"] = ["Completed", "DELIVERED", "canceled", "Returned"]
    tables["products"].loc[0, "stock_status"] = "In Stock"

    clean, problems = validate_tables(tables, now=now, base_dir=export)

    assert problems.total == 0
    assert clean["orders"]["order_status"].tolist() == ["completed", "delivered", "cancelled", "returned"]
    assert clean["products"]["stock_status"].iloc[0] == "in_stock"


def test_required_values_may_not_be_empty_but_image_and_material_may(tables, now, export):
    tables["products"].loc[3, "title"] = "  "
    tables["products"].loc[4, "image_url"] = None
    tables["products"].loc[4, "material"] = None

    _, problems = validate_tables(tables, now=now, base_dir=export)

    assert [(p.row, p.column, p.expected) for p in problems] == [
        (5, "title", "a value (this column may not be empty)")]


def test_folder_problems_are_reported_before_reading(tmp_path, tables, make_export):
    src = make_export(tables, tmp_path / "export")
    tables["customers"].to_parquet(src / "customers.parquet")
    (src / "products.csv").rename(src / "product.csv")

    with pytest.raises(ValidationError) as info:
        read_folder(src)

    expected = [p.expected for p in info.value.problems]
    assert any("products.csv or products.parquet" in e and "product.csv" in e for e in expected)
    assert any("not both customers.csv and customers.parquet" in e for e in expected)


def test_orders_need_their_order_items(tables, now, export):
    del tables["order_items"]
    _, problems = validate_tables(tables, now=now, base_dir=export)
    assert [p.file for p in problems] == ["orders"]
    assert "order_items" in problems[0].expected


def test_only_products_are_required(tables, ws, now):
    summary = ingest_tables({"products": tables["products"].drop(columns="image_url").assign(image_url=None)}, ws,
                            source="catalog only", now=now)
    assert summary.counts == {"products": 10}
    assert store.load_dataset(ws).n_items == 10


def test_embeddings_from_csv_columns(export, ws, now, embeddings):
    ids, matrix = embeddings
    wide = pd.DataFrame(matrix, columns=[f"emb_{j}" for j in range(matrix.shape[1])])
    wide.insert(0, "product_id", ids)
    wide.insert(1, "modality", "text")
    wide.insert(2, "model", "all-MiniLM-L6-v2")
    wide.to_csv(export / "product_embeddings.csv", index=False, float_format="%.9g")

    ingest_folder(export, ws, now=now)
    got = store.read_product_embeddings(ws)

    assert list(got) == ["text"]
    got_ids, got_matrix, model = got["text"]
    assert got_ids == ids and model == "all-MiniLM-L6-v2"
    assert got_matrix.dtype == np.float32
    np.testing.assert_array_equal(got_matrix, matrix)


def test_embeddings_from_npy_and_ids(export, ws, now, embeddings):
    ids, matrix = embeddings
    np.save(export / "product_embeddings.npy", matrix)
    (export / "product_embeddings_ids.txt").write_text("\n".join(ids) + "\n")
    (export / "product_embeddings.json").write_text(json.dumps({"model": "efficientnet-lite0"}))

    summary = ingest_folder(export, ws, now=now)
    got_ids, got_matrix, model = store.read_product_embeddings(ws)["image"]

    assert summary.counts["product_embeddings"] == 10
    assert got_ids == ids and model == "efficientnet-lite0"
    np.testing.assert_array_equal(got_matrix, matrix)


def test_embedding_rows_of_another_width_or_with_nan_are_reported(export, ws, now, embeddings):
    ids, matrix = embeddings
    wide = pd.DataFrame(matrix, columns=[f"emb_{j}" for j in range(8)]).astype(object)
    wide.loc[2, "emb_7"] = None      # row 4: one number short
    wide.loc[5, "emb_3"] = "nan"     # row 7: a hole
    wide.insert(0, "product_id", ids[:9] + ["P404"])  # row 11: not in the catalog
    wide.to_csv(export / "product_embeddings.csv", index=False)

    with pytest.raises(ValidationError) as info:
        ingest_folder(export, ws, now=now)

    found = {(p.row, p.column): p.expected for p in info.value.problems}
    assert found[(4, "vector")] == "a vector of 8 numbers like the other image embeddings"
    assert found[(7, "vector")] == "finite numbers with no empty cell or NaN inside"
    assert found[(11, "product_id")] == "an existing product_id from products.csv"
    assert info.value.total == 3


def test_load_dataset_counts_completed_order_lines_but_not_cancelled_ones(export, ws, now):
    ingest_folder(export, ws, now=now)
    data = store.load_dataset(ws)

    buys = data.interactions[data.interactions["behavior"] == "purchase"]
    bought = set(data.products["product_id"].to_numpy()[buys["item"].to_numpy()])
    assert bought == {"P001", "P004", "P006", "P007"}   # O001 completed, O002 delivered, one click-stream purchase
    assert "P005" not in bought                         # O003 was cancelled
    assert "P010" not in bought                         # O004 was returned
    assert data.n_users == 5 and data.n_items == 10


def test_three_hundred_thousand_interactions_validate_in_seconds(tables, now, export):
    n = 300_000
    rng = np.random.default_rng(0)
    stamps = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 150 * 86400, n).astype("timedelta64[s]")
    tables["interactions"] = pd.DataFrame({
        "interaction_id": pd.Series(np.arange(n)).astype(str),
        "customer_id": rng.choice(tables["customers"]["customer_id"].to_numpy(), n),
        "product_id": rng.choice(tables["products"]["product_id"].to_numpy(), n),
        "interaction_type": rng.choice(["view", "click", "add_to_cart", "purchase"], n),
        "timestamp": np.char.add(np.datetime_as_string(stamps, unit="s"), "Z"),
        "interaction_duration": rng.exponential(30, n).round(1).astype(str),
    }).astype("str")

    start = time.perf_counter()
    clean, problems = validate_tables(tables, now=now, base_dir=export)
    elapsed = time.perf_counter() - start

    assert problems.total == 0 and len(clean["interactions"]) == n
    assert elapsed < 10, f"validation took {elapsed:.1f}s"


def test_problem_reads_like_a_sentence():
    p = Problem("orders.csv", 12, "total_amount", "-3", "a number >= 0")
    assert str(p) == "orders.csv row 12, column total_amount: got '-3'; expected a number >= 0"
