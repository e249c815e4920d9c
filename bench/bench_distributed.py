"""Data-parallel training throughput: one process against two under torchrun, on Amazon Beauty, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_distributed.py [--models sasrec,mbmf] [--epochs 2] [--repeats 2]
        [--set key=value]

Per model, three ways to use two cores, alternated `--repeats` times so a change of load on a shared machine hits
all of them alike:
  1 process x 1 thread      `vendome train MODEL --threads 1`
  2 processes x 1 thread    `vendome train MODEL --threads 2 --nproc 2` (torchrun, DDP over gloo)
  1 process x 2 threads     `vendome train MODEL --threads 2`
All train the same global batch (the two processes take the same optimizer steps as one), validation off, so an
epoch times training only. Throughput = training samples per second of the median epoch (SASRec: journeys, each
training all its positions; multi-behavior models: BPR triplets). The ratios are the figures to read; absolute
seconds depend on what else runs (the load average is printed with each measurement). torchrun's start-up (a few
seconds per launch) is outside the epochs and reported apart. Writes bench/out/distributed_beauty.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import OUT, parser, shared_folder, workspace
from vendome.data.ingest import ingest_tables
from vendome.data.loaders import load
from vendome.data.store import load_dataset
from vendome.models import make_model
from vendome.models.base import Recommender
from vendome.pipeline import parse_settings
from vendome.training.distributed import launch

DEFAULTS = {"sasrec": {"batch_size": 256}, "cammsr": {"batch_size": 256}, "mbmf": {}, "mblightgcn": {}}
WAYS = (("1 process x 1 thread", 1, 1), ("2 processes x 1 thread", 2, 1), ("1 process x 2 threads", 1, 2))


def samples_per_epoch(model, data) -> int:
    """What one epoch trains on: journeys (windows) for the sequence models, triplets for the BPR ones."""
    from vendome.training.sequences import NextItemBatches, Sequences

    if hasattr(model, "max_len"):
        seqs = Sequences.from_dataset(data, model.behaviors, kinds=model.behavior_tokens)
        return len(NextItemBatches(seqs, model.max_len, model.batch_size).windows)
    from vendome.models.multibehavior import BehaviorGraphs, TripletBatches

    graphs = BehaviorGraphs.from_dataset(data, model.behaviors)
    return len(TripletBatches(graphs, model.batch_size, 0)) * model.batch_size * len(graphs.matrices)


def curve(model):
    return model.training_ if hasattr(model, "training_") else model.history_


def measure(name: str, data, params: dict, nproc: int, threads: int) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    if nproc == 1:
        model = make_model(name, **(params | {"threads": threads})).fit(data)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            launch(data, name, nproc, params=params, threads=threads, out=Path(tmp) / "model.pkl")
            model = Recommender.load(Path(tmp) / "model.pkl")
    wall = time.perf_counter() - t0
    seconds = curve(model).epoch_seconds
    epoch = float(np.median(seconds))
    return {"nproc": nproc, "threads": threads, "epoch_seconds": seconds, "median_epoch_seconds": epoch,
            "samples_per_second": samples_per_epoch(model, data) / epoch, "wall_seconds": wall,
            "outside_epochs_seconds": wall - sum(seconds), "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def main() -> None:
    ap = parser(__doc__, "sasrec")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="hyper-parameter key=value (every model)")
    args = ap.parse_args()
    src = shared_folder("amazon_beauty_sports")
    ws = workspace("amazon_beauty")
    if not (ws.root / "vendome.duckdb").exists():
        tables = load("amazon-seq", src / "Beauty.txt", attributes=src / "Beauty_item2attributes.json")
        print(ingest_tables(tables, ws, source="amazon-seq:Beauty"))
    data = load_dataset(ws)
    out: dict = {"dataset": "Amazon Beauty", "cores": os.cpu_count(), "models": {}}
    for name in args.models.split(","):
        params = DEFAULTS.get(name, {}) | {"epochs": args.epochs, "validate": False} | parse_settings(args.set)
        runs: dict[str, list[dict]] = {way: [] for way, _, _ in WAYS}
        for r in range(args.repeats):
            for way, nproc, threads in WAYS:
                run = measure(name, data, params, nproc, threads)
                runs[way].append(run)
                print(f"{name} [{r + 1}/{args.repeats}] {way}: {run['median_epoch_seconds']:.1f} s/epoch, "
                      f"{run['samples_per_second']:.0f} samples/s (load {run['load_before']:.1f} -> "
                      f"{run['load_after']:.1f})", flush=True)
        summary = {way: {"samples_per_second": float(np.median([x["samples_per_second"] for x in rs])),
                         "seconds_per_epoch": float(np.median([x["median_epoch_seconds"] for x in rs])),
                         "outside_epochs_seconds": float(np.median([x["outside_epochs_seconds"] for x in rs]))}
                   for way, rs in runs.items()}
        base = summary[WAYS[0][0]]["samples_per_second"]
        two_threads = summary[WAYS[2][0]]["samples_per_second"]
        two = summary[WAYS[1][0]]["samples_per_second"]
        out["models"][name] = {"params": params, "runs": runs, "summary": summary,
                               "ratio_2proc_vs_1proc_1thread": two / base,
                               "ratio_2proc_vs_1proc_2threads": two / two_threads}
        print(f"\n{name} on Amazon Beauty ({params}):\n")
        print("| way | samples/s | s/epoch | outside epochs (s) | vs 1 process x 1 thread |\n|---|---|---|---|---|")
        for way, s in summary.items():
            print(f"| {way} | {s['samples_per_second']:.0f} | {s['seconds_per_epoch']:.1f} | "
                  f"{s['outside_epochs_seconds']:.1f} | {s['samples_per_second'] / base:.2f}x |")
        print(f"\nthroughput ratio, 2 processes / 1 process: {two / base:.2f} (1 thread each), "
              f"{two / two_threads:.2f} (against 1 process with 2 threads)\n", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "distributed_beauty.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
