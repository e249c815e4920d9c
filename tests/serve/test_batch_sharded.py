"""`vendome batch --output OUT_DIR --workers N`: shards scored by worker processes into Parquet parts that read as the
single-process file, row for row, and a run that resumes only what is missing (and only the same run)."""

from __future__ import annotations

import json
import os
import shutil

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pytest
from typer.testing import CliRunner

from serve.copies import copy_boutique
from vendome.artifacts import activate_version, active_version
from vendome.batch import run_batch
from vendome.batch_sharded import MANIFEST, SUCCESS, ShardError, part_name, run_sharded
from vendome.cli import app
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.serve.privacy import Consent

K = 6
SHARDS = 5


@pytest.fixture(scope="module")
def shop(boutique_ws, tmp_path_factory):
    """A boutique with itemknn trained and one consenting client opted out of personalisation."""
    ws = copy_boutique(boutique_ws, tmp_path_factory.mktemp("sharded") / "ws")
    data = training_data(ws, threads=2, progress=False)
    train(ws, "itemknn", data=data)
    consenting = data.customers["marketing_consent"].astype(str).str.lower().isin(["true", "1", "yes"])
    opted = str(data.customers.loc[consenting, "customer_id"].iloc[3])
    Consent(ws).opt_out(opted)
    store.writer(ws).close()
    yield ws, data, opted
    store.writer(ws).close()


@pytest.fixture(scope="module")
def finished(shop, tmp_path_factory):
    """The e-mail campaign of every client, once by 2 worker processes through the command line into a folder and
    once by the single-process path into one file, at the same moment."""
    ws, data, _ = shop
    out = tmp_path_factory.mktemp("runs") / "campaign"
    r = CliRunner().invoke(app, ["batch", "--workspace", str(ws.root), "--model", "itemknn", "--placement", "email",
                                 "-k", str(K), "--output", str(out), "--workers", "2", "--shards", str(SHARDS)])
    assert r.exit_code == 0, r.output
    assert f"{SHARDS} of {SHARDS} shards scored by 2 workers" in r.output
    manifest = json.loads((out / MANIFEST).read_text())
    single = tmp_path_factory.mktemp("single") / "campaign.parquet"
    run_batch(ws, single, "itemknn", "email", K, data=data, progress=False, now=manifest["now"])
    return out, pd.read_parquet(single), manifest


def _parts(out) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(out / part_name(s)) for s in range(SHARDS)], ignore_index=True)


def test_two_worker_processes_write_exactly_the_rows_of_the_single_process_run(finished):
    out, single, manifest = finished
    assert len(single) > 0
    pd.testing.assert_frame_equal(_parts(out), single)           # parts in name order: the file, row for row
    assert sorted(manifest["shards"]) == [str(s) for s in range(SHARDS)]
    assert all(info["pid"] != os.getpid() for info in manifest["shards"].values())
    sizes = [info["customers"] for info in manifest["shards"].values()]
    assert sum(sizes) == single["customer_id"].nunique() and max(sizes) - min(sizes) <= 1


def test_the_folder_reads_as_one_dataset(finished, shop):
    out, single, manifest = finished
    ws = shop[0]
    assert (out / SUCCESS).exists() and not list(out.glob(".*"))
    by_pandas = pd.read_parquet(out)
    assert len(by_pandas) == len(single) and set(by_pandas["customer_id"]) == set(single["customer_id"])
    assert pads.dataset(out).to_table().num_rows == len(single)
    [(n, customers)] = duckdb.sql(f"SELECT count(*), count(DISTINCT customer_id) "
                                  f"FROM read_parquet('{out}/*.parquet')").fetchall()
    assert (n, customers) == (len(single), single["customer_id"].nunique())
    params = manifest["params"]
    assert params["model"] == "itemknn" and params["version"] == active_version(ws, "itemknn")
    assert (params["k"], params["shards"], params["customers"]) == (K, SHARDS, single["customer_id"].nunique())


