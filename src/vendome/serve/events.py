"""The live event log: website events written to the workspace store before they are acknowledged.

    log = EventLog(ws, customers=data.customers["customer_id"], products=data.products["product_id"])
    ids = log.append([{"customer_id": "C001", "product_id": "P004", "interaction_type": "view"}])
    data = overlay(tables, log.interactions())      # the service's view: ingested history + live events

`append` validates the whole batch first (an invalid event names its index in the batch, the field, the value and
what was expected, and nothing is written), then inserts it in one DuckDB transaction and returns only after the
commit, which DuckDB makes durable by writing and fdatasync'ing its WAL (PostgreSQL by its own WAL): an acknowledged
event survives a killed process and is read back by the next one. Writes go through the process's one
`store.writer(ws)` (see `vendome.data.store.Writer` for why it stays open); on PostgreSQL several processes (API
replicas) append at once. Every event gets a sequence number `seq`, increasing in commit order across processes:
`log.since_seq(n)` returns what others appended after the last number a process has seen (`log.last_seq()`). Known
ids are given by the caller, so the log never loads a dataset; events of customers or products it does not know are
refused, as ingestion refuses them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from vendome.data import store
from vendome.data.schema import INTERACTION_TYPES, INTERACTIONS
from vendome.workspace import Workspace

EVENT_TABLE = store.EVENT_LOG
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_BATCH = 10_000
MAX_TEXT = 256
MAX_PROBLEMS = 50
CONTRACT_COLUMNS = ("interaction_id", "customer_id", "product_id", "interaction_type", "timestamp", "session_id",
                    "interaction_duration", "device_type", "referrer_source")
_DDL = f"""CREATE TABLE IF NOT EXISTS {EVENT_TABLE} (
    interaction_id VARCHAR, customer_id VARCHAR, product_id VARCHAR, interaction_type VARCHAR,
    timestamp TIMESTAMPTZ, session_id VARCHAR, interaction_duration DOUBLE, device_type VARCHAR,
    referrer_source VARCHAR, received_at TIMESTAMPTZ, seq BIGINT);
ALTER TABLE {EVENT_TABLE} ADD COLUMN IF NOT EXISTS seq BIGINT;
UPDATE {EVENT_TABLE} SET seq = rowid + 1 WHERE seq IS NULL"""   # DuckDB; PostgreSQL's table is a migration
_SCHEMA = pa.schema([(name, pa.timestamp("us", tz="UTC") if name in ("timestamp", "received_at") else
                       pa.float64() if name == "interaction_duration" else pa.string())
                      for name in (*CONTRACT_COLUMNS, "received_at")]).append(pa.field("seq", pa.int64()))
_COLUMNS = ", ".join(_SCHEMA.names)
_TYPE_SPEC = INTERACTIONS.column("interaction_type")
_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class Event:
    """One validated website event (the contract's interaction without its id, which the log assigns)."""

    customer_id: str
    product_id: str
    interaction_type: str
    timestamp: datetime
    session_id: str | None = None
    interaction_duration: float | None = None
    device_type: str | None = None
    referrer_source: str | None = None


EVENT_FIELDS = tuple(f.name for f in fields(Event))
_TEXT_FIELDS = ("session_id", "device_type", "referrer_source")


@dataclass(frozen=True)
class EventProblem:
    """Why one event of a batch was refused."""

    index: int
    field: str
    value: object
    expected: str

    def __str__(self) -> str:
        return f"event {self.index}, field {self.field}: got {_show(self.value)}; expected {self.expected}"

    def to_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "value": _show(self.value), "expected": self.expected}


