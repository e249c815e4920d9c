"""Batch scoring at scale: the customers cut into shards, scored by worker processes, one Parquet part per shard.

    vendome batch --workspace WS --output OUT_DIR --workers 2 [--shards 40] [--resume]

OUT_DIR/part-SSSSS.parquet is shard S's rows (written whole: a temp file, then a rename); OUT_DIR/_manifest.json
holds the run's parameters and the shards done; OUT_DIR/_SUCCESS appears when every shard is there. The folder
reads as one dataset (`pandas.read_parquet(OUT_DIR)`, `pyarrow.dataset`, DuckDB `read_parquet('OUT_DIR/*.parquet')`;
the `_` files are skipped by all three), and the parts in name order are, row for row, the single file that
`run_batch` writes for the same parameters.

Shards are contiguous ranges of the selection in customers-table order: sizes differ by at most one customer and the
parts concatenate into the single-file order. Membership hangs on the selection, so the manifest keeps a hash of it
and `--resume` refuses when it (or the model version, placement, k, segment, shard count, opt-outs or ingested data)
changed; the shard count never depends on the number of workers, so a run resumes with any `--workers`. A resumed
run serves its lists as of the first run's moment (the manifest's `now`, for the launch-date rules), so every part
belongs to one snapshot.

Why a `ProcessPoolExecutor` with the spawn context rather than torchrun ranks: scoring needs no collective
communication, only a queue of independent shards. A pool hands the next shard to whichever worker is free (uneven
shards and a busy core balance out), reports an exception with the shard it belongs to, and leaves one process, the
parent, as the only writer of the manifest. Spawn rather than fork because the parent has already loaded DuckDB,
OpenMP and possibly torch, whose threads and locks fork copies in an undefined state. Each worker loads the model
artifact (the version the manifest names, so a fit during the run cannot mix versions) and the workspace data once,
in the pool's initializer, with `threads // workers` threads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vendome.batch import BatchSummary, audience, opted_out_mask, score_customers, workspace_guard, write_table
from vendome.workspace import Workspace

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
FORMAT = 1
# Default shard count: about SHARD_SIZE customers a shard, so that the workers finish together (a worker idles at
# most one small shard at the end), within [MIN_SHARDS, MAX_DEFAULT_SHARDS] (not thousands of tiny files).
SHARD_SIZE = 250
MIN_SHARDS = 16
MAX_DEFAULT_SHARDS = 1024
MAX_SHARDS = 100_000       # part-SSSSS


class ShardError(RuntimeError):
    """A shard could not be scored or written; the shards done are kept and `--resume` continues."""


@dataclass
class ShardedSummary(BatchSummary):
    shards: int = 0
    shards_run: int = 0        # scored by this call (the others were done by an earlier run)
    workers: int = 1


def part_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


def wants_folder(output: Path) -> bool:
    """A folder output (an existing folder, or a path without a suffix) asks for the sharded run."""
    output = Path(output)
    return output.is_dir() or output.suffix == ""


def default_shards(customers: int) -> int:
    return max(1, min(customers, MAX_DEFAULT_SHARDS, max(MIN_SHARDS, math.ceil(customers / SHARD_SIZE))))


def run_sharded(ws: Workspace, output: Path, model_name: str = "hybrid", placement: str = "email", k: int = 10,
                segment: dict[str, list[str]] | None = None, *, workers: int = 1, shards: int | None = None,
                resume: bool = False, threads: int = 2, batch_size: int = 512, progress: bool = True
                ) -> ShardedSummary:
    """Score the segment's customers shard by shard with `workers` processes into the folder `output`.

    A fresh run needs an empty (or new) folder; `resume=True` continues the run recorded there, scoring only the
    shards whose part is missing, and refuses (ValueError) when the parameters differ from the manifest's. A shard
    that fails stops the run with a ShardError naming it, after the shards already in flight are finished and
    recorded."""
    from vendome.artifacts import active_version, load_model
    from vendome.data import store
    from vendome.serve.privacy import Consent

    t0 = time.perf_counter()
    out = Path(output)
    if out.suffix.lower() in (".parquet", ".csv"):
        raise ValueError(f"a sharded run writes a folder of Parquet parts: give --output a folder, not {out.name!r} "
                         f"(a single .parquet/.csv file is written with --workers 1 and no --shards/--resume)")
    if workers < 1 or threads < 1 or (shards is not None and not 1 <= shards <= MAX_SHARDS):
        raise ValueError(f"--workers and --threads must be >= 1 and --shards between 1 and {MAX_SHARDS} "
                         f"(got workers={workers}, threads={threads}, shards={shards})")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; a sharded run writes a folder")
    manifest = _read_manifest(out)
    if manifest is None and out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no {MANIFEST}: choose a new or empty folder")
    if manifest is not None and not resume:
        raise ValueError(f"{out} already holds a batch run ({MANIFEST}): pass --resume to finish it, "
                         f"or choose a new folder")
    version = active_version(ws, model_name)
    if version is None:
        load_model(ws, model_name)        # raises the error that says how to train it

    data = store.load_dataset(ws)     # the selection needs the customers, not the item features the workers attach
    users, skipped = audience(data, segment, placement)
    ids = data.customers["customer_id"].astype(str).to_numpy()[users]
    opted = set(ids[opted_out_mask(data, users, Consent(ws).opted_out())].tolist())
    del data
    store.writer(ws).close()      # DuckDB: the workers' read-only connections cannot open beside this process's writer
    if shards is None:
        shards = manifest["params"]["shards"] if manifest else default_shards(len(ids))
    params = {"model": model_name, "version": version, "placement": placement, "k": int(k),
              "segment": {c: sorted(v) for c, v in sorted((segment or {}).items())}, "shards": int(shards),
              "customers": int(len(ids)), "selection_sha256": _sha256(ids),
              "opted_out_sha256": _sha256(sorted(opted)), "data": _data_hash(ws)}
    if manifest is not None:
        _check_same_run(manifest, params, out)
    else:
        manifest = {"format": FORMAT, "params": params, "now": time.time(), "skipped_no_consent": skipped,
                    "created_at": _stamp(), "shards": {}}
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".part-*.tmp"):     # a worker killed mid-write
        stale.unlink(missing_ok=True)
    done = {s: v for s, v in manifest["shards"].items() if (out / part_name(int(s))).is_file()}
    manifest["shards"] = done
    todo = [s for s in range(shards) if str(s) not in done]
    if todo:
        (out / SUCCESS).unlink(missing_ok=True)
    _write_manifest(out, manifest)

    pieces = np.array_split(ids, shards)
    setup = (ws, model_name, version, placement, int(k), float(manifest["now"]),   # ws: its store URL too
             max(1, threads // workers), batch_size, opted)
    failures = _score_shards(out, manifest, todo, pieces, setup, workers, progress)
    if failures:
        names = ", ".join(f"shard {s} ({part_name(s)})" for s, _ in failures)
        raise ShardError(f"batch stopped: {names} failed: {failures[0][1]}\n{len(manifest['shards'])} of {shards} "
                         f"shards are complete in {out}; run the same command with --resume to score the rest")
    (out / SUCCESS).touch()
    parts = manifest["shards"].values()
    return ShardedSummary(out, int(len(ids)), sum(p["rows"] for p in parts), int(manifest["skipped_no_consent"]),
                          sum(p["not_personalised"] for p in parts), round(time.perf_counter() - t0, 2),
                          shards=shards, shards_run=len(todo), workers=workers)


def _score_shards(out: Path, manifest: dict, todo: list[int], pieces: list[np.ndarray], setup: tuple,
                  workers: int, progress: bool) -> list[tuple[int, str]]:
    """Run the shards of `todo` on a pool, at most one a worker in flight (so a broken pool names exactly the shards
    that were running); record each in the manifest as it lands. Returns the failed shards and why."""
    if not todo:
        return []
    shards = manifest["params"]["shards"]
    pending = deque(todo)
    running: dict[Future, int] = {}
    failures: list[tuple[int, str]] = []
    bar = tqdm(total=shards, initial=shards - len(todo), unit="shard", desc=f"batch {manifest['params']['model']}",
               disable=not progress)
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=setup) as pool:
        while pending or running:
            while pending and not failures and len(running) < workers:
                shard = pending.popleft()
                running[pool.submit(_score_shard, shard, pieces[shard], str(out))] = shard
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                shard = running.pop(future)
                try:
                    manifest["shards"][str(shard)] = future.result()
                except BrokenProcessPool:
                    failures.append((shard, "a worker process died (killed, or out of memory) with the shard in "
                                            "flight"))
                except Exception as err:     # noqa: BLE001 - reported with its shard, the run stops
                    failures.append((shard, f"{type(err).__name__}: {err}"))
                else:
                    manifest["updated_at"] = _stamp()
                    _write_manifest(out, manifest)
                    bar.update(1)
    bar.close()
    return sorted(failures)


# ---------------------------------------------------------------------------------------------- in the workers
_WORKER: dict[str, Any] = {}


def _init_worker(ws: Workspace, model_name: str, version: str, placement: str, k: int, now: float, threads: int,
                 batch_size: int, opted: set[str]) -> None:
    """Load the data, the model version and the rules once per worker. An error is kept and raised by the first
    shard (an initializer that raises only says "the pool is broken", without the cause)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)     # libraries loaded from here on (torch) read these once
    try:
        from threadpoolctl import threadpool_limits

        from vendome.artifacts import load_model
        from vendome.pipeline import training_data

        threadpool_limits(threads)         # and the ones already loaded (numpy's BLAS)
        data = training_data(ws, threads=threads, progress=False)
        model = load_model(ws, model_name, version)[0]
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        index = {c: u for u, c in enumerate(data.customers["customer_id"].astype(str))}
        _WORKER.update(data=data, index=index, model=model, guard=workspace_guard(ws, data), placement=placement,
                       k=k, now=now, batch_size=batch_size, opted=opted)
    except Exception:      # noqa: BLE001
        _WORKER["error"] = traceback.format_exc()


