"""The live event log: an acknowledged event is in the store (for this process, the next one, and after a kill),
a bad batch writes nothing and says exactly what is wrong, and the log overlays the ingested interactions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from data.pgserver import pg_url, pg_workspace  # noqa: F401  (fixtures)
from helpers import tiny_tables
from vendome.data import store
from vendome.data.dataset import Dataset
from vendome.data.ingest import ingest_tables
from vendome.data.schema import INTERACTION_TYPES
from vendome.serve.events import EventLog, EventProblem, InvalidEventsError
from vendome.workspace import Workspace

CUSTOMERS = ["c1", "c2", "c3"]
PRODUCTS = ["R1", "R2", "N1", "E1", "W1"]
VIEW = {"customer_id": "c3", "product_id": "N1", "interaction_type": "view"}


def contract_tables() -> dict[str, pd.DataFrame]:
    """The tiny boutique with the customer columns the contract requires."""
    tables = tiny_tables()
    tables["customers"] = tables["customers"].assign(registration_date="2025-06-01", location_country="FR",
                                                     last_active_date="2026-01-10")
    return tables


@pytest.fixture(params=["duckdb", "postgres"])
def ws(request, tmp_path: Path):
    """The same behaviour from both stores: the DuckDB file and a PostgreSQL schema."""
    ws = Workspace(tmp_path / "ws") if request.param == "duckdb" else \
        pg_workspace(tmp_path / "ws", request.getfixturevalue("pg_url"))
    ingest_tables(contract_tables(), ws, source="test")
    yield ws
    store.writer(ws).close()


@pytest.fixture
def log(ws: Workspace):
    with EventLog(ws, customers=CUSTOMERS, products=PRODUCTS) as log:
        yield log


def run_python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **kwargs)


def child_env(ws: Workspace) -> dict[str, str]:
    """The environment that points a child process at the same store (PostgreSQL: through the database URL)."""
    return {**os.environ, "VENDOME_DATABASE_URL": ws.database_url} if ws.postgres else dict(os.environ)


# ------------------------------------------------------------------------------------------------ durability
def test_an_acknowledged_event_is_in_the_store_for_a_new_process(ws: Workspace, log: EventLog):
    [event_id] = log.append([{**VIEW, "session_id": "s-42", "interaction_duration": 12.5}])
    log.close()  # the service stops: the file is free for the next process
    connect = (f"import psycopg; con = psycopg.connect({ws.conninfo!r}); "
               f"con.execute('SET search_path TO {ws.schema}')" if ws.postgres else
               f"import duckdb; con = duckdb.connect({str(ws.db)!r}, read_only=True)")
    reader = run_python(f"""
import json
{connect}
rows = con.execute("SELECT interaction_id, customer_id, product_id, interaction_type, session_id, "
                   "interaction_duration FROM event_log").fetchall()
print(json.dumps(rows))
""")
    out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0
    assert json.loads(out) == [[event_id, "c3", "N1", "view", "s-42", 12.5]]


KILLED_WRITER = """
import sys, time
from vendome.serve.events import EventLog
log = EventLog(sys.argv[1], customers=["c3"], products=["N1"])
[event_id] = log.append([{"customer_id": "c3", "product_id": "N1", "interaction_type": "add_to_wishlist"}])
print(event_id, flush=True)   # acknowledged: from here on the parent may kill us at any moment
time.sleep(120)
"""


def kill_after_append(ws: Workspace) -> str:
    """A child process appends one event and is SIGKILLed as soon as append returns; returns the event id."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(ws.root)], stdout=subprocess.PIPE, text=True,
                             env=child_env(ws))
    try:
        event_id = child.stdout.readline().strip()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL and event_id.startswith("ev_")
    return event_id


def test_an_event_survives_a_kill_right_after_append_returns(ws: Workspace):
    event_id = kill_after_append(ws)
    if not ws.postgres:
        assert ws.db.with_name(ws.db.name + ".wal").exists()  # never checkpointed: only the committed WAL holds it
    found = EventLog(ws).for_customer("c3")
    assert found["interaction_id"].tolist() == [event_id]
    assert found["interaction_type"].tolist() == ["add_to_wishlist"]


def test_a_store_left_by_a_killed_writer_can_be_re_ingested_and_keeps_the_event(ws: Workspace):
    event_id = kill_after_append(ws)
    ingest_tables(contract_tables(), ws, source="again")  # a stale WAL beside the new file would break the store
    assert EventLog(ws).for_customer("c3")["interaction_id"].tolist() == [event_id]
    assert len(store.read_tables(ws)["interactions"]) == len(contract_tables()["interactions"])


def test_the_log_survives_re_ingestion_while_it_is_open(ws: Workspace, log: EventLog):
    [event_id] = log.append([VIEW])
    ingest_tables(contract_tables(), ws, source="again")  # in this process, with the log's connection open
    [later] = log.append([VIEW])
    assert log.for_customer("c3")["interaction_id"].tolist() == [event_id, later]


# ------------------------------------------------------------------------------------------------ reading back
def test_an_appended_event_is_in_the_next_recommendation_data(ws: Workspace, log: EventLog):
    log.append([{"customer_id": "c3", "product_id": "E1", "interaction_type": "purchase"}])
    tables = store.read_tables(ws)
    tables["interactions"] = pd.concat([tables["interactions"], log.interactions()], ignore_index=True)
    data = Dataset.from_tables(tables)
    c3, e1 = data.user_index["c3"], data.item_index["E1"]
    assert data.target_matrix()[c3, e1] == 1
    assert list(log.interactions().columns) == list(tables["interactions"].columns)


