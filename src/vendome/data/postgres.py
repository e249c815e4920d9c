"""The PostgreSQL store: the same tables as the DuckDB file, in one schema per workspace (`Workspace.schema`).

`vendome.data.store` calls this module when the workspace has a database URL; nothing else should need to.

- Contract tables are bulk loaded with COPY into a fresh schema, and swapped in with the other layers' tables
  (event log, exposures, consent, erasures) moved over, in one transaction: readers see the old dataset or the new
  one, never half of one, and a failure leaves the old schema as it was. Each contract table has a hidden `_row`
  column (its row's position in the export), so reads keep the order dense indices are built from, and
  `vendome_columns` records each column's pandas dtype, so a round trip gives back the frames ingestion validated.
- The serving tables are created by `vendome.data.migrations`, not by the modules that use them.
- `PgWriter` stands in for the DuckDB `Writer`: a small connection pool, so API replicas and threads write at once.
  Its connections speak DuckDB's `?` placeholders (`Connection`), so the serving layers run one SQL text on both.
- A transaction-level advisory lock (`lock_key(schema, "data")`) orders whole-dataset changes (ingestion, erasure)
  against readers of several tables, who take it shared.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from vendome.data.migrations import lock_key, migrate
from vendome.data.schema import TABLE_NAMES
from vendome.workspace import Workspace

META_TABLE = "meta"
COLUMNS_TABLE = "vendome_columns"     # pandas dtype of every contract column, for faithful round trips
ROW = "_row"                           # a contract row's position in the export
DATASET = (*TABLE_NAMES, META_TABLE, COLUMNS_TABLE)   # replaced together by ingestion
COPY_CHUNK = 100_000
_PG_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean", "M": "timestamptz"}
_OIDS = {25: "str", 1043: "str", 701: "float64", 700: "float64", 20: "int64", 23: "int64", 21: "int64",
         16: "bool", 1184: "datetime64[us, UTC]"}
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")
_MIGRATED: set[tuple[str, str]] = set()
_MIGRATED_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------------ connections
def connect(ws: Workspace) -> psycopg.Connection:
    """An autocommit connection with the workspace schema first on the search path and UTC times."""
    con = psycopg.connect(ws.conninfo, autocommit=True)
    _configure(ws, con)
    return con


def _configure(ws: Workspace, con: psycopg.Connection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(ws.schema)))


def ensure_migrated(ws: Workspace, con: psycopg.Connection) -> None:
    """Apply missing migrations to the workspace schema (once per process and schema)."""
    key = (ws.conninfo, ws.schema)
    with _MIGRATED_LOCK:
        if key in _MIGRATED:
            return
        migrate(con, ws.schema)
        _MIGRATED.add(key)


@contextlib.contextmanager
def _session(ws: Workspace, migrated: bool = False) -> Iterator[psycopg.Connection]:
    con = connect(ws)
    try:
        if migrated:
            ensure_migrated(ws, con)
        yield con
    finally:
        con.close()


def _qmark(query: str) -> str:
    """DuckDB's `?` placeholders as psycopg's `%s` (a literal % doubled); quoted text is left alone."""
    return _TOKENS.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else m.group(), query)


_qmark = lru_cache(maxsize=512)(_qmark)


class Connection:
    """A psycopg connection with DuckDB's calling style: `con.execute(sql, params).fetchone() / .fetchall() / .df()`
    with `?` placeholders, so the serving layers' SQL runs unchanged on both stores."""

    def __init__(self, raw: psycopg.Connection, schema: str) -> None:
        self.raw = raw
        self.schema = schema
        self._cursor: psycopg.Cursor | None = None

    def execute(self, query: str, params: list | tuple | dict | None = None) -> Connection:
        if params:
            self._cursor = self.raw.execute(_qmark(query), list(params))
        else:
            self._cursor = self.raw.execute(query)
        return self

    def executemany(self, query: str, rows: list[tuple]) -> Connection:
        self.raw.cursor().executemany(_qmark(query), rows)
        return self

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def df(self) -> pd.DataFrame:
        return frame(self._cursor)


