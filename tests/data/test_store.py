"""The workspace store: atomic replacement, faithful round trips, room for the other layers' tables."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vendome.data import store
from vendome.data.ingest import ingest_folder, validate_tables
from vendome.data.schema import CONTRACT_VERSION
from vendome.workspace import Workspace


@pytest.fixture
def clean(tables, export, now) -> dict[str, pd.DataFrame]:
    tables, problems = validate_tables(tables, now=now, base_dir=export, salt=b"test-salt")
    assert problems.total == 0
    return tables


def test_a_missing_workspace_says_how_to_create_one(ws):
    with pytest.raises(store.StoreNotFoundError, match=r"vendome ingest .*vendome demo"):
        store.read_tables(ws)
    with pytest.raises(store.StoreNotFoundError):
        store.load_dataset(ws)


def test_tables_round_trip_with_their_dtypes(ws, clean):
    store.write_tables(ws, clean, {"source": "unit test"})
    back = store.read_tables(ws)

    assert list(back) == list(clean)
    for name, df in clean.items():
        pd.testing.assert_frame_equal(back[name], df, check_dtype=True)
    assert back["interactions"]["timestamp"].dt.tz is not None


def test_meta_records_the_ingestion(ws, clean):
    written = store.write_tables(ws, clean, {"source": "boutique export"})
    meta = store.read_meta(ws)

    assert meta == written
    assert meta["source"] == "boutique export"
    assert meta["counts"]["interactions"] == 18
    assert meta["content_hash"] == store.content_hash(clean)
    assert meta["contract_version"] == CONTRACT_VERSION
    assert pd.Timestamp(meta["ingested_at"]).tzinfo is not None


def test_content_hash_follows_the_data(clean):
    before = store.content_hash(clean)
    clean["products"].loc[0, "price"] = 12_600.0
    assert store.content_hash(clean) != before


def test_a_crash_while_replacing_leaves_the_old_store_intact(ws, clean, digest, monkeypatch):
    store.write_tables(ws, clean, {"source": "first"})
    before = digest(ws)

    def power_cut(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(store.os, "replace", power_cut)
    changed = {**clean, "products": clean["products"].head(3)}
    with pytest.raises(OSError, match="disk went away"):
        store.write_tables(ws, changed, {"source": "second"})

    assert digest(ws) == before  # no temporary file left behind either
    assert store.read_meta(ws)["source"] == "first"


def test_other_layers_tables_live_beside_the_contract_and_survive_reingestion(export, ws, now):
    ingest_folder(export, ws, now=now)
    events = pd.DataFrame({"customer_id": ["C001"], "product_id": ["P002"], "event": ["view"],
                           "at": pd.to_datetime(["2024-06-30T10:00:00Z"])})
    store.write_dataframe(ws, "event_log", events)
    store.write_dataframe(ws, "event_log", events.assign(event="add_to_cart"), mode="append")

    ingest_folder(export, ws, now=now)
    log = store.read_dataframe(ws, "event_log")

    assert log["event"].tolist() == ["view", "add_to_cart"]
    assert str(log["at"].dtype) == "datetime64[us, UTC]"
    assert store.has_table(ws, "event_log") and not store.has_table(ws, "model_registry")


def test_write_dataframe_replaces_by_default(ws):
    store.write_dataframe(ws, "model_registry", pd.DataFrame({"name": ["ease"], "version": [1]}))
    store.write_dataframe(ws, "model_registry", pd.DataFrame({"name": ["sasrec"], "version": [2]}))
    assert store.read_dataframe(ws, "model_registry").to_dict("list") == {"name": ["sasrec"], "version": [2]}


def test_write_dataframe_protects_the_meta_table_and_rejects_odd_names(ws):
    for name in ("meta", "drop table x; --", "1st"):
        with pytest.raises(ValueError, match="identifier"):
            store.write_dataframe(ws, name, pd.DataFrame({"a": [1]}))
    with pytest.raises(KeyError, match="no table 'nothing'"):
        store.write_dataframe(ws, "something", pd.DataFrame({"a": [1]}))
        store.read_dataframe(ws, "nothing")


def test_write_tables_accepts_only_contract_tables(ws, clean):
    with pytest.raises(ValueError, match="write_dataframe"):
        store.write_tables(ws, {**clean, "event_log": pd.DataFrame({"a": [1]})})
    assert not Workspace(ws).db.exists()


def test_embeddings_read_back_per_modality(ws, clean, embeddings):
    ids, matrix = embeddings
    text = np.arange(30, dtype=np.float32).reshape(10, 3)
    clean["product_embeddings"] = pd.DataFrame({
        "product_id": pd.Series(ids + ids, dtype="str"),
        "modality": pd.Series(["image"] * 10 + ["text"] * 10, dtype="str"),
        "model": pd.Series(["clip"] * 10 + ["minilm"] * 10, dtype="str"),
        "vector": pd.Series(list(matrix) + list(text), dtype=object),
    })
    store.write_tables(ws, clean, {})
    got = store.read_product_embeddings(ws)

    assert sorted(got) == ["image", "text"]
    np.testing.assert_array_equal(got["image"][1], matrix)
    np.testing.assert_array_equal(got["text"][1], text)
    assert got["text"][0] == ids and got["text"][2] == "minilm"


def test_no_embeddings_means_an_empty_dict(ws, clean):
    store.write_tables(ws, clean, {})
    assert store.read_product_embeddings(ws) == {}


def test_load_dataset_gives_the_dense_view(ws, clean):
    store.write_tables(ws, clean, {})
    data = store.load_dataset(ws, name="boutique")

    assert data.name == "boutique"
    assert (data.n_users, data.n_items) == (5, 10)
    assert data.interactions["timestamp"].dtype == np.int64
    assert data.item_features == {}


def test_the_store_does_not_pull_in_the_features_layer():
    code = ("import sys, vendome.data.store, vendome.data.ingest; "
            "sys.exit(any(m.startswith('vendome.features') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
