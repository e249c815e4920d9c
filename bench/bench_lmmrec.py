"""LMMRec against its base models on the demo boutique, with the motivation-noise curve, side by side on one split.

    .venv/bin/vendome generate bench/out/demo_texts_export && \
        .venv/bin/vendome ingest bench/out/demo_texts_export -w bench/out/ws_demo_texts
    .venv/bin/python bench/bench_lmmrec.py --workspace bench/out/ws_demo_texts --bases mbmf,mblightgcn --seeds 0,1,2
    .venv/bin/python bench/bench_lmmrec.py --workspace bench/out/ws_demo_texts --bases mbmf --seeds 0,1,2 \
        --noise 0.2,0.4
    options: --set key=value (every model, e.g. --set extractor=local --set extractor_model=qwen2.5-0.5b)

The demo boutique (with its reviews and client notes) under the temporal protocol (last 30 days, purchases as
targets); the split keeps only the texts written before the cut-off. Every model is fitted per seed and evaluated
through `recommend`; paired Wilcoxon on per-user NDCG@10 (averaged over seeds) for lmmrec:<base> vs <base> and each
noisy variant vs the clean one. Motivations are extracted once (rules by default) and cached under
bench/out/motivation_cache. Writes bench/out/lmmrec_demo_<bases>.json and a .png (NDCG@10 per model and seed, and
the noise curve).
"""

from __future__ import annotations

import argparse
import json
import time

from common import OUT, print_tables, seeds
from vendome.data.store import load_dataset
from vendome.evaluate.run import run_protocol
from vendome.pipeline import parse_settings, peak_memory_mb

DEFAULTS = {"epochs": 200, "patience": 5, "threads": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="bench/out/ws_demo_texts")
    ap.add_argument("--bases", default="mbmf,mblightgcn")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--noise", default="", help="comma list of corrupted shares (0.2,0.4) for the noise curve")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--test-days", type=float, default=30.0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = load_dataset(args.workspace)
    if data.texts.empty:
        raise SystemExit(f"{args.workspace} holds no reviews or client notes: generate the demo again (see --help)")
    settings = {**DEFAULTS, **parse_settings(args.set)}
    plug = {**settings, "motivation_cache": str(OUT / "motivation_cache")}
    noises = [float(x) for x in args.noise.split(",") if x]
    specs, pairs = {}, []
    for base in [b for b in args.bases.split(",") if b]:
        specs[base] = {k: v for k, v in settings.items() if k not in ("extractor", "extractor_model", "profile",
                                                                      "intent_days")}
        specs[f"lmmrec:{base}"] = {"model": f"lmmrec:{base}", **plug}
        pairs.append((f"lmmrec:{base}", base))
        for noise in noises:
            name = f"lmmrec:{base} noise {noise:.0%}"
            specs[name] = {"model": f"lmmrec:{base}", **plug, "noise": noise}
            pairs.append((f"lmmrec:{base}", name))
    report = run_protocol(data, specs, "temporal", seeds=seeds(args.seeds), test_days=args.test_days, pairs=pairs)
    print(f"\ndemo boutique with texts: {len(data.texts)} texts, temporal split, seeds {args.seeds}\n")
    print_tables(report, ("hr@10", "ndcg@10", "ndcg@20"))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s, peak memory {peak_memory_mb():.0f} MB")
    stem = f"lmmrec_demo_{args.bases.replace(',', '_')}" + ("_noise" if noises else "")
    out = OUT / f"{stem}.json"
    out.write_text(json.dumps({"models": {n: {k: e.get(k) for k in ("hr@10", "ndcg@10", "ndcg@20", "fit_seconds",
                                                                       "seeds", "error")}
                                          for n, e in report["models"].items()},
                               "pairs": report["significance"]["pairs"], "settings": settings, "seeds": args.seeds,
                               "texts": len(data.texts)}, indent=1, default=str))
    plot(report, noises, OUT / f"{stem}.png")
    print(f"wrote {out} and {OUT / f'{stem}.png'}")


def plot(report: dict, noises: list[float], path) -> None:
    """NDCG@10 per model (bars: mean, dots: seeds); with noise, the curve of NDCG@10 against the corrupted share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, e) for n, e in report["models"].items() if not e.get("error")]
    fig, axes = plt.subplots(1, 2 if noises else 1, figsize=(11 if noises else 7, 3.6), squeeze=False)
    ax = axes[0, 0]
    for x, (name, e) in enumerate(rows):
        ax.bar(x, e["ndcg@10"], color="#8c6d3f" if name.startswith("lmmrec") else "#9aa5b1", width=0.7)
        ax.scatter([x] * len(e["seeds"]), list(e["seeds"].values()), color="black", s=10, zorder=3)
    ax.set_xticks(range(len(rows)), [n.replace(" ", "\n", 1) for n, _ in rows], fontsize=8)
    ax.set_ylabel("NDCG@10 (full ranking)")
    ax.set_title("demo boutique: LMMRec and its bases", fontsize=10)
    if noises:
        bx = axes[0, 1]
        for base in sorted({n.split(" ")[0] for n, _ in rows if n.startswith("lmmrec")}):
            xs = [0.0] + noises
            ys = [report["models"][base]["ndcg@10"]] + [report["models"][f"{base} noise {v:.0%}"]["ndcg@10"]
                                                         for v in noises]
            bx.plot([100 * x for x in xs], ys, marker="o", label=base)
            plain = base.split(":")[1]
            if plain in report["models"]:
                bx.axhline(report["models"][plain]["ndcg@10"], ls="--", color="grey", lw=1, label=f"{plain} (no texts)")
        bx.set_xlabel("motivations corrupted (%)")
        bx.set_ylabel("NDCG@10")
        bx.legend(fontsize=8)
        bx.set_title("robustness to noisy motivations", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
