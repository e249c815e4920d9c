"""`vendome batch`: a campaign file for a segment through the serving rules, consent respected, written whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from serve.copies import copy_boutique
from vendome.batch import run_batch
from vendome.cli import app
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.rules import Request, load_policy
from vendome.rules.audit import Auditor
from vendome.serve.privacy import Consent
from vendome.serve.service import rules_path


@pytest.fixture(scope="module")
def shop(boutique_ws, tmp_path_factory):
    ws = copy_boutique(boutique_ws, tmp_path_factory.mktemp("batch") / "ws")
    data = training_data(ws, threads=2, progress=False)
    train(ws, "itemknn", data=data)
    yield ws, data
    store.writer(ws).close()


def test_a_segment_campaign_keeps_the_rules_and_leaves_out_clients_without_consent(shop, tmp_path):
    ws, data = shop
    segment = str(data.customers["customer_segment"].value_counts().index[0])
    members = data.customers[data.customers["customer_segment"] == segment]
    consenting = members["marketing_consent"].astype(str).str.lower().isin(["true", "1", "yes"])
    out = tmp_path / "campaign.parquet"
    summary = run_batch(ws, out, "itemknn", "email", 8, {"customer_segment": [segment]}, data=data, progress=False)
    table = pd.read_parquet(out)
    assert summary.customers == int(consenting.sum()) and summary.skipped_no_consent == int((~consenting).sum())
    assert set(table["customer_id"]) == set(members.loc[consenting, "customer_id"])
    assert (table.groupby("customer_id")["rank"].max() == 8).all() and table["reason"].str.len().gt(0).all()
    auditor = Auditor(load_policy(rules_path(ws)), data)
    for cid, rows in table.groupby("customer_id"):
        items = [data.item_index[p] for p in rows.sort_values("rank")["product_id"]]
        assert auditor.violations(Request("email", data.user_index[cid]), items) == []


def test_an_opted_out_client_gets_the_non_personalised_list(shop, tmp_path):
    ws, data = shop
    ids = data.customers["customer_id"].head(3).tolist()
    Consent(ws).opt_out(ids[0])
    out = tmp_path / "home.csv"
    run_batch(ws, out, "itemknn", "home", 5, {"customer_id": ids}, data=data, progress=False)
    table = pd.read_csv(out)
    mine = table[table["customer_id"] == ids[0]]
    assert not mine["personalised"].any() and (mine["reason_code"] == "not_personalised").all()
    assert table[table["customer_id"] != ids[0]]["personalised"].all()
    Consent(ws).opt_in(ids[0])


def test_the_command_line_writes_the_file_and_refuses_bad_input(shop, tmp_path):
    ws, data = shop
    store.writer(ws).close()
    runner = CliRunner()
    out = tmp_path / "all.parquet"
    r = runner.invoke(app, ["batch", "--workspace", str(ws.root), "--model", "itemknn", "--placement", "home",
                            "-k", "3", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out)["customer_id"].nunique() == data.n_users and "rows for" in r.output
    bad = runner.invoke(app, ["batch", "--workspace", str(ws.root), "--model", "itemknn", "--output",
                              str(tmp_path / "x.parquet"), "--segment", "tier=gold"])
    assert bad.exit_code == 1 and "no column 'tier'" in bad.output
    assert runner.invoke(app, ["batch", "--workspace", str(ws.root), "--model", "itemknn", "--output",
                               str(tmp_path / "x.json")]).exit_code == 1
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "x.parquet").exists()
    assert np.isfinite(pd.read_parquet(out)["score"]).all()
