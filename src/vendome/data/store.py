"""The workspace store: validated contract tables in one DuckDB file (`Workspace(ws).db`), or in PostgreSQL when the
workspace has a database URL (`vendome.data.postgres`, same functions, same guarantees; see `Workspace`).

Ingestion replaces the whole set at once: a new DuckDB file is built next to the old one and moved over it with
`os.replace`, so a crash or a power cut leaves the previous store intact and readers never see half a dataset.
Tables written by other layers (event log, model metadata) through `write_dataframe` live in the same file and are
carried over when the contract tables are replaced.

A long-running service writes through `writer(ws)`: one connection per process, kept open, because opening a DuckDB
file costs tens of milliseconds and a commit a few. While it is open, this module's readers in the same process
read through it, and `write_tables` / `rebuild` close it for their swap (it reopens on next use).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from vendome.data.dataset import Dataset
from vendome.data.schema import CONTRACT_VERSION, TABLE_NAMES, TABLES
from vendome.workspace import Workspace

META_TABLE = "meta"
SALT_FILE = "pii_salt"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreNotFoundError(FileNotFoundError):
    """The workspace has no store yet."""


def _ws(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace(ws)


def _missing(ws: Workspace) -> StoreNotFoundError:
    where = f"schema {ws.schema!r} of {_safe_url(ws)}" if ws.postgres else str(ws.db)
    return StoreNotFoundError(
        f"no Vendome store at {where}: run `vendome ingest DIR --workspace {ws.root}` "
        f"or `vendome demo --workspace {ws.root}` first")


@contextlib.contextmanager
def _connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _safe_url(ws: Workspace) -> str:
    """The database URL without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", ws.database_url or "")


def _reader(ws: Workspace) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    if not ws.db.exists():
        raise _missing(ws)
    live = _live_writer(ws)  # DuckDB refuses a read-only connection beside this process's open writer
    return live.reading() if live is not None else _connect(ws.db, read_only=True)


