"""PostgreSQL as the store, against the real server: the same tables as DuckDB, atomic replacement that keeps the
serving tables, migrations once and only once, concurrent writers in sequence order, erasure that leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from data.pgserver import pg_url, pg_workspace  # noqa: F401  (fixtures)
from vendome.data import migrations, postgres, store
from vendome.data.ingest import ingest_folder, validate_tables
from vendome.serve.events import EventLog
from vendome.serve.privacy import Consent, erase_customer
from vendome.workspace import Workspace

CLI = [sys.executable, "-m", "vendome.cli"]


@pytest.fixture
def pg(tmp_path: Path, pg_url: str) -> Workspace:  # noqa: F811
    return pg_workspace(tmp_path / "pg", pg_url)


@pytest.fixture
def ingested(pg: Workspace, export: Path, now) -> Workspace:
    ingest_folder(export, pg, now=now)
    return pg


def sql(ws: Workspace, query: str, params: list | None = None) -> list[tuple]:
    with postgres.connect(ws) as con:
        return con.execute(query, params).fetchall()


def events(ws: Workspace) -> EventLog:
    data = store.read_tables(ws)
    return EventLog(ws, customers=data["customers"]["customer_id"], products=data["products"]["product_id"])


# ------------------------------------------------------------------------------------------------ the URL
def test_the_schema_comes_from_the_workspace_the_url_or_the_folder(tmp_path: Path):
    url = "postgresql://postgres@127.0.0.1:5432/shop"
    assert Workspace(tmp_path / "Paris 8e", database_url=url).schema == "paris_8e"
    assert Workspace(tmp_path / "x", database_url=url + "?schema=paris").schema == "paris"
    assert Workspace(tmp_path / "x", database_url=url + "?options=-csearch_path%3Dlondon").schema == "london"
    assert Workspace(tmp_path / "x", database_url=url + "?schema=paris", schema="milan").schema == "milan"
    assert "schema" not in Workspace(tmp_path / "x", database_url=url + "?schema=paris").conninfo
    assert not Workspace(tmp_path / "x", database_url="").postgres      # "" chooses the DuckDB file explicitly
    with pytest.raises(ValueError, match="postgresql://"):
        Workspace(tmp_path / "x", database_url="mysql://localhost/shop")


# ------------------------------------------------------------------------------------------------ ingestion
def test_ingestion_gives_back_the_duckdb_tables_with_their_dtypes(ingested: Workspace, export: Path, now,
                                                                  tmp_path: Path):
    duck = Workspace(tmp_path / "duck", database_url="")
    store.write_salt(duck, store.read_salt(ingested))      # the same pseudonyms in both
    ingest_folder(export, duck, now=now)
    want, got = store.read_tables(duck), store.read_tables(ingested)

    assert list(got) == list(want)
    for name, df in want.items():
        pd.testing.assert_frame_equal(got[name], df, check_dtype=True)
    assert str(got["interactions"]["timestamp"].dtype) == "datetime64[us, UTC]"
    assert store.read_meta(ingested)["content_hash"] == store.read_meta(duck)["content_hash"]
    assert sql(ingested, "SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
                         "AND table_name = 'interactions' AND column_name = 'timestamp'",
               [ingested.schema]) == [("timestamp with time zone",)]


def test_embeddings_are_stored_as_real_arrays_and_read_back_as_float32(pg: Workspace, embeddings, tables, export,
                                                                       now):
    ids, matrix = embeddings
    clean, problems = validate_tables(tables, now=now, base_dir=export, salt=b"salt")
    assert problems.total == 0
    clean["product_embeddings"] = pd.DataFrame({"product_id": pd.Series(ids, dtype="str"),
                                                "modality": pd.Series(["image"] * 10, dtype="str"),
                                                "model": pd.Series(["clip"] * 10, dtype="str"),
                                                "vector": pd.Series(list(matrix), dtype=object)})
    store.write_tables(pg, clean, {})
    got = store.read_product_embeddings(pg)["image"]

    assert got[0] == ids and got[1].dtype == "float32"
    assert (got[1] == matrix).all()
    assert sql(pg, "SELECT data_type FROM information_schema.columns WHERE table_schema = %s AND "
                   "table_name = 'product_embeddings' AND column_name = 'vector'", [pg.schema]) == [("ARRAY",)]


def test_reingestion_swaps_the_dataset_and_carries_the_event_log_over(ingested: Workspace, export: Path, now):
    log = events(ingested)
    first = log.append([{"customer_id": "C001", "product_id": "P002", "interaction_type": "view"}])
    Consent(ingested).opt_out("C002")

    ingest_folder(export, ingested, now=now)
    later = log.append([{"customer_id": "C001", "product_id": "P003", "interaction_type": "click"}])

    assert log.for_customer("C001")["interaction_id"].tolist() == first + later
    assert log.since_seq(0)["seq"].tolist() == [1, 2]       # the identity sequence moved with its table
    assert Consent(ingested).is_opted_out("C002")
    assert sql(ingested, "SELECT count(*) FROM schema_migrations") == [(len(migrations.MIGRATIONS),)]
    assert sql(ingested, "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
               [ingested.schema + "%"]) == [(ingested.schema,)]      # no half-built schema left behind
    log.close()


def test_a_failure_while_loading_leaves_the_old_dataset_and_no_trace(ingested: Workspace, export: Path, now,
                                                                     monkeypatch):
    before = store.read_tables(ingested)
    loads = []

    def failing_copy(con, schema, name, df, row):
        loads.append(name)
        if name == "orders":
            raise psycopg.OperationalError("server closed the connection")
        return real_copy(con, schema, name, df, row)

    real_copy = postgres._copy
    monkeypatch.setattr(postgres, "_copy", failing_copy)
    with pytest.raises(psycopg.OperationalError):
        ingest_folder(export, ingested, now=now)

    assert "products" in loads and "orders" in loads
    after = store.read_tables(ingested)
    for name, df in before.items():
        pd.testing.assert_frame_equal(after[name], df)
    assert sql(ingested, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", [ingested.schema + "%"]) == [(1,)]


def test_a_bad_export_from_the_command_line_writes_nothing(pg: Workspace, export: Path, tmp_path: Path):
    bad = pd.read_csv(export / "products.csv")
    bad.loc[3, "price"] = -5
    bad.to_csv(export / "products.csv", index=False)
    run = subprocess.run([*CLI, "ingest", str(export), "-w", str(pg.root), "--database-url", pg.database_url],
                         capture_output=True, text=True, timeout=120)

    assert run.returncode != 0
    assert "refused; the workspace is unchanged" in run.stderr + run.stdout
    assert "price" in run.stderr + run.stdout
    assert sql(pg, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", [pg.schema]) == [(0,)]


def test_the_command_line_ingests_into_postgresql(pg: Workspace, export: Path):
    run = subprocess.run([*CLI, "ingest", str(export), "-w", str(pg.root), "--database-url", pg.database_url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert store.read_meta(pg)["counts"]["customers"] == 5
    assert not pg.db.exists()


# ------------------------------------------------------------------------------------------------ migrations
MIGRATE = """
import sys, psycopg
from vendome.data.migrations import migrate
with psycopg.connect(sys.argv[1], autocommit=True) as con:
    print(migrate(con, sys.argv[2]))