def frame(cursor: psycopg.Cursor) -> pd.DataFrame:
    """The result as a DataFrame with DuckDB's dtypes (text as str, timestamptz as datetime64[us, UTC], ...)."""
    names = [d.name for d in cursor.description]
    df = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
    for d in cursor.description:
        dtype = _OIDS.get(d.type_code)
        if dtype is None:
            continue
        col = df[d.name]
        if dtype in ("int64", "bool") and col.isna().any():
            dtype = "Int64" if dtype == "int64" else "boolean"
        df[d.name] = pd.to_datetime(col, utc=True).astype(dtype) if dtype.startswith("datetime") else col.astype(dtype)
    return df


# ------------------------------------------------------------------------------------------------ writing
def replace_tables(ws: Workspace, tables: dict[str, pd.DataFrame], meta: dict) -> None:
    """Load the contract tables into a fresh schema with COPY, then swap it in with the other layers' tables."""
    fresh = f"{ws.schema}__new_{uuid.uuid4().hex[:8]}"
    with _session(ws, migrated=True) as con, con.transaction():
        con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(fresh)))
        con.execute(sql.SQL("CREATE TABLE {}.{} (table_name text, position integer, column_name text, dtype text)")
                    .format(sql.Identifier(fresh), sql.Identifier(COLUMNS_TABLE)))
        for name in TABLE_NAMES:
            if name in tables:
                _load(con, fresh, name, tables[name], contract=True)
        con.execute(sql.SQL("CREATE TABLE {}.{} (json text)").format(sql.Identifier(fresh), sql.Identifier(META_TABLE)))
        con.execute(sql.SQL("INSERT INTO {}.{} VALUES (%s)").format(sql.Identifier(fresh), sql.Identifier(META_TABLE)),
                    [json.dumps(meta, sort_keys=True)])
        con.execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(lock_key(ws.schema, "data")))
        for name in tables_in(con, ws.schema):
            if name not in DATASET:
                con.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                    sql.Identifier(ws.schema), sql.Identifier(name), sql.Identifier(fresh)))
        con.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(ws.schema)))
        con.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(ws.schema)))


def write_frame(ws: Workspace, name: str, df: pd.DataFrame, mode: str) -> None:
    """`store.write_dataframe` on PostgreSQL: replace or append (by column name), in one transaction."""
    with _session(ws, migrated=True) as con, con.transaction():
        if mode == "replace" or name not in tables_in(con, ws.schema):
            con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            _load(con, ws.schema, name, df, contract=False)
        else:
            _copy(con, ws.schema, name, df.reset_index(drop=True), row=False)


def _load(con: psycopg.Connection, schema: str, name: str, df: pd.DataFrame, contract: bool) -> None:
    df = df.reset_index(drop=True)
    columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(df[c]))) for c in df.columns]
    if contract:
        columns.insert(0, sql.SQL("{} bigint").format(sql.Identifier(ROW)))
        con.cursor().executemany(
            sql.SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s)").format(sql.Identifier(schema),
                                                                     sql.Identifier(COLUMNS_TABLE)),
            [(name, i, str(c), str(df[c].dtype)) for i, c in enumerate(df.columns)])
    con.execute(sql.SQL("CREATE TABLE {}.{} ({})").format(sql.Identifier(schema), sql.Identifier(name),
                                                          sql.SQL(", ").join(columns)))
    _copy(con, schema, name, df, row=contract)


def _pg_type(col: pd.Series) -> str:
    if col.dtype == object and len(col) and isinstance(col.dropna().iloc[0] if col.notna().any() else None,
                                                        np.ndarray | list):
        return "real[]"
    return _PG_TYPES.get(col.dtype.kind, "text")