def test_for_customer_returns_only_her_events_in_arrival_order(log: EventLog):
    first = log.append([VIEW, {"customer_id": "c1", "product_id": "R2", "interaction_type": "click"}])
    second = log.append([{**VIEW, "interaction_type": "add_to_cart"}])
    mine = log.for_customer("c3")
    assert mine["interaction_id"].tolist() == [first[0], second[0]]
    assert mine["interaction_type"].tolist() == ["view", "add_to_cart"]


def test_since_returns_the_events_received_from_a_time_on(log: EventLog):
    log.append([VIEW])
    cut = datetime.now(UTC)
    later = log.append([VIEW, VIEW])
    assert log.since(cut)["interaction_id"].tolist() == later
    assert len(log.since(cut - timedelta(hours=1))) == 3


def test_a_missing_timestamp_means_now_and_a_given_one_is_kept(log: EventLog):
    before = datetime.now(UTC)
    log.append([VIEW, {**VIEW, "timestamp": "2025-12-24T18:30:00+01:00"}, {**VIEW, "timestamp": 1767225600}])
    stamps = log.for_customer("c3")["timestamp"].tolist()
    assert stamps[0] >= pd.Timestamp(before)
    assert stamps[1:] == [pd.Timestamp("2025-12-24T17:30:00Z"), pd.Timestamp("2026-01-01T00:00:00Z")]


def test_appends_from_many_threads_are_all_kept(log: EventLog):
    ids: list[str] = []

    def worker() -> None:
        for _ in range(20):
            ids.extend(log.append([VIEW]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 80
    assert sorted(log.interactions()["interaction_id"]) == sorted(ids)


# ------------------------------------------------------------------------------------------------ validation
def test_a_batch_with_one_bad_event_writes_nothing_and_names_index_field_value_and_expectation(log: EventLog):
    batch = [VIEW, {**VIEW, "interaction_type": "like"}, VIEW]
    with pytest.raises(InvalidEventsError) as err:
        log.append(batch)
    assert err.value.problems == [EventProblem(1, "interaction_type", "like", "one of " + ", ".join(INTERACTION_TYPES))]
    assert "event 1, field interaction_type: got 'like'; expected one of view, click" in str(err.value)
    assert len(log) == 0


def test_unknown_customers_and_products_are_refused_by_name(log: EventLog):
    with pytest.raises(InvalidEventsError) as err:
        log.append([{**VIEW, "customer_id": "c9"}, {**VIEW, "product_id": "X7"}])
    assert [(p.index, p.field, p.value) for p in err.value.problems] == [(0, "customer_id", "c9"),
                                                                         (1, "product_id", "X7")]
    assert "a customer_id known to the service" in err.value.problems[0].expected
    assert "a product_id from the catalog" in err.value.problems[1].expected


def test_a_timestamp_beyond_the_clock_skew_is_refused_but_a_small_skew_is_accepted(log: EventLog):
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    log.append([{**VIEW, "timestamp": soon}])
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidEventsError, match=r"event 0, field timestamp: .*in the future"):
        log.append([{**VIEW, "timestamp": tomorrow}])
    assert len(log) == 1


def test_unknown_fields_and_bad_values_are_each_reported(log: EventLog):
    with pytest.raises(InvalidEventsError) as err:
        log.append([{"customerId": "c3", "product_id": "N1", "interaction_type": "view",
                     "interaction_duration": -4, "timestamp": "last tuesday"}])
    fields = {p.field: p.expected for p in err.value.problems}
    assert set(fields) == {"customerId", "customer_id", "interaction_duration", "timestamp"}
    assert fields["customerId"].startswith("no such field; valid fields: customer_id, product_id")
    assert fields["interaction_duration"] == "a number of seconds >= 0"


def test_ingestion_spellings_of_interaction_types_are_accepted(log: EventLog):
    log.append([{**VIEW, "interaction_type": "Add to cart"}, {**VIEW, "interaction_type": "wishlist"}])
    assert log.for_customer("c3")["interaction_type"].tolist() == ["add_to_cart", "add_to_wishlist"]


def test_a_log_opened_without_known_ids_can_read_but_not_append(ws: Workspace, log: EventLog):
    log.append([VIEW])
    reader = EventLog(ws)
    assert len(reader) == 1
    with pytest.raises(RuntimeError, match="pass customers= and products="):
        reader.append([VIEW])


# ------------------------------------------------------------------------------------------------ sequence numbers
def test_sequence_numbers_grow_and_since_seq_returns_what_came_after(log: EventLog):
    first = log.append([VIEW, VIEW])
    mark = log.last_seq()
    later = log.append([{**VIEW, "interaction_type": "click"}])
    news = log.since_seq(mark)
    assert news["interaction_id"].tolist() == later and news["seq"].tolist() == [mark + 1]
    assert log.since_seq(0)["interaction_id"].tolist() == first + later
    assert log.since_seq(0, limit=2)["seq"].is_monotonic_increasing and len(log.since_seq(0, limit=2)) == 2
    assert log.since_seq(log.last_seq()).empty