"""


def test_migrations_apply_once_even_when_two_processes_start_together(pg: Workspace):
    children = [subprocess.Popen([sys.executable, "-c", MIGRATE, pg.conninfo, pg.schema], stdout=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    applied = sorted((child.communicate(timeout=60)[0].strip() for child in children), key=len)

    every = [v for v, _, _ in migrations.MIGRATIONS]
    assert all(child.returncode == 0 for child in children)
    assert applied == ["[]", str(every)]                     # one did all the work, the other found it done
    with postgres.connect(pg) as con:
        assert migrations.migrate(con, pg.schema) == []      # and again: nothing
    assert sql(pg, "SELECT version FROM schema_migrations ORDER BY version") == [(v,) for v in every]
    assert {r[0] for r in sql(pg, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                              [pg.schema])} == {"schema_migrations", "event_log", "exposures", "consent", "erasures"}


# ------------------------------------------------------------------------------------------------ concurrency
APPENDER = """
import sys, json
from vendome.serve.events import EventLog
log = EventLog(sys.argv[1], customers=["C001", "C002"], products=["P001", "P002"])
ids = []
for _ in range(25):
    ids += log.append([{"customer_id": sys.argv[2], "product_id": "P001", "interaction_type": "view"}] * 2)
print(json.dumps(ids))
"""


def test_two_processes_append_at_once_with_increasing_sequence_numbers(ingested: Workspace):
    env = {**os.environ, "VENDOME_DATABASE_URL": ingested.database_url}
    children = [subprocess.Popen([sys.executable, "-c", APPENDER, str(ingested.root), who], stdout=subprocess.PIPE,
                                 text=True, env=env) for who in ("C001", "C002")]
    seen, polled = 0, []
    reader = EventLog(ingested)
    while any(child.poll() is None for child in children):
        batch = reader.since_seq(seen)                       # a replica catching up while the others write
        if len(batch):
            polled += batch["interaction_id"].tolist()
            seen = int(batch["seq"].iloc[-1])
    written = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    polled += reader.since_seq(seen)["interaction_id"].tolist()

    log = reader.since_seq(0)
    assert all(child.returncode == 0 for child in children)
    assert log["seq"].tolist() == list(range(1, 101))        # no gap, no duplicate
    assert set(log["interaction_id"]) == set(written[0]) | set(written[1])
    assert sorted(polled) == sorted(log["interaction_id"])   # polling by seq missed nothing and saw nothing twice
    reader.close()


# ------------------------------------------------------------------------------------------------ erasure
def test_erasure_leaves_no_row_and_rewrites_the_tables_it_touched(ingested: Workspace):
    log = events(ingested)
    log.append([{"customer_id": "C002", "product_id": "P001", "interaction_type": "view"}])
    Consent(ingested).opt_out("C002")
    files = dict(sql(ingested, "SELECT relname, pg_relation_filenode(oid::regclass) FROM pg_class "
                               "WHERE relnamespace = %s::regnamespace AND relkind = 'r'", [ingested.schema]))
    before = store.read_tables(ingested)

    report = erase_customer(ingested, "C002")

    hits = sql(ingested, """SELECT c.table_name, c.column_name FROM information_schema.columns c
                            WHERE c.table_schema = %s AND c.data_type = 'text'""", [ingested.schema])
    for table, column in hits:
        assert sql(ingested, f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', ["C002"]) == [(0,)], table
    after = store.read_tables(ingested)
    assert after["customers"]["customer_id"].tolist()[1].startswith("erased-")    # her place, holding nothing
    pd.testing.assert_frame_equal(after["customers"].drop(index=1), before["customers"].drop(index=1),
                                  check_dtype=False)                           # age: Int64 now that hers is NULL
    assert report.rows["consent"] == 1 and report.rows["event_log"] == 1 and report.rows["customers"] == 1
    assert report.receipt in store.erased_receipts(ingested)
    now = dict(sql(ingested, "SELECT relname, pg_relation_filenode(oid::regclass) FROM pg_class "
                             "WHERE relnamespace = %s::regnamespace AND relkind = 'r'", [ingested.schema]))
    rewritten = {t for t in files if now[t] != files[t]}
    assert rewritten == {t for t, n in report.rows.items() if n}      # VACUUM FULL: new files for the touched tables
    assert store.read_meta(ingested)["counts"]["customers"] == 5
    log.close()