def test_consent_and_opt_out_hold_in_the_parts(finished, shop):
    out, _, manifest = finished
    _, data, opted = shop
    table = pd.read_parquet(out)
    without = data.customers.loc[~data.customers["marketing_consent"].astype(str).str.lower().isin(
        ["true", "1", "yes"]), "customer_id"]
    assert len(without) > 0 and not table["customer_id"].isin(without).any()
    assert manifest["skipped_no_consent"] == len(without)
    mine = table[table["customer_id"] == opted]
    assert len(mine) == K and not mine["personalised"].any() and (mine["reason_code"] == "not_personalised").all()
    assert table.loc[table["customer_id"] != opted, "personalised"].all()


def test_resume_after_a_failed_shard_scores_only_the_missing_shards(finished, shop, tmp_path):
    out, single, _ = finished
    ws = shop[0]
    run = tmp_path / "campaign"
    shutil.copytree(out, run)
    (run / part_name(1)).unlink()
    (run / part_name(3)).unlink()
    (run / part_name(3)).mkdir()            # the worker's rename onto part 3 fails: a real write error
    kept = {s: (run / part_name(s)).stat().st_mtime_ns for s in (0, 2, 4)}
    with pytest.raises(ShardError, match=r"shard 3 \(part-00003.parquet\) failed: IsADirectoryError") as err:
        run_sharded(ws, run, "itemknn", "email", K, workers=2, resume=True, progress=False)
    assert "--resume" in str(err.value)
    recorded = json.loads((run / MANIFEST).read_text())["shards"]
    assert "3" not in recorded and not (run / SUCCESS).exists() and not list(run.glob(".*"))
    missing = sum(str(s) not in recorded for s in range(SHARDS))

    (run / part_name(3)).rmdir()
    summary = run_sharded(ws, run, "itemknn", "email", K, workers=1, resume=True, progress=False)
    assert summary.shards_run == missing and summary.workers == 1 and (run / SUCCESS).exists()
    assert {s: (run / part_name(s)).stat().st_mtime_ns for s in kept} == kept
    pd.testing.assert_frame_equal(_parts(run), single)
    assert summary.rows == len(single) and summary.not_personalised == 1


def test_resume_with_other_parameters_is_refused_and_changes_nothing(finished, shop, tmp_path):
    out, _, _ = finished
    ws, data, opted = shop
    run = tmp_path / "campaign"
    shutil.copytree(out, run)
    (run / part_name(2)).unlink()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir())

    def refused(match: str, **changes) -> None:
        args = {"model_name": "itemknn", "placement": "email", "k": K, "resume": True, "progress": False, **changes}
        with pytest.raises(ValueError, match=match):
            run_sharded(ws, run, **args)

    refused(r"k: 6 in the manifest, 7 now", k=7)
    refused(r"shards: 5 in the manifest, 4 now", shards=4)
    refused(r"placement: 'email' in the manifest, 'home' now", placement="home")
    refused(r"segment: .*customer_segment", segment={"customer_segment": ["VIP"]})
    refused(r"already holds a batch run", resume=False)
    campaign = pd.read_parquet(out)["customer_id"]
    other = str(campaign[campaign != opted].iloc[0])         # in the selection: her list would change
    Consent(ws).opt_out(other)
    try:
        refused(r"opted_out_sha256")                   # a client opted out since: her list must not stay personal
    finally:
        Consent(ws).opt_in(other)
        store.writer(ws).close()
    version = active_version(ws, "itemknn")
    train(ws, "itemknn", data=data)
    try:
        refused(r"version: '.*' in the manifest, '.*' now")
    finally:
        activate_version(ws, "itemknn", version)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir()) == before


def test_the_command_line_refuses_workers_with_a_single_file(shop, tmp_path):
    ws = shop[0]
    r = CliRunner().invoke(app, ["batch", "--workspace", str(ws.root), "--model", "itemknn",
                                 "--output", str(tmp_path / "all.parquet"), "--workers", "2"])
    assert r.exit_code == 1 and "give --output a folder" in r.output and not list(tmp_path.iterdir())