def _copy(con: psycopg.Connection, schema: str, name: str, df: pd.DataFrame, row: bool) -> None:
    """COPY the frame in CSV chunks (pandas writes them in C; `\\N` is NULL, an empty string stays one)."""
    arrays = [c for c in df.columns if _pg_type(df[c]) == "real[]"]
    if arrays:
        df = df.assign(**{c: df[c].map(_array_literal) for c in arrays})
    names = ([sql.Identifier(ROW)] if row else []) + [sql.Identifier(c) for c in df.columns]
    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(
        sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(names))
    with con.cursor().copy(statement) as copy:
        for start in range(0, len(df), COPY_CHUNK):
            part = df.iloc[start:start + COPY_CHUNK]
            copy.write(part.to_csv(header=False, index=row, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f%z"))


def _array_literal(vector: object) -> str | None:
    if vector is None or (isinstance(vector, float) and np.isnan(vector)):
        return None
    return "{" + ",".join(f"{x:.9g}" for x in np.asarray(vector, np.float32).ravel()) + "}"


# ------------------------------------------------------------------------------------------------ reading
@contextlib.contextmanager
def reading(ws: Workspace) -> Iterator[psycopg.Connection]:
    """A read transaction no ingestion or erasure can change halfway (they wait for it, or it waits for them)."""
    with _session(ws) as con, con.transaction():
        con.execute(sql.SQL("SELECT pg_advisory_xact_lock_shared({})").format(lock_key(ws.schema, "data")))
        yield con


def tables_in(con: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                                      "ORDER BY table_name", [schema]).fetchall()]


def read_contract(con: psycopg.Connection, schema: str) -> dict[str, pd.DataFrame]:
    """The contract tables present, in their export order and with the dtypes they were written with."""
    present = set(tables_in(con, schema))
    return {name: read_named(con, name) for name in TABLE_NAMES if name in present}


def read_named(con: psycopg.Connection, name: str) -> pd.DataFrame:
    """A table of the schema on the search path; a contract table in its export order and its recorded dtypes."""
    dtypes = []
    if name in TABLE_NAMES:
        dtypes = con.execute(sql.SQL("SELECT column_name, dtype FROM {} WHERE table_name = %s ORDER BY position")
                             .format(sql.Identifier(COLUMNS_TABLE)), [name]).fetchall()
    columns = [c for c, _ in dtypes]
    picked = sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL("*")
    order = sql.SQL(" ORDER BY {}").format(sql.Identifier(ROW)) if columns else sql.SQL("")
    df = frame(con.execute(sql.SQL("SELECT {} FROM {}").format(picked, sql.Identifier(name)) + order))
    for column, dtype in dtypes:
        if dtype == "object":   # embeddings (real[]) come back as lists; an all-NULL text column stays NULL
            df[column] = pd.Series([np.asarray(v, np.float32) if isinstance(v, list) else None
                                    for v in df[column]], dtype=object)
        elif str(df[column].dtype) != dtype and not (dtype in ("int64", "bool") and df[column].isna().any()):
            df[column] = df[column].astype(dtype)   # (with NULLs, e.g. a tombstone: Int64 / boolean, as DuckDB)
    return df


def read_meta(con: psycopg.Connection) -> dict:
    return json.loads(con.execute(sql.SQL("SELECT json FROM {}").format(sql.Identifier(META_TABLE))).fetchone()[0])


# ------------------------------------------------------------------------------------------------ erasure
def rebuild(ws: Workspace, keep: Callable[[str, list[str], str], tuple[str, list] | None],
            finish: Callable[[Connection, dict[str, int]], None] | None,
            refresh: Callable[[dict[str, pd.DataFrame], dict], dict]) -> dict[str, int]:
    """`store.rebuild` on PostgreSQL: delete the rows `keep` does not keep, in one transaction, then VACUUM FULL.

    All the DELETEs run as one statement (data-modifying WITH clauses share one snapshot), so every condition sees
    the store as it was, as DuckDB's rebuild from the old file does. Then VACUUM FULL rewrites each table that lost
    rows into new files and drops the old ones: a DELETE only marks a row dead, and plain VACUUM lets its bytes sit
    in the page until reused. VACUUM FULL of the touched tables, rather than rewriting the whole schema and swapping
    it in, because an erasure touches a few tables and a rewrite would copy every table and stop event appends for
    the whole time; VACUUM FULL locks one table for the moment of its copy. (Her bytes also remain in PostgreSQL's
    write-ahead log until its segments are recycled, and in any base backup taken before: those are the operator's.)
    """
    dropped: dict[str, int] = {}
    with _session(ws, migrated=True) as con:
        with con.transaction():
            con.execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(lock_key(ws.schema, "data")))
            clauses, params, names = [], [], []
            for name in tables_in(con, ws.schema):
                if name in (COLUMNS_TABLE, META_TABLE, "schema_migrations"):
                    continue
                columns = [r[0] for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", [ws.schema, name]).fetchall()]
                rule = keep(name, columns, "")
                if rule is None:
                    continue
                condition, values = rule
                clauses.append(f'd{len(names)} AS (DELETE FROM "{name}" AS t WHERE NOT ({condition}) RETURNING 1)')
                params.extend(values)
                names.append(name)
            adapter = Connection(con, ws.schema)
            if names:
                counts = adapter.execute("WITH " + ", ".join(clauses) + " SELECT " + ", ".join(
                    f"(SELECT count(*) FROM d{i})" for i in range(len(names))), params).fetchone()
                dropped = {name: int(n) for name, n in zip(names, counts, strict=True)}
            if finish is not None:
                finish(adapter, dropped)
            if any(dropped.values()) and META_TABLE in tables_in(con, ws.schema):
                meta = refresh(read_contract(con, ws.schema), read_meta(con))
                con.execute(sql.SQL("UPDATE {} SET json = %s").format(sql.Identifier(META_TABLE)),
                            [json.dumps(meta, sort_keys=True)])
        for name, n in dropped.items():
            if n:
                con.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(name)))
    return dropped