def _tables_in(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> list[str]:
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    if catalog:
        sql += f" AND table_catalog = '{catalog}'"
    return [r[0] for r in con.execute(sql).fetchall()]


def _df(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    with warnings.catch_warnings():  # duckdb's pandas bridge trips pandas' own deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        return con.execute(sql).df()


# --------------------------------------------------------------------------------------------- contract tables
def content_hash(tables: dict[str, pd.DataFrame]) -> str:
    """SHA-256 over the contract tables' columns, dtypes and values (independent of the DuckDB file's bytes)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        h.update(f"\x00table {name} {len(df)}\x00".encode())
        for col in df.columns:
            h.update(f"{col}:{df[col].dtype}\x00".encode())
            if name == "product_embeddings" and col == "vector":
                vectors = [np.asarray(v, np.float32).ravel() for v in df[col]]
                h.update(np.array([len(v) for v in vectors], np.int64).tobytes())
                h.update(np.concatenate(vectors).tobytes() if vectors else b"")
            else:
                h.update(pd.util.hash_pandas_object(df[col], index=False).to_numpy().tobytes())
    return h.hexdigest()


def write_tables(ws: Workspace | str | Path, tables: dict[str, pd.DataFrame], meta: dict | None = None) -> dict:
    """Replace the store's contract tables with `tables` (validated ones) in one atomic step.

    `meta` (e.g. {"source": ...}) is completed with ingested_at, row counts, content hash and contract version,
    stored as JSON in the `meta` table and returned.
    """
    unknown = set(tables) - set(TABLE_NAMES)
    if unknown:
        raise ValueError(f"not contract tables: {sorted(unknown)}; use write_dataframe for other data")
    ws = _ws(ws).ensure()
    meta = dict(meta or {})
    meta.setdefault("ingested_at", datetime.now(UTC).isoformat(timespec="seconds"))
    meta["counts"] = {name: int(len(df)) for name, df in tables.items()}
    meta["content_hash"] = content_hash(tables)
    meta["contract_version"] = CONTRACT_VERSION
    if ws.postgres:
        from vendome.data import postgres
        postgres.replace_tables(ws, tables, meta)
        return meta

    tmp = ws.root / f".{ws.db.name}.{uuid.uuid4().hex}.tmp"
    with _released(ws):  # a live writer of this process would keep the old file open through the swap
        try:
            with _connect(tmp) as con:
                for name in TABLE_NAMES:
                    if name in tables:
                        _create(con, name, tables[name])
                con.execute(f"CREATE TABLE {META_TABLE} (json VARCHAR)")
                con.execute(f"INSERT INTO {META_TABLE} VALUES (?)", [json.dumps(meta, sort_keys=True)])
                if ws.db.exists():
                    _merge_wal(ws.db)
                    _carry_over(con, ws.db)
                con.execute("CHECKPOINT")
            _fsync(tmp)
            os.replace(tmp, ws.db)
            _fsync(ws.root)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
    return meta


def _create(con: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame) -> None:
    if name == "product_embeddings":
        vectors = list(df["vector"]) if len(df) else []
        values = pa.array([np.asarray(v, np.float32) for v in vectors], type=pa.list_(pa.float32()))
        rest = df.drop(columns=["vector"]).reset_index(drop=True)
        arrow = pa.Table.from_pandas(rest, preserve_index=False).append_column("vector", values)
        con.register("_incoming", arrow)
    else:
        con.register("_incoming", df.reset_index(drop=True))
    con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
    con.unregister("_incoming")


def _carry_over(con: duckdb.DuckDBPyConnection, old_db: Path) -> None:
    """Copy the other layers' tables (event log, model metadata, ...) from the store being replaced."""
    con.execute(f"ATTACH '{old_db}' AS old (READ_ONLY)")
    try:
        for name in _tables_in(con, "old"):
            if name not in TABLES and name != META_TABLE:
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM old.main."{name}"')
    finally:
        con.execute("DETACH old")


def _merge_wal(db: Path) -> None:
    """Checkpoint a write-ahead log left by a killed writer into its file: a WAL left beside the file that replaces
    it would make the new store unopenable ("WAL does not match database file")."""
    if _wal(db).exists():
        with _connect(db) as con:
            con.execute("CHECKPOINT")


def _wal(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_tables(ws: Workspace | str | Path) -> dict[str, pd.DataFrame]:
    """The contract tables in the store (dates as UTC datetimes; embeddings with a float32 `vector` column)."""
    ws = _ws(ws)
    if ws.postgres:
        from vendome.data import postgres
        with postgres.reading(ws) as con:
            out = postgres.read_contract(con, ws.schema)
        if "products" not in out:
            raise _missing(ws)
        return out
    out: dict[str, pd.DataFrame] = {}
    with _reader(ws) as con:
        present = set(_tables_in(con))
        if "products" not in present:
            raise _missing(ws)
        for name in TABLE_NAMES:
            if name not in present:
                continue
            if name == "product_embeddings":
                out[name] = _read_embeddings_frame(con)
            else:
                out[name] = _df(con, f'SELECT * FROM "{name}"')
    return out


def _read_embeddings_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    arrow = con.sql("SELECT * FROM product_embeddings").to_arrow_table()
    vectors = arrow.column("vector").combine_chunks()
    rest = arrow.drop_columns(["vector"]).to_pandas()
    offsets = vectors.offsets.to_numpy()
    flat = vectors.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    rest["vector"] = pd.Series([flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)], dtype=object)
    return rest


def _stack(vectors: pd.Series) -> np.ndarray:
    if not len(vectors):
        return np.zeros((0, 0), np.float32)
    return np.stack([np.asarray(v, np.float32) for v in vectors])


def read_meta(ws: Workspace | str | Path) -> dict:
    """The ingestion record: source, ingested_at, counts, content_hash, contract_version."""
    ws = _ws(ws)
    if ws.postgres:
        from vendome.data import postgres
        with postgres.reading(ws) as con:
            if META_TABLE not in postgres.tables_in(con, ws.schema):
                raise _missing(ws)
            return postgres.read_meta(con)
    with _reader(ws) as con:
        if META_TABLE not in _tables_in(con):
            raise _missing(ws)
        return json.loads(con.execute(f"SELECT json FROM {META_TABLE}").fetchone()[0])


def read_product_embeddings(ws: Workspace | str | Path) -> dict[str, tuple[list[str], np.ndarray, str]]:
    """Supplied embeddings per modality: (product ids, (n, d) float32 matrix, model name); {} when none."""
    ws = _ws(ws)
    out: dict[str, tuple[list[str], np.ndarray, str]] = {}
    if ws.postgres:
        if not has_table(ws, "product_embeddings"):
            return out
        emb = read_dataframe(ws, "product_embeddings")
    else:
        with _reader(ws) as con:
            if "product_embeddings" not in _tables_in(con):
                return out
            emb = _read_embeddings_frame(con)
    for modality, group in emb.groupby("modality", sort=True):
        models = group["model"].dropna()
        model = str(models.mode().iloc[0]) if len(models) else "unknown"
        out[str(modality)] = ([str(p) for p in group["product_id"]], _stack(group["vector"]), model)
    return out


EVENT_LOG = "event_log"   # the service's live events (vendome.serve.events): part of every client's history


def load_dataset(ws: Workspace | str | Path, name: str | None = None, events: bool = True) -> Dataset:
    """The Dataset view of the workspace (no item features: the features layer attaches them), with the events the
    service logged since ingestion appended to the interactions (`events=False`: the ingested tables only)."""
    ws = _ws(ws)
    tables = read_tables(ws)
    contract = {k: v for k, v in tables.items() if k != "product_embeddings"}
    if events and has_table(ws, EVENT_LOG):
        logged = read_dataframe(ws, EVENT_LOG)
        if len(logged):
            base = contract.get("interactions")
            logged = logged[[c for c in logged.columns if base is None or c in base.columns]]
            contract["interactions"] = logged if base is None else pd.concat([base, logged], ignore_index=True)
    return Dataset.from_tables(contract, name=name or ws.root.name)


# --------------------------------------------------------------------------------------------- other layers
def write_dataframe(ws: Workspace | str | Path, name: str, df: pd.DataFrame, mode: str = "replace") -> None:
    """Store a frame as table `name` in the workspace's DuckDB file, in one transaction.

    mode "replace" swaps the table's content; "append" adds rows (creating the table when needed). Other layers
    use this for their own data (event log, model registry); it survives re-ingestion of the contract tables.
    """
    if not _NAME.match(name) or name == META_TABLE:
        raise ValueError(f"table name must be an identifier other than {META_TABLE!r}, got {name!r}")
    if mode not in ("replace", "append"):
        raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
    ws = _ws(ws).ensure()
    if ws.postgres:
        from vendome.data import postgres
        postgres.write_frame(ws, name, df, mode)
        return
    with _connect(ws.db) as con:
        con.register("_incoming", df.reset_index(drop=True))
        con.execute("BEGIN TRANSACTION")
        try:
            if mode == "append" and name in _tables_in(con):
                con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM _incoming')
            else:
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def read_dataframe(ws: Workspace | str | Path, name: str) -> pd.DataFrame:
    """A table written by `write_dataframe` (or any table in the store); KeyError when it does not exist."""
    ws = _ws(ws)
    if ws.postgres:
        from vendome.data import postgres
        with postgres.reading(ws) as con:
            if name not in postgres.tables_in(con, ws.schema):
                raise KeyError(f"no table {name!r} in schema {ws.schema!r} of {_safe_url(ws)}")
            return postgres.read_named(con, name)
    with _reader(ws) as con:
        if name not in _tables_in(con):
            raise KeyError(f"no table {name!r} in {ws.db}")
        return _df(con, f'SELECT * FROM "{name}"')


def has_table(ws: Workspace | str | Path, name: str) -> bool:
    ws = _ws(ws)
    if ws.postgres:
        from vendome.data import postgres
        with postgres.reading(ws) as con:
            return name in postgres.tables_in(con, ws.schema)
    if not ws.db.exists():
        return False
    with _reader(ws) as con:
        return name in _tables_in(con)


def rebuild(ws: Workspace | str | Path, keep: Callable[[str, list[str], str], tuple[str, list] | None],
            finish: Callable[[Any, dict[str, int]], None] | None = None) -> dict[str, int]:
    """Rewrite the whole store into a new file keeping only some rows, then swap it in atomically (as `write_tables`).

    `keep(table, columns, old)` returns an SQL condition (`?` parameters) on a row of the table as it was (aliased
    `t`), with its parameters, or None to copy the table whole; the condition names another table of the store as it
    was by prefixing `old` (`f"{old}orders"`). `finish(con, dropped)` may then change the new store before the
    swap. Returns `dropped`, the number of rows dropped per filtered table. A new file rather than DELETEs because a
    deleted row's bytes stay in DuckDB's file (and its WAL) until overwritten: erasure must leave nothing behind.
    On PostgreSQL: DELETEs in one transaction, then VACUUM FULL of the touched tables (`postgres.rebuild` says why).
    """
    ws = _ws(ws)
    if ws.postgres:
        from vendome.data import postgres
        return postgres.rebuild(ws, keep, finish, refresh=_refreshed)
    if not ws.db.exists():
        raise _missing(ws)
    tmp = ws.root / f".{ws.db.name}.{uuid.uuid4().hex}.tmp"
    dropped: dict[str, int] = {}
    with _released(ws):
        try:
            with _connect(tmp) as con:
                try:  # read-write: holds the file for the whole rebuild and merges its WAL
                    con.execute(f"ATTACH {_quote(ws.db)} AS old")
                except duckdb.IOException as err:
                    if not _busy(err):
                        raise
                    raise StoreBusyError(f"cannot rebuild {ws.db}, another process holds it "
                                         f"({str(err).splitlines()[0]}); nothing was changed") from err
                try:
                    con.execute("CHECKPOINT old")
                    for name in _tables_in(con, "old"):
                        columns = [r[0] for r in con.execute(
                            "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'old' "
                            "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                            [name]).fetchall()]
                        rule = keep(name, columns, "old.main.")
                        source = f'old.main."{name}"'
                        if rule is None:
                            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM {source}')
                            continue
                        condition, params = rule
                        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM {source} AS t WHERE {condition}',
                                    params)
                        before = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
                        after = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                        dropped[name] = int(before - after)
                    if finish is not None:
                        finish(con, dropped)
                finally:
                    con.execute("DETACH old")
                if dropped and META_TABLE in _tables_in(con):
                    _refresh_meta(con)
                con.execute("CHECKPOINT")
            _fsync(tmp)
            if _wal(ws.db).exists():
                raise RuntimeError(f"{_wal(ws.db)} appeared during the rebuild: another process wrote to the store; "
                                   "nothing was changed")
            os.replace(tmp, ws.db)
            _fsync(ws.root)
        finally:
            for leftover in (tmp, _wal(tmp)):
                leftover.unlink(missing_ok=True)
    return dropped


def _refresh_meta(con: duckdb.DuckDBPyConnection) -> None:
    meta = json.loads(con.execute(f"SELECT json FROM {META_TABLE}").fetchone()[0])
    present = set(_tables_in(con))
    tables = {name: _read_embeddings_frame(con) if name == "product_embeddings" else _df(con, f'SELECT * FROM "{name}"')
              for name in TABLE_NAMES if name in present}
    con.execute(f"UPDATE {META_TABLE} SET json = ?", [json.dumps(_refreshed(tables, meta), sort_keys=True)])


def _refreshed(tables: dict[str, pd.DataFrame], meta: dict) -> dict:
    """Row counts and content hash of the rebuilt contract tables, so the ingestion record stays true."""
    meta = dict(meta)
    meta["counts"] = {name: int(len(df)) for name, df in tables.items()}
    meta["content_hash"] = content_hash(tables)
    meta["rebuilt_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return meta


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------- live writer
class StoreBusyError(RuntimeError):
    """Another connection holds the store file (DuckDB lets one process open a file for writing)."""


class Writer:
    """This process's one read-write connection to a workspace store, shared by its threads under a lock.

    Opening a DuckDB file starts a database engine (25-40 ms on the 2-core dev machine) and closing it checkpoints
    (10-30 ms), while a commit costs about 5 ms (the WAL is written and fdatasync'ed): a service that acknowledges
    events one by one keeps the connection open rather than connecting per event. The price is DuckDB's rule of
    one process per file: while a Writer is open, other processes cannot open the store (they can once `close()`
    or `released()` lets go of it). In this process, `read_tables` & co. read through the Writer's engine.
    """

    row_order = "rowid"      # what the serving tables order ties by (DuckDB's implicit row id)

    def __init__(self, db: Path, busy_timeout: float = 5.0) -> None:
        self.db = db
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self.db.exists():
                raise _missing(Workspace(self.db.parent))
            deadline = time.monotonic() + self.busy_timeout
            while True:
                try:
                    con = duckdb.connect(str(self.db))
                    break
                except (duckdb.IOException, duckdb.ConnectionException) as err:
                    if not _busy(err):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(f"the store {self.db} stayed busy for {self.busy_timeout:g} s: "
                                             f"{str(err).splitlines()[0]}") from err
                    time.sleep(0.02)  # another process, or a read-only reader of this one, holds it for a moment
            con.execute("SET TimeZone = 'UTC'")
            self._con = con
        return self._con

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One committed transaction; everything in it is rolled back if the block raises."""
        with self._lock:
            con = self._connection()
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the open engine: reads see every committed write and do not wait for the lock."""
        with self._lock:
            cursor = self._connection().cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            yield cursor
        finally:
            cursor.close()

    def query(self, sql: str, params: list | tuple = ()) -> pd.DataFrame:
        with self.reading() as con, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return con.execute(sql, list(params)).df()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Hold the lock with the file closed (for a swap, or for another process); reopens on next use."""
        with self._lock:
            self.close()
            yield

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints the WAL into the file); the next use reopens it."""
        with self._lock:
            if self._con is not None:
                con, self._con = self._con, None
                con.close()


def _busy(err: Exception) -> bool:
    """A lock held by another process, or a read-only connection of this process: both go away by themselves."""
    text = str(err)
    return "Could not set lock" in text or "different configuration" in text


_WRITERS: dict[Path | tuple[str, str], Any] = {}
_WRITERS_LOCK = threading.Lock()


def writer(ws: Workspace | str | Path) -> Writer:
    """The process-wide Writer of a workspace store (created on first use; opens the file on first write or read).
    On PostgreSQL, a `postgres.PgWriter` with the same methods (a connection pool that other processes may share)."""
    ws = _ws(ws)
    key = (ws.conninfo, ws.schema) if ws.postgres else ws.db
    with _WRITERS_LOCK:
        if key not in _WRITERS:
            if ws.postgres:
                from vendome.data import postgres
                _WRITERS[key] = postgres.PgWriter(ws)
            else:
                _WRITERS[key] = Writer(ws.db)
        return _WRITERS[key]


def create_table(con: Any, ddl: str) -> None:
    """Create a serving table from its DDL on DuckDB; on PostgreSQL the migrations made it (nothing to do)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        con.execute(ddl)


def serialize(con: Any, name: str) -> None:
    """Make the writers of `name` commit one at a time: a PostgreSQL advisory lock held to the end of the
    transaction; on DuckDB the process's one Writer already does."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        from vendome.data import postgres
        postgres.serialize(con, name)


def next_seq(con: Any, table: str, n: int) -> list[int]:
    """The next `n` values of `table`'s `seq` column, to insert in this transaction; numbers become visible in
    increasing order to every process (on PostgreSQL the table's identity sequence under `serialize`, on DuckDB one
    more than the largest so far under the Writer's lock)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        [(last,)] = con.execute(f'SELECT coalesce(max(seq), 0) FROM "{table}"').fetchall()
        return list(range(int(last) + 1, int(last) + 1 + n))
    from vendome.data import postgres
    return postgres.next_seq(con, table, n)


def _live_writer(ws: Workspace) -> Writer | None:
    live = _WRITERS.get(ws.db)
    return live if live is not None and live.is_open else None


@contextlib.contextmanager
def _released(ws: Workspace) -> Iterator[None]:
    live = _WRITERS.get(ws.db)
    if live is None:
        yield
        return
    with live.released():
        yield


@atexit.register
def _close_writers() -> None:
    for live in list(_WRITERS.values()):
        live.close()


# --------------------------------------------------------------------------------------------- pseudonym salt
def read_salt(ws: Workspace | str | Path) -> bytes | None:
    """The workspace's secret salt for pseudonymising personal data, or None before the first ingestion."""
    path = _ws(ws).root / SALT_FILE
    return path.read_bytes() if path.exists() else None


ERASURES = "erasures"   # receipts of erased customers (vendome.serve.privacy): salted hashes, never the ids


def erasure_receipt(ws: Workspace | str | Path, customer_id: str) -> str:
    """The salted SHA-256 that stands for a customer in `erasures` (recompute it to prove a request was honoured,
    or to recognise her in a later export without ever storing her id)."""
    salt = read_salt(ws)
    if salt is None:
        salt = os.urandom(32)
        write_salt(ws, salt)
    return hashlib.sha256(salt + b"\x00erasure\x00customer_id\x00" + str(customer_id).encode("utf-8")).hexdigest()


def erased_receipts(ws: Workspace | str | Path) -> set[str]:
    """The receipts of every customer erased from this workspace (empty before the first erasure)."""
    ws = _ws(ws)
    if not has_table(ws, ERASURES):
        return set()
    return set(read_dataframe(ws, ERASURES)["subject"].astype(str))


def write_salt(ws: Workspace | str | Path, salt: bytes) -> None:
    """Store the salt once, readable by the owner only (mode 0600)."""
    ws = _ws(ws).ensure()
    path = ws.root / SALT_FILE
    tmp = path.with_name(f".{SALT_FILE}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, salt)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class LoggedTable:
    """Base of the tables other layers append to through this process's one writer (the event log, exposures):
    created on first use from the subclass's `ddl`, and closable so other processes can open the store."""

    ddl: ClassVar[str]

    def __init__(self, ws: Workspace | str | Path) -> None:
        self.ws = _ws(ws)
        self._writer = writer(self.ws)
        self._ready = False

    def close(self) -> None:
        """Let go of the store file (other processes can open it); the next call reopens it."""
        self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure(self) -> None:
        if not self._ready:
            with self._writer.transaction() as con:
                create_table(con, self.ddl)
            self._ready = True