class InvalidEventsError(ValueError):
    """The batch breaks the event contract; `.problems` lists why (at most MAX_PROBLEMS); nothing was written."""

    def __init__(self, problems: list[EventProblem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.total} problem{'s' if self.total != 1 else ''} in the events; nothing was written"
        more = self.total - len(self.problems)
        lines = [head, *(f"  {p}" for p in self.problems)]
        return "\n".join(lines + ([f"  ... and {more} more"] if more > 0 else []))

    def to_dict(self) -> list[dict]:
        return [p.to_dict() for p in self.problems]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


# ------------------------------------------------------------------------------------------------ validation
def validate_events(events: Sequence[Mapping | Event], *, customers: set[str], products: set[str],
                    now: datetime | None = None, max_skew: timedelta = MAX_CLOCK_SKEW) -> list[Event]:
    """The batch as Events (types normalised, timestamp defaulting to `now`), or InvalidEventsError listing every
    problem. Interaction types accept ingestion's spellings ("Add to cart", "wishlist")."""
    now = now or datetime.now(UTC)
    if isinstance(events, Mapping | Event | str | bytes) or not isinstance(events, Sequence):
        raise InvalidEventsError([EventProblem(0, "(batch)", type(events).__name__, "a list of events")])
    if len(events) > MAX_BATCH:
        raise InvalidEventsError([EventProblem(0, "(batch)", f"{len(events)} events",
                                               f"at most {MAX_BATCH} events per batch")])
    problems: list[EventProblem] = []
    out = []
    for index, raw in enumerate(events):
        before = len(problems)
        event = _validate_one(index, raw, customers, products, now, max_skew, problems)
        if len(problems) == before:
            out.append(event)
    if problems:
        raise InvalidEventsError(problems[:MAX_PROBLEMS], total=len(problems))
    return out


def _validate_one(index: int, raw: object, customers: set[str], products: set[str], now: datetime,
                  max_skew: timedelta, problems: list[EventProblem]) -> Event | None:
    if isinstance(raw, Event):
        raw = asdict(raw)
    elif hasattr(raw, "model_dump"):  # a pydantic request model
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        problems.append(EventProblem(index, "(event)", raw, "an object with fields " + ", ".join(EVENT_FIELDS)))
        return None

    def problem(field: str, expected: str) -> None:
        problems.append(EventProblem(index, field, raw.get(field), expected))

    for field in raw:
        if field not in EVENT_FIELDS:
            problems.append(EventProblem(index, str(field), raw[field],
                                         "no such field; valid fields: " + ", ".join(EVENT_FIELDS)))
    values: dict[str, object] = {}
    for field, known, what in (("customer_id", customers, "a customer_id known to the service (an ingested "
                                                         "customer)"),
                               ("product_id", products, "a product_id from the catalog")):
        value = raw.get(field)
        if not isinstance(value, str) or not value.strip():
            problem(field, "a non-empty id (text)")
        elif value not in known:
            problem(field, what)
        values[field] = value

    kind = raw.get("interaction_type")
    canon = None
    if isinstance(kind, str):
        key = _SEPARATORS.sub("_", kind.strip().lower())
        canon = _TYPE_SPEC.aliases.get(key, key)
    if canon not in INTERACTION_TYPES:
        problem("interaction_type", "one of " + ", ".join(INTERACTION_TYPES))
    values["interaction_type"] = canon

    values["timestamp"] = _timestamp(raw.get("timestamp"), now, max_skew, problem)

    duration = raw.get("interaction_duration")
    if duration is not None:
        ok = isinstance(duration, int | float) and not isinstance(duration, bool) and math.isfinite(duration)
        if not ok or duration < 0:
            problem("interaction_duration", "a number of seconds >= 0")
        values["interaction_duration"] = float(duration) if ok else None
    for field in _TEXT_FIELDS:
        value = raw.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            problem(field, f"text of at most {MAX_TEXT} characters")
        values[field] = value
    return Event(**values)


def _timestamp(value: object, now: datetime, max_skew: timedelta, problem) -> datetime | None:
    """An aware UTC datetime from a datetime (naive means UTC), an ISO 8601 string or unix seconds; None -> now."""
    if value is None:
        return now
    expected = "a date/time like 2026-03-01T10:15:00Z or unix seconds"
    try:
        if isinstance(value, datetime):
            ts = value
        elif isinstance(value, str):
            ts = datetime.fromisoformat(value.strip())
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            ts = datetime.fromtimestamp(value, UTC)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        problem("timestamp", expected)
        return None
    if pd.isna(ts):  # pd.NaT is a datetime too
        problem("timestamp", expected)
        return None
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    limit = now + max_skew
    if ts > limit:
        problem("timestamp", f"a time no later than {limit:%Y-%m-%d %H:%M:%S} UTC (now plus "
                             f"{max_skew.total_seconds():g} s of clock skew); this one is in the future")
    return ts


# ------------------------------------------------------------------------------------------------ the log
class EventLog(store.LoggedTable):
    """Durable, append-only log of live events in the workspace store's `event_log` table.

    customers / products: the ids the service knows (any iterable of str); required to append, not to read.
    The sets are kept as `known_customers` / `known_products`, which the service updates (e.g. after an erasure).
    """

    ddl = _DDL

    def __init__(self, ws: Workspace | str | Path, *, customers: Iterable[str] | None = None,
                 products: Iterable[str] | None = None, max_skew: timedelta = MAX_CLOCK_SKEW) -> None:
        super().__init__(ws)
        self.known_customers = None if customers is None else {str(c) for c in customers}
        self.known_products = None if products is None else {str(p) for p in products}
        self.max_skew = max_skew

    def append(self, events: Sequence[Mapping | Event]) -> list[str]:
        """Validate and durably store a batch, all or nothing; returns the interaction ids assigned, in order."""
        if self.known_customers is None or self.known_products is None:
            raise RuntimeError("this EventLog was opened without the known ids: pass customers= and products= "
                               "to EventLog(...) to append events")
        received = datetime.now(UTC)
        batch = validate_events(events, customers=self.known_customers, products=self.known_products,
                                now=received, max_skew=self.max_skew)
        if not batch:
            return []
        ids = [f"ev_{uuid.uuid4().hex}" for _ in batch]
        insert = f"INSERT INTO {EVENT_TABLE} ({_COLUMNS}) VALUES ({', '.join('?' * len(_SCHEMA.names))})"
        with self._writer.transaction() as con:
            if not self._ready:
                store.create_table(con, _DDL)
            seqs = store.next_seq(con, EVENT_TABLE, len(batch))
            rows = [(i, e.customer_id, e.product_id, e.interaction_type, e.timestamp, e.session_id,
                     e.interaction_duration, e.device_type, e.referrer_source, received, seq)
                    for i, e, seq in zip(ids, batch, seqs, strict=True)]
            if len(rows) == 1 or not hasattr(con, "register"):
                con.executemany(insert, rows)
            else:  # DuckDB: one columnar insert, 100 events cost about as much as 3 single ones
                con.register("_events", pa.Table.from_pylist(
                    [dict(zip(_SCHEMA.names, row, strict=True)) for row in rows], schema=_SCHEMA))
                try:
                    con.execute(f"INSERT INTO {EVENT_TABLE} BY NAME SELECT * FROM _events")
                finally:
                    con.unregister("_events")
        self._ready = True
        return ids

    def since(self, t: datetime | str | float) -> pd.DataFrame:
        """Events received at or after `t` (the log's clock, so a poller never misses a late event that carries an
        old timestamp), in arrival order, with their `received_at`."""
        return self._select("WHERE received_at >= ?", [_as_time(t)])

    def for_customer(self, customer_id: str) -> pd.DataFrame:
        """One customer's events, in arrival order (what the next recommendation for her adds to her history)."""
        return self._select("WHERE customer_id = ?", [str(customer_id)])

    def interactions(self) -> pd.DataFrame:
        """The whole log as contract `interactions` rows, to overlay on the ingested table before building the
        Dataset (`pd.concat([tables["interactions"], log.interactions()])`)."""
        return self._select("", [])[list(CONTRACT_COLUMNS)]

    def since_seq(self, seq: int, limit: int | None = None) -> pd.DataFrame:
        """Events with a sequence number above `seq` (at most `limit`), in sequence order: what other processes
        appended since this one last looked. Numbers grow in commit order, so polling with the largest `seq` seen
        never skips an event (an erasure removes her events and leaves a gap)."""
        page = f" LIMIT {int(limit)}" if limit is not None else ""
        self._ensure()
        return self._writer.query(f"SELECT {_COLUMNS} FROM {EVENT_TABLE} WHERE seq > ? ORDER BY seq{page}",
                                  [int(seq)])

    def last_seq(self) -> int:
        """The largest sequence number in the log (0 when it is empty): where a new reader starts."""
        self._ensure()
        with self._writer.reading() as con:
            return int(con.execute(f"SELECT coalesce(max(seq), 0) FROM {EVENT_TABLE}").fetchone()[0])

    def __len__(self) -> int:
        self._ensure()
        with self._writer.reading() as con:
            return int(con.execute(f"SELECT count(*) FROM {EVENT_TABLE}").fetchone()[0])

    def _select(self, where: str, params: list) -> pd.DataFrame:
        self._ensure()
        return self._writer.query(f"SELECT {_COLUMNS} FROM {EVENT_TABLE} {where} ORDER BY received_at, seq", params)


def _as_time(t: datetime | str | float) -> datetime:
    if isinstance(t, int | float) and not isinstance(t, bool):
        return datetime.fromtimestamp(t, UTC)
    ts = pd.Timestamp(t)
    return (ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)).to_pydatetime()
