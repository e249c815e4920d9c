"""SASRec on the Amazon S3-Rec files, leave-one-out, full ranking: our `sasrec` against the published row and
against RecBole 1.2.1's SASRec run side by side on the same machine.

    .venv/bin/python bench/bench_sasrec.py --dataset Beauty --seeds 0,1,2 [--recbole-epochs 1] [--set key=value]

1. Imports the file through ingestion into bench/out/ws_amazon_<dataset> (as `vendome import amazon-seq`).
2. Fits `sasrec` per seed (early stopping on the held-out last step of each training journey) and evaluates
   through `recommend` on the test items: mean and std over seeds, against the published SASRec row.
3. Speed in the same run: one epoch of ours at RecBole's batch size (256) and at ours, then
   `../shared/reference/recbole/run.sh` for `--recbole-epochs` epochs (RecBole in its own virtual environment,
   never a dependency of the product); prints seconds per epoch and the ratio. An epoch means the same thing in
   both: every (prefix -> next item) transition of the training journeys once. RecBole makes each prefix its own
   sample (a batch = 256 prefixes); we train all positions of a journey at once (a batch = 256 journeys).
Writes bench/out/sasrec_<dataset>.json.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import numpy as np

from common import HERE, OUT, parser, seeds, shared_folder, workspace
from vendome.data.ingest import ingest_tables
from vendome.data.loaders import load
from vendome.data.splits import split
from vendome.data.store import load_dataset
from vendome.evaluate.run import evaluate
from vendome.models import make_model
from vendome.pipeline import parse_settings, peak_memory_mb

PUBLISHED = {"Beauty": {"hr@10": 0.0605, "ndcg@10": 0.0318},
             "Sports_and_Outdoors": {"hr@10": 0.0350, "ndcg@10": 0.0192}}
DEFAULTS = {"batch_size": 64, "patience": 5, "epochs": 200, "threads": 2}
RECBOLE = HERE.parent.parent / "shared" / "reference" / "recbole" / "run.sh"


def main() -> None:
    ap = parser(__doc__, "sasrec")
    ap.add_argument("--dataset", default="Beauty", choices=["Beauty", "Sports_and_Outdoors"])
    ap.add_argument("--recbole-epochs", type=int, default=1, help="0 skips RecBole")
    ap.add_argument("--set", action="append", default=[], help="sasrec hyper-parameter key=value")
    args = ap.parse_args()
    src = shared_folder("amazon_beauty_sports")
    ws = workspace(f"amazon_{args.dataset.lower()}")
    if not (ws.root / "vendome.duckdb").exists():
        tables = load("amazon-seq", src / f"{args.dataset}.txt",
                      attributes=src / f"{args.dataset}_item2attributes.json")
        print(ingest_tables(tables, ws, source=f"amazon-seq:{args.dataset}"))
    data = load_dataset(ws)
    sp = split(data, "loo")
    params = DEFAULTS | parse_settings(args.set)
    out: dict = {"dataset": args.dataset, "params": params, "published": PUBLISHED[args.dataset]}

    fitted, fit_info = {}, {}
    path = OUT / f"sasrec_{args.dataset.lower()}.json"
    for seed in seeds(args.seeds):
        t0 = time.perf_counter()
        model = make_model("sasrec", seed=seed, progress=True, **params).fit(sp.train)
        h = model.history_
        one = evaluate(sp, {"sasrec": model}, progress=False)["models"]["sasrec"]
        fit_info[seed] = {"fit_s": round(time.perf_counter() - t0, 1), "best_epoch": h.best_epoch + 1,
                          "epochs": len(h.losses), "stopped": h.stopped,
                          "s_per_epoch": round(float(np.mean(h.epoch_seconds)), 2),
                          "hr@10": round(one["hr@10"], 4), "ndcg@10": round(one["ndcg@10"], 4)}
        print(f"seed {seed}: {fit_info[seed]}", flush=True)
        fitted[seed] = model
        path.write_text(json.dumps(out | {"fit": fit_info}, indent=2, default=str))  # survives an interruption
    rep = evaluate(sp, {"sasrec": fitted}, progress=False)
    m = rep["models"]["sasrec"]
    out["ours"] = {k: m[k] for k in ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20")}
    out["ours_std"] = m.get("std", {})
    out["ours_per_seed"] = m.get("seeds", {})
    out["fit"] = fit_info
    ref = PUBLISHED[args.dataset]
    print(f"\nsasrec, {len(fitted)} seed(s): HR@10 {m['hr@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}  "
          f"HR@20 {m['hr@20']:.4f}  NDCG@20 {m['ndcg@20']:.4f}")
    print(f"published SASRec: HR@10 {ref['hr@10']:.4f} ({m['hr@10'] / ref['hr@10'] - 1:+.1%})  "
          f"NDCG@10 {ref['ndcg@10']:.4f} ({m['ndcg@10'] / ref['ndcg@10'] - 1:+.1%})")

    if args.recbole_epochs > 0:
        out["speed"] = speed(sp, params, src / f"{args.dataset}.txt", args.recbole_epochs)
    out["peak_memory_mb"] = round(peak_memory_mb())
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {path}")


def speed(sp, params: dict, seq_file, recbole_epochs: int) -> dict:
    """Seconds per epoch, ours (at RecBole's batch size and at ours) and RecBole's, measured one after the other."""
    res = {}
    for batch in sorted({256, int(params["batch_size"])}):
        p = params | {"epochs": 1, "batch_size": batch, "validate": False}
        model = make_model("sasrec", progress=False, **p).fit(sp.train)
        res[f"ours_s_per_epoch_batch{batch}"] = round(model.history_.epoch_seconds[0], 2)
    work = OUT / "recbole"
    t0 = time.perf_counter()
    run = subprocess.run(["bash", str(RECBOLE), str(seq_file), str(work), str(recbole_epochs)],
                         capture_output=True, text=True)
    log = run.stdout + run.stderr
    times = [float(x) for x in re.findall(r"epoch \d+ training \[time: ([\d.]+)s", log)]
    res["recbole_wall_s"] = round(time.perf_counter() - t0, 1)
    if run.returncode != 0 or not times:
        res["recbole_error"] = log[-2000:]
        print(f"RecBole failed (exit {run.returncode}); see the JSON for its log tail")
        return res
    res["recbole_s_per_epoch_batch256"] = round(float(np.mean(times)), 2)
    found = re.search(r"test result: OrderedDict\((.*?)\)\n", log)
    if found:
        res["recbole_test_after_epochs"] = {"epochs": recbole_epochs, "result": found.group(1)}
    ours = res["ours_s_per_epoch_batch256"]
    own = res.get(f"ours_s_per_epoch_batch{params['batch_size']}")
    res["ratio_ours_over_recbole_batch256"] = round(ours / res["recbole_s_per_epoch_batch256"], 3)
    print(f"seconds per epoch, batch 256: ours {ours:.1f}, RecBole {res['recbole_s_per_epoch_batch256']:.1f} "
          f"(ratio {res['ratio_ours_over_recbole_batch256']:.3f}); ours at batch {params['batch_size']}: "
          f"{own} s")
    return res


if __name__ == "__main__":
    main()
