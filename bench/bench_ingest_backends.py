"""Ingestion rate into PostgreSQL versus DuckDB, in one run: the same validated contract tables written by
`store.write_tables` into each store (validation is shared and timed once, apart), `--repeat` times each, median.

    .venv/bin/vendome generate /tmp/pg_demo                      # the demo boutique export (~3 min)
    .venv/bin/python bench/bench_ingest_backends.py /tmp/pg_demo

Rows per second = rows of all contract tables / seconds of the store write (for PostgreSQL: COPY into a fresh
schema, then the swap; for DuckDB: a new file, then os.replace). PostgreSQL runs on this machine (127.0.0.1), into
a throwaway database created and dropped by the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from vendome.data import store
from vendome.data.ingest import read_folder, validate_tables
from vendome.workspace import Workspace


def timed_writes(ws: Workspace, tables: dict, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        store.write_tables(ws, tables, {"source": "bench"})
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", type=Path, help="a contract export folder")
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    start = time.perf_counter()
    raw, files = read_folder(args.export)
    tables, problems = validate_tables(raw, files, salt=b"bench", base_dir=args.export)
    if problems.total:
        raise SystemExit(f"{args.export} does not validate:\n{problems}")
    validation = time.perf_counter() - start
    rows = sum(len(df) for df in tables.values())

    database = f"vendome_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            duck = Workspace(Path(tmp) / "duck", database_url="")
            pg = Workspace(Path(tmp) / "pg", database_url=f"{args.server}/{database}?schema=bench")
            duck_s = timed_writes(duck, tables, args.repeat)
            pg_s = timed_writes(pg, tables, args.repeat)
            assert store.read_meta(pg)["content_hash"] == store.read_meta(duck)["content_hash"]
    finally:
        store._close_writers()
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    duck_rate, pg_rate = rows / statistics.median(duck_s), rows / statistics.median(pg_s)
    result = {"export": str(args.export), "rows": rows, "counts": {k: len(v) for k, v in tables.items()},
              "validation_s": round(validation, 2), "duckdb_s": [round(s, 3) for s in duck_s],
              "postgres_s": [round(s, 3) for s in pg_s], "duckdb_rows_per_s": round(duck_rate),
              "postgres_rows_per_s": round(pg_rate), "postgres_over_duckdb": round(pg_rate / duck_rate, 3),
              "load_avg_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))
    print(f"\n| store | rows/s (median of {args.repeat}) |\n|---|---|\n| DuckDB | {duck_rate:,.0f} |\n"
          f"| PostgreSQL (COPY) | {pg_rate:,.0f} |\n| ratio PostgreSQL / DuckDB | {pg_rate / duck_rate:.2f} |")


if __name__ == "__main__":
    main()