def _score_shard(shard: int, customer_ids: np.ndarray, out: str) -> dict:
    """Score one shard's customers and write its part; returns what the manifest records of it."""
    if "error" in _WORKER:
        raise RuntimeError(f"the worker could not load the workspace or the model:\n{_WORKER['error']}")
    t0 = time.perf_counter()
    w = _WORKER
    data, index = w["data"], w["index"]
    missing = [c for c in customer_ids if c not in index]
    if missing:
        raise KeyError(f"{len(missing)} customers of the shard (first {missing[0]!r}) are no longer in the "
                       f"workspace's data")
    users = np.fromiter((index[c] for c in customer_ids), dtype=np.int64, count=len(customer_ids))
    off = np.isin(customer_ids, list(w["opted"])) if w["opted"] else np.zeros(len(users), bool)
    table = score_customers(w["model"], data, w["guard"], users, off, w["placement"], w["k"], w["now"],
                            w["batch_size"])
    write_table(table, Path(out) / part_name(shard))
    return {"customers": int(len(users)), "rows": int(len(table)), "not_personalised": int(off.sum()),
            "seconds": round(time.perf_counter() - t0, 2), "pid": os.getpid()}


# ---------------------------------------------------------------------------------------------- the manifest
def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); remove the folder to start again") from err
    if manifest.get("format") != FORMAT or "params" not in manifest:
        raise ValueError(f"{path} is not a Vendome batch manifest (format {FORMAT}); remove the folder to start again")
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, out / MANIFEST)


def _check_same_run(manifest: dict, params: dict, out: Path) -> None:
    """--resume continues only the run the manifest describes: any difference would mix two runs in one dataset."""
    before = manifest["params"]
    changed = [f"{key}: {before.get(key)!r} in the manifest, {params[key]!r} now" for key in params
               if before.get(key) != params[key]]
    if changed:
        raise ValueError(f"--resume refused: {out} holds a run with other parameters\n  " + "\n  ".join(changed)
                         + "\n(a new model version, segment, selection or opt-out needs a new run: choose a new "
                           "folder or remove this one)")


def _sha256(values) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode())
        h.update(b"\n")
    return h.hexdigest()


def _data_hash(ws: Workspace) -> str | None:
    """The ingestion's content hash (a re-ingest between a run and its resume changes the lists)."""
    from vendome.data.store import read_meta

    return read_meta(ws).get("content_hash")


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
