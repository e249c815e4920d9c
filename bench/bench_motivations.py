"""Motivation extraction quality and throughput per backend, on hand-labelled real reviews.

    .venv/bin/python bench/bench_motivations.py --backends rules,local:qwen2.5-0.5b,local:qwen2.5-1.5b \
        --workspace workspace
    options: --base-url URL --model NAME (adds an openai backend)   --threads N   --catalog-sample N

The labels are tests/motivations/fixtures/reviews_labelled.json: 65 reviews of ../shared/data/womens_clothing_reviews
labelled by hand (the `labels` set; the rule lexicon was written while labelling them, so its scores there are
in-sample) and 20 more labelled afterwards and never used to tune anything (the `holdout` set). Only ids and labels
are committed; the texts are read from ../shared at run time. Scores are micro precision / recall / F1 over
(polarity, label) pairs, as `vendome.motivations.scoring.score`.

Throughput is texts per minute of new extractions (no cache); with --workspace the cost of a full demo catalog run
(every product's copy) is measured on a sample of its descriptions and extrapolated. Each backend runs in this
process one after the other on the same texts. Writes bench/out/motivations_<backends>.json and .png.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import OUT, shared_folder
from vendome.motivations.extract import MotivationCache, extract_all, make_extractor
from vendome.motivations.scoring import score

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "motivations" / "fixtures" / "reviews_labelled.json"


def review_texts(ids: list[str]) -> dict[str, str]:
    df = pd.read_csv(shared_folder("womens_clothing_reviews") / "womens_clothing_ecommerce_reviews.csv")
    out = {}
    for key in ids:
        row = df.loc[int(key)]
        title = row["Title"] if isinstance(row["Title"], str) else ""
        out[key] = (f"{title}. " if title else "") + str(row["Review Text"])
    return out


def run_backend(spec: str, texts: dict[str, str], args) -> tuple[dict[str, tuple[list, list]], dict]:
    backend, _, model = spec.partition(":")
    start = time.perf_counter()
    extractor = make_extractor(backend, model=model or args.model, base_url=args.base_url, threads=args.threads)
    load_s = time.perf_counter() - start
    found, seconds, dropped, failed = {}, [], 0, 0
    cache = MotivationCache(OUT / "motivation_bench_cache") if args.resume else None
    for m in extract_all(list(texts.items()), extractor, cache=cache, progress=True, total=len(texts)):
        found[m.id] = (m.positive, m.negative)
        seconds.append(m.seconds)
        dropped += len(m.dropped)
        failed += bool(m.error)
    total = float(np.sum(seconds))
    info = {"backend": spec, "model": extractor.model, "load_s": round(load_s, 1), "texts": len(texts),
            "seconds": round(total, 1), "s_per_text_median": round(float(np.median(seconds)), 3),
            "texts_per_minute": round(60 * len(texts) / total, 1) if total else None, "dropped_labels": dropped,
            "failed_texts": failed}
    if args.workspace:
        info["catalog"] = catalog_cost(extractor, args)
    return found, info


def catalog_cost(extractor, args) -> dict:
    """Seconds per product copy on a sample of the demo catalog, and the whole catalog's minutes at that rate."""
    from vendome.data.store import load_dataset
    from vendome.workspace import Workspace

    products = load_dataset(Workspace(args.workspace)).products
    rng = np.random.default_rng(0)
    sample = products.iloc[rng.choice(len(products), min(args.catalog_sample, len(products)), replace=False)]
    items = [(str(r.product_id), str(r.description)) for r in sample.itertuples()]
    secs = [m.seconds for m in extract_all(items, extractor, cache=None, progress=False)]
    per = float(np.mean(secs))
    return {"products": len(products), "sample": len(items), "s_per_product": round(per, 3),
            "full_catalog_minutes": round(per * len(products) / 60, 1)}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["backend"] for r in results]
    width = 0.13
    bars = [(subset, metric) for subset in results[0]["scores"] for metric in ("precision", "recall", "f1")]
    for k, (subset, metric) in enumerate(bars):
        vals = [r["scores"][subset]["all"][metric] for r in results]
        ax.bar(np.arange(len(names)) + (k - (len(bars) - 1) / 2) * width, vals, width, label=f"{subset} {metric}",
               hatch="//" if subset == "holdout" else None)
    ax.set_xticks(np.arange(len(names)), names, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_title("Extraction quality (micro, polarity x label)")
    ax.legend(fontsize=7, ncol=2)
    rates = [r["texts_per_minute"] or 0 for r in results]
    bx.bar(names, rates, color="grey")
    bx.set_yscale("log")
    bx.set_title("Texts per minute (log scale)")
    bx.tick_params(axis="x", rotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="rules,local:qwen2.5-0.5b")
    ap.add_argument("--base-url", default=None, help="an OpenAI-compatible server (adds backend openai)")
    ap.add_argument("--model", default=None, help="the server's model name")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", default=None, help="the demo workspace: measure the catalog cost too")
    ap.add_argument("--catalog-sample", type=int, default=20)
    ap.add_argument("--only", choices=["labels", "holdout"], help="score one set (a quicker throughput run)")
    ap.add_argument("--resume", action="store_true", help="keep each answer (with its seconds) in "
                    "bench/out/motivation_bench_cache, so a run cut short continues where it stopped")
    args = ap.parse_args()
    fixture = json.loads(FIXTURE.read_text())
    gold = {"labels": fixture["labels"], "holdout": fixture["holdout"]["labels"]}
    if args.only:
        gold = {args.only: gold[args.only]}
    texts = review_texts([k for subset in gold.values() for k in subset])
    specs = [s for s in args.backends.split(",") if s] + (["openai"] if args.base_url else [])
    results = []
    for spec in specs:
        found, info = run_backend(spec, texts, args)
        info["scores"] = {subset: score(found, labels) for subset, labels in gold.items()}
        info["answers"] = {k: {"positive": p, "negative": n} for k, (p, n) in found.items()}
        results.append(info)
        scores = " | ".join(f"{subset} P {v['all']['precision']:.3f} R {v['all']['recall']:.3f} F1 {v['all']['f1']:.3f}"
                            for subset, v in info["scores"].items())
        print(f"{spec:<24} {scores} | {info['texts_per_minute']} texts/min"
              + (f" | catalog {info['catalog']['full_catalog_minutes']} min" if "catalog" in info else ""), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.processor()}",
              "threads": args.threads, "results": results}
    stem = "motivations_" + "_".join(r["backend"].replace(":", "-") for r in results)
    (OUT / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(results, OUT / f"{stem}.png")
    print(f"wrote {OUT / stem}.json and .png")


if __name__ == "__main__":
    main()
