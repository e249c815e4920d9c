"""MCLMR against its base models, with its ablations and behavior-weighted ALS, side by side on one split.

    .venv/bin/python bench/bench_mclmr.py --dataset tmall --bases mblightgcn,mbmf --seeds 0,1,2
    .venv/bin/python bench/bench_mclmr.py --dataset tmall --bases mbmf --seeds 0,1,2 \
        --variants full,no-adjustment,no-causal,no-moe,no-evidence,no-cl
    .venv/bin/python bench/bench_mclmr.py --dataset taobao --seeds 0,1,2
    .venv/bin/python bench/bench_mclmr.py --dataset demo --workspace bench/out/ws_demo --seeds 0,1,2
    options: --set key=value (every multi-behavior model, e.g. --set threads=2)

Datasets and protocols: tmall = the MB-CGCN release (views, carts and training purchases in, each user's buy_test
purchase out, her training purchases excluded, all 11,953 items ranked: the `given` protocol); taobao = the
UserBehavior sample (pv, cart, fav, buy; temporal split, last 1 day, purchases as targets); demo = the demo
boutique (temporal, last 30 days). Every model is fitted per seed and evaluated through `recommend`.

Reported: HR@10 / NDCG@10 per model (mean of the seeds), paired Wilcoxon on per-user NDCG@10 (averaged over seeds)
for mclmr:<base> vs <base>, mclmr:<base> vs als and each ablation vs the full model, and the training seconds per
epoch of every model. Writes bench/out/mclmr_<dataset>_<bases>[_ablations].json and a .png of NDCG@10 per model
and seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import OUT, print_tables, seeds, shared_folder, workspace
from vendome.evaluate.run import run_protocol
from vendome.models import make_model
from vendome.pipeline import parse_settings, peak_memory_mb, training_data

VARIANTS = {"full": {}, "no-adjustment": {"adjustment": "observed"}, "no-causal": {"adjustment": "none"},
            "no-moe": {"moe": False}, "no-evidence": {"evidence": False}, "no-cl": {"lambda_cl": 0.0}}
PROTOCOLS = {"tmall": ("given", 30.0), "taobao": ("temporal", 1.0), "demo": ("temporal", 30.0)}
DEFAULTS = {"epochs": 200, "patience": 5, "threads": 1}


def load(args):
    from vendome.data.ingest import ingest_tables
    from vendome.data.loaders import load as load_format
    from vendome.workspace import Workspace

    if args.dataset == "demo":
        return training_data(Workspace(args.workspace))
    folder = {"tmall": ("tmall_mbcgcn_view_cart_buy", "mbgcn"), "taobao": ("taobao_userbehavior_sample", "taobao")}
    name, fmt = folder[args.dataset]
    ws = workspace(args.dataset)
    if not (ws.root / "vendome.duckdb").exists():
        print(ingest_tables(load_format(fmt, shared_folder(name)), ws, source=f"{fmt}:{args.dataset}"))
    return training_data(ws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(PROTOCOLS), default="tmall")
    ap.add_argument("--workspace", default="workspace", help="the demo workspace (--dataset demo)")
    ap.add_argument("--bases", default="mblightgcn,mbmf")
    ap.add_argument("--variants", default="full", help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", action="append", default=[], help="key=value for every multi-behavior model")
    ap.add_argument("--no-als", action="store_true", help="leave behavior-weighted ALS out")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the chart of a JSON this script wrote")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        saved["models"] = {n: e for n, e in saved["models"].items() if not e.get("error")}
        return plot(saved, args.dataset, args.replot.replace(".json", ".png"))
    t0 = time.perf_counter()
    data = load(args)
    settings = {**DEFAULTS, **parse_settings(args.set)}
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    specs, pairs = ({} if args.no_als else {"als": {}}), []
    for base in [b for b in args.bases.split(",") if b]:
        specs[base] = dict(settings)
        for v in variants:
            name = f"mclmr:{base}" + ("" if v == "full" else f" {v}")
            specs[name] = {"model": f"mclmr:{base}", **settings, **VARIANTS[v]}
        pairs.append((f"mclmr:{base}", base))
        if not args.no_als:
            pairs.append((f"mclmr:{base}", "als"))
        pairs += [(f"mclmr:{base}", f"mclmr:{base} {v}") for v in variants if v != "full"]
    fitted: dict[str, list] = {}

    def make(name: str, **params):                 # keeps every fitted model for its training curve
        model = make_model(name, **params)
        fitted.setdefault(name + json.dumps({k: str(v) for k, v in sorted(params.items())}), []).append(model)
        return model

    protocol, days = PROTOCOLS[args.dataset]
    report = run_protocol(data, specs, protocol, seeds=seeds(args.seeds), test_days=days, pairs=pairs, make=make)
    epochs = {}
    for models in fitted.values():
        for m in models:
            h = getattr(m, "training_", None)        # the training curve (history_ is her events)
            if h is not None:
                key = m.name
                epochs.setdefault(key, []).append((len(h.epoch_seconds), float(np.median(h.epoch_seconds)),
                                                   h.best_epoch + 1))
    print(f"\n{args.dataset}: {protocol} protocol, seeds {args.seeds}, settings {settings}\n")
    print_tables(report)
    print("\nepochs run, median seconds per epoch, best epoch (per fit, in order):")
    for key, runs in epochs.items():
        print(f"  {key}: " + "; ".join(f"{n} epochs, {s:.1f} s/epoch, best {b}" for n, s, b in runs))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s, peak memory {peak_memory_mb():.0f} MB")
    stem = f"mclmr_{args.dataset}_{args.bases.replace(',', '_')}" + ("" if args.variants == "full" else "_ablations")
    out = OUT / f"{stem}.json"
    out.write_text(json.dumps({"models": {n: {k: e.get(k) for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20",
                                                                       "fit_seconds", "seeds", "error")}
                                          for n, e in report["models"].items()},
                               "pairs": report["significance"]["pairs"], "epochs": epochs,
                               "settings": settings, "seeds": args.seeds}, indent=1, default=str))
    plot(report, args.dataset, OUT / f"{stem}.png")
    print(f"wrote {out} and {OUT / f'{stem}.png'}")


def plot(report: dict, dataset: str, path) -> None:
    """NDCG@10 per model: a bar at the mean of the seeds, a dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, e) for n, e in report["models"].items() if not e.get("error")]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.6))
    for x, (name, e) in enumerate(rows):
        colour = "#8c6d3f" if name.startswith("mclmr") else "#9aa5b1"
        ax.bar(x, e["ndcg@10"], color=colour, width=0.7)
        seeds = list(e["seeds"].values())
        ax.scatter([x] * len(seeds), seeds, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(rows)), [n.replace(" ", "\n") for n, _ in rows], fontsize=8)
    ax.set_ylabel("NDCG@10 (full ranking)")
    ax.set_title(f"{dataset}: MCLMR, its bases and ALS (bars: mean of seeds; dots: seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