# ------------------------------------------------------------------------------------------------ live writer
class PgWriter:
    """The `store.Writer` of a PostgreSQL workspace: a pool of up to `max_size` connections shared by the threads of
    this process. Unlike DuckDB, any number of processes may hold one: PostgreSQL orders their writes."""

    row_order = "seq"        # PostgreSQL has no rowid: serving tables carry an identity column

    def __init__(self, ws: Workspace, max_size: int = 4) -> None:
        self.ws = ws
        self.max_size = max_size
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def _connections(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                with _session(self.ws, migrated=True):
                    pass
                self._pool = ConnectionPool(self.ws.conninfo, min_size=1, max_size=self.max_size,
                                            kwargs={"autocommit": True},
                                            configure=lambda con: _configure(self.ws, con), open=True,
                                            name=f"vendome-{self.ws.schema}")
            return self._pool

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._connections().connection() as raw, raw.transaction():
            yield Connection(raw, self.ws.schema)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._connections().connection() as raw:
            yield Connection(raw, self.ws.schema)

    def query(self, query: str, params: list | tuple = ()) -> pd.DataFrame:
        with self.reading() as con:
            return con.execute(query, params).df()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Nothing to let go of (PostgreSQL is shared); kept for the DuckDB Writer's callers."""
        yield

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                pool, self._pool = self._pool, None
                pool.close()


def serialize(con: Connection, name: str) -> None:
    """Hold a transaction-level lock on `name` until commit, so writers of it commit one at a time."""
    con.raw.execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(lock_key(con.schema, name)))


def next_seq(con: Connection, table: str, n: int) -> list[int]:
    """`n` sequence numbers for `table`, committed in order: the lock makes the next writer wait for this commit,
    so a reader who has seen number k never later sees a smaller one appear."""
    serialize(con, table)
    rows = con.raw.execute("SELECT nextval(pg_get_serial_sequence(%s, 'seq')) FROM generate_series(1, %s)",
                           [table, n]).fetchall()
    return sorted(int(r[0]) for r in rows)

