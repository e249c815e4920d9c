"""Opt-out and the right to be forgotten: an opt-out persists; an erasure leaves no row and no byte of the customer
in the store, keeps only a salted receipt, makes the models treat her as a stranger, and a model refitted on the
erased store is exactly the one that never saw her."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from data.pgserver import pg_url, pg_workspace  # noqa: F401  (fixtures)
from helpers import tiny_tables
from vendome.data import store
from vendome.data.dataset import Dataset
from vendome.data.ingest import ingest_tables
from vendome.models import make_model
from vendome.recommend import Rules, exclusions, recommend
from vendome.serve.events import EventLog
from vendome.serve.privacy import TOMBSTONE_PREFIX, Consent, erase_customer, erasure_receipt
from vendome.workspace import Workspace

# Long, distinctive ids, so that finding their bytes in a file means they are really there.
RENAME = {"c1": "client-serpent-0001", "c2": "client-halo-0002", "c3": "client-watch-0003"}
HER, SISTER, COLD = RENAME["c1"], RENAME["c2"], "client-new-0004"
HER_ORDER = "order-serpent-0001"
HER_REVIEW, HER_NOTE = "review-serpent-0001", "note-serpent-0001"
PRODUCTS = ["R1", "R2", "N1", "E1", "W1"]
LIVE_EVENTS = [  # what the website sends after ingestion: hers, and her sister's
    {"customer_id": HER, "product_id": "N1", "interaction_type": "add_to_wishlist", "timestamp": "2026-01-11T10:00:00Z",
     "session_id": "sess-serpent-0001"},
    {"customer_id": SISTER, "product_id": "E1", "interaction_type": "view", "timestamp": "2026-01-11T11:00:00Z"},
]


def boutique(without_her: bool = False) -> dict[str, pd.DataFrame]:
    """The tiny boutique with contract customers, an order each for her and her sister, and a client with no history."""
    tables = tiny_tables()
    customers = tables["customers"].assign(customer_id=lambda f: f["customer_id"].map(RENAME))
    customers = pd.concat([customers, pd.DataFrame({"customer_id": [COLD], "gender": [None]})], ignore_index=True)
    tables["customers"] = customers.assign(registration_date="2025-06-01", location_country="FR",
                                           last_active_date="2026-01-10")
    tables["interactions"] = tables["interactions"].assign(customer_id=lambda f: f["customer_id"].map(RENAME))
    tables["orders"] = pd.DataFrame({"order_id": [HER_ORDER, "order-halo-0002"], "customer_id": [HER, SISTER],
                                     "order_date": ["2026-01-05", "2026-01-06"], "order_status": ["completed"] * 2,
                                     "total_amount": [5200.0, 2800.0]})
    tables["order_items"] = pd.DataFrame({"order_item_id": ["line-1", "line-2", "line-3"],
                                          "order_id": [HER_ORDER, HER_ORDER, "order-halo-0002"],
                                          "product_id": ["N1", "R2", "E1"], "quantity": [1, 1, 1],
                                          "unit_price": [5200.0, 3100.0, 2800.0]})
    tables["reviews"] = pd.DataFrame({"review_id": [HER_REVIEW, "review-halo-0002"], "customer_id": [HER, SISTER],
                                      "product_id": ["N1", "E1"], "timestamp": ["2026-01-08", "2026-01-09"],
                                      "text": ["A gift for my mother, she only wears gold.", "Lovely earrings."]})
    tables["client_notes"] = pd.DataFrame({"note_id": [HER_NOTE], "customer_id": [HER], "timestamp": ["2026-01-07"],
                                           "text": ["Anniversary in March; no diamonds."]})
    if without_her:
        tables["reviews"] = tables["reviews"][tables["reviews"]["customer_id"] != HER]
        tables["client_notes"] = tables["client_notes"][tables["client_notes"]["customer_id"] != HER]
        tables["customers"] = tables["customers"][tables["customers"]["customer_id"] != HER]
        tables["interactions"] = tables["interactions"][tables["interactions"]["customer_id"] != HER]
        tables["orders"] = tables["orders"][tables["orders"]["customer_id"] != HER]
        tables["order_items"] = tables["order_items"][tables["order_items"]["order_id"] != HER_ORDER]
    return tables


def workspace(root: Path, without_her: bool = False, url: str | None = None) -> Workspace:
    """An ingested store with the live events (and her opt-out) recorded after ingestion (in PostgreSQL with `url`)."""
    ws = Workspace(root) if url is None else pg_workspace(root, url)
    tables = boutique(without_her)
    ingest_tables(tables, ws, source="test")
    log = EventLog(ws, customers=tables["customers"]["customer_id"], products=PRODUCTS)
    log.append([e for e in LIVE_EVENTS if not (without_her and e["customer_id"] == HER)])
    if not without_her:
        Consent(ws).opt_out(HER)
    return ws


@pytest.fixture(params=["duckdb", "postgres"])
def ws(request, tmp_path: Path):
    ws = workspace(tmp_path / "ws", url=request.getfixturevalue("pg_url") if request.param == "postgres" else None)
    yield ws
    store.writer(ws).close()


def served_data(ws: Workspace) -> Dataset:
    """What the service recommends from: the ingested tables with the event log overlaid."""
    tables = store.read_tables(ws)
    tables["interactions"] = pd.concat([tables["interactions"], EventLog(ws).interactions()], ignore_index=True)
    return Dataset.from_tables(tables)


def cells_equal_to(ws: Workspace, values: list[str]) -> dict[str, int]:
    """Per 'table.column', how many VARCHAR cells anywhere in the store equal one of `values`."""
    hits = {}
    schema, text, among = ("current_schema()", "'text'", "= ANY(?)") if ws.postgres else ("'main'", "'VARCHAR'", "IN ?")
    with store.writer(ws).reading() as con:
        columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                              f"WHERE table_schema = {schema} AND data_type = {text}").fetchall()
        for table, column in columns:
            n = con.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" {among}', [values]).fetchone()[0]
            if n:
                hits[f"{table}.{column}"] = n
    return hits


# ------------------------------------------------------------------------------------------------ opt-out
def test_an_opt_out_persists_for_a_new_registry_after_the_store_is_closed(ws: Workspace):
    Consent(ws).opt_out(SISTER)
    store.writer(ws).close()  # nothing left in memory: the next registry reads the file
    consent = Consent(ws)
    assert consent.is_opted_out(SISTER)
    assert not consent.is_opted_out(COLD)


def test_opting_back_in_ends_the_opt_out(ws: Workspace):
    consent = Consent(ws)
    consent.opt_in(HER)
    assert not Consent(ws).is_opted_out(HER)
    assert consent.opted_out() == set()
    consent.opt_out(COLD)
    assert Consent(ws).opted_out() == {COLD}


# ------------------------------------------------------------------------------------------------ erasure
def test_after_erasure_no_table_holds_her_id_or_her_orders(ws: Workspace):
    her_values = [HER, HER_ORDER, "sess-serpent-0001", HER_REVIEW, HER_NOTE]
    assert set(cells_equal_to(ws, her_values)) == {  # before: she is everywhere, what she wrote included
        "customers.customer_id", "orders.customer_id", "orders.order_id", "order_items.order_id",
        "interactions.customer_id", "event_log.customer_id", "event_log.session_id", "consent.customer_id",
        "reviews.customer_id", "reviews.review_id", "client_notes.customer_id", "client_notes.note_id"}
    erase_customer(ws, HER)
    assert cells_equal_to(ws, her_values) == {}


def duckdb_file_only(ws: Workspace) -> None:
    if ws.postgres:
        pytest.skip("about the DuckDB file (tests/data/test_postgres.py covers PostgreSQL's rewrite)")


def test_after_erasure_no_file_of_the_workspace_contains_her_id(ws: Workspace):
    duckdb_file_only(ws)
    store.writer(ws).close()
    assert HER.encode() in ws.db.read_bytes()  # so that this test can see her at all
    erase_customer(ws, HER)
    store.writer(ws).close()
    leftovers = [p.name for p in ws.root.rglob("*") if p.is_file() and HER.encode() in p.read_bytes()]
    assert leftovers == []


def test_the_receipt_is_a_salted_hash_of_her_id_never_the_id(ws: Workspace):
    report = erase_customer(ws, HER)
    receipts = store.read_dataframe(ws, "erasures")
    assert receipts["subject"].tolist() == [report.receipt] == [erasure_receipt(ws, HER)]
    assert report.receipt != hashlib.sha256(HER.encode()).hexdigest()  # salted: not guessable from the id alone
    assert receipts["rows_removed"].tolist() == [sum(report.rows.values())]


def test_erasure_removes_exactly_her_rows_and_keeps_everyone_elses(ws: Workspace):
    before = {name: len(df) for name, df in store.read_tables(ws).items()}
    report = erase_customer(ws, HER)
    assert report.found
    assert {k: v for k, v in report.rows.items() if v} == {
        "customers": 1, "orders": 1, "order_items": 2, "interactions": 4, "event_log": 1, "consent": 1,
        "reviews": 1, "client_notes": 1}
    after = {name: len(df) for name, df in store.read_tables(ws).items()}
    removed = {name: n for name, n in report.rows.items() if name != "customers"}   # her customers row: a tombstone
    assert after == {name: n - removed.get(name, 0) for name, n in before.items()}
    assert EventLog(ws).for_customer(SISTER)["product_id"].tolist() == ["E1"]
    assert store.read_meta(ws)["counts"] == after


def test_everyone_else_keeps_their_place_and_her_row_holds_nothing_of_her(ws: Workspace):
    before = served_data(ws)
    erase_customer(ws, HER)
    after = served_data(ws)
    assert after.n_users == before.n_users
    for cid, u in before.user_index.items():
        if cid != HER:
            assert after.user_index[cid] == u              # fitted models stay aligned with the store
    row = after.customers.iloc[before.user_index[HER]]
    assert row["customer_id"].startswith(TOMBSTONE_PREFIX) and HER not in row["customer_id"]
    assert row.drop("customer_id").isna().all()
    assert not (after.interactions["user"] == before.user_index[HER]).any()


def test_a_model_forgets_her_and_scores_her_as_a_client_with_no_history(ws: Workspace):
    data = served_data(ws)
    model = make_model("itemknn").fit(data)
    her, cold = data.user_index[HER], data.user_index[COLD]
    assert not np.array_equal(model.score([her]), model.score([cold]))
    report = erase_customer(ws, HER, models=[model], user_index=data.user_index)
    assert report.models == ["itemknn"] and report.refit_required
    assert np.array_equal(model.score([her]), model.score([cold]))


def test_a_model_refitted_on_the_erased_store_is_the_model_that_never_saw_her(ws: Workspace, tmp_path: Path):
    never = workspace(tmp_path / "never", without_her=True)
    reference = served_data(never)
    with_her = served_data(ws)
    before = make_model("ease", regularization=1.0).fit(with_her)
    erase_customer(ws, HER)
    data = served_data(ws)
    after = make_model("ease", regularization=1.0).fit(data)
    truth = make_model("ease", regularization=1.0).fit(reference)
    others = [RENAME["c2"], RENAME["c3"], COLD]
    assert reference.customers["customer_id"].tolist() == others
    assert [c for c in data.customers["customer_id"] if not c.startswith(TOMBSTONE_PREFIX)] == others
    users = np.array([data.user_index[c] for c in others])
    ref_users = np.array([reference.user_index[c] for c in others])
    assert np.array_equal(after.score(users), truth.score(ref_users))
    rules = Rules(in_stock_only=False)
    assert np.array_equal(recommend(after, users, 5, exclude=exclusions(data, rules))[0],
                          recommend(truth, ref_users, 5, exclude=exclusions(reference, rules))[0])
    sister_before = before.score([with_her.user_index[SISTER]])  # her history did shape her sister's scores
    assert not np.array_equal(sister_before, truth.score([reference.user_index[SISTER]]))


def test_erasure_works_while_the_service_has_the_log_open_and_later_events_are_kept(ws: Workspace):
    log = EventLog(ws, customers=[SISTER], products=PRODUCTS)
    log.append([LIVE_EVENTS[1]])
    erase_customer(ws, HER)
    [later] = log.append([LIVE_EVENTS[1]])
    store.writer(ws).close()
    assert later in EventLog(ws).for_customer(SISTER)["interaction_id"].tolist()
    assert EventLog(ws).for_customer(HER).empty


def test_nothing_changes_when_the_erasure_cannot_complete(ws: Workspace):
    data = served_data(ws)
    model = make_model("itemknn").fit(data)
    scores = model.score(np.arange(data.n_users))
    duckdb_file_only(ws)
    store.writer(ws).close()
    files = {p.name: p.read_bytes() for p in ws.root.iterdir() if p.is_file()}
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; con = duckdb.connect({str(ws.db)!r}); "
                               "print('holding', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(store.StoreBusyError, match="nothing was changed"):
            erase_customer(ws, HER, models=[model], user_index=data.user_index)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert {p.name: p.read_bytes() for p in ws.root.iterdir() if p.is_file()} == files
    assert np.array_equal(model.score(np.arange(data.n_users)), scores)


def test_a_wrong_user_index_is_refused_before_anything_is_erased(ws: Workspace):
    model = make_model("pop").fit(served_data(ws))
    with pytest.raises(ValueError, match="outside model 'pop'"):
        erase_customer(ws, HER, models=[model], user_index={HER: 99})
    assert cells_equal_to(ws, [HER])


def test_erasing_a_customer_the_store_never_held_records_the_request_only(ws: Workspace):
    report = erase_customer(ws, "client-unknown-9999")
    assert not report.found
    assert len(store.read_dataframe(ws, "erasures")) == 1
    assert report.erased_at <= datetime.now(UTC)


def test_an_erased_store_can_be_read_by_a_new_process(ws: Workspace):
    duckdb_file_only(ws)
    erase_customer(ws, HER)
    store.writer(ws).close()
    with duckdb.connect(str(ws.db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM customers WHERE customer_id NOT LIKE 'erased-%'").fetchone()[0] == 3


def test_a_later_export_that_still_holds_her_does_not_bring_her_back(ws: Workspace):
    erase_customer(ws, HER)
    summary = ingest_tables(boutique(), ws, source="the same CRM export, a week later")
    assert summary.meta["erased_customers_left_out"] == 1
    assert cells_equal_to(ws, [HER, HER_ORDER]) == {}
    assert SISTER in set(store.read_tables(ws)["customers"]["customer_id"])
