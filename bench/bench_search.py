"""Composed search on the demo boutique: the composer against three baselines, hard constraints, latency.

    .venv/bin/python bench/bench_search.py --workspace bench/out/ws_demo --export bench/out/demo_export
    .venv/bin/python bench/bench_search.py ... --scaled bench/out/ws_100k       # adds the fast path at 100k products

The queries come from the generator's hidden truth, which no model reads: an anchor piece and a change of material,
stone or colour ("like this, but in rose gold"); the correct targets are the pieces of the anchor's subcategory with
the anchor's motif (drawn in the picture only, never written) that carry the new value and keep the rest. A fifth of
the queries add a negation ("..., no pearls") and a fifth a price limit ("..., under 5,000"): hard constraints that
every result must satisfy. Anchors are split by design (a set of matching pieces stays together): 70% train the
composer, 10% stop it early and tune the re-ranking, the queries' anchors are the other 20%, and the queries are
phrased with templates the composer never trained on.

Every method answers through `ComposedSearch.search` (the path the CLI and the API use) with its composer swapped
in: image-only (the anchor), text-only (the words), sum (anchor + words) and the gated-FiLM composer, then the full
pipeline (composer + tuned re-ranking). Recall@K is the share of a query's targets in the top K, full ranking over
the catalog within the hard constraints; hit@10 is whether any target is in the top 10. Latency is the fast path
end to end (parse, text encoder, composer, faiss, guard, re-rank), against an exact numpy scan of the catalog for
the same queries measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from tqdm import tqdm

from vendome.pipeline import training_data
from vendome.search.composer import ImageOnly, Sum, TextOnly
from vendome.search.constraints import satisfies
from vendome.search.engine import DEFAULT_WEIGHTS, ComposedSearch
from vendome.search.pairs import EVAL_TEMPLATES, attribute_changes, phrase, plural
from vendome.workspace import Workspace

KS = (10, 50)


def design_split(products: pd.DataFrame, set_ids: pd.Series, seed: int) -> np.ndarray:
    """'train' / 'val' / 'test' per product, by design (the pieces of one set share a fate)."""
    key = np.where(set_ids.fillna("").astype(str) == "", products["product_id"].astype(str), set_ids.astype(str))
    designs = np.unique(key)
    r = np.random.default_rng(seed).random(len(designs))
    fate = dict(zip(designs, np.where(r < 0.7, "train", np.where(r < 0.8, "val", "test")), strict=True))
    return np.array([fate[k] for k in key])


def nice_limit(x: float) -> int:
    """A price a client would say, at or above x: 1,800 -> 2,000; 23,400 -> 25,000."""
    steps = np.array([1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10])
    mag = 10 ** np.floor(np.log10(max(x, 1)))
    return int(steps[np.searchsorted(steps * mag, x)] * mag)


def build_queries(products: pd.DataFrame, motif: pd.Series, split: np.ndarray, n: int, seed: int) -> list[dict]:
    """Test queries: anchor, words, targets, and the hard constraints the words carry (negation, price)."""
    p = products.assign(motif=motif.to_numpy())
    changes = [c for c in attribute_changes(p, group=("subcategory", "motif")) if split[c.anchor] == "test"]
    rng = np.random.default_rng(seed)
    picked = [changes[i] for i in rng.choice(len(changes), size=min(n, len(changes)), replace=False)]
    stones = p["stone_type"].astype(str).str.lower().to_numpy()
    materials = p["material"].astype(str).str.lower().to_numpy()
    price = p["price"].to_numpy(float)
    sub = p["subcategory"].astype(str).to_numpy()
    out = []
    for c in picked:
        text = phrase(c.attribute, c.value, rng, EVAL_TEMPLATES)
        targets = np.array(c.targets)
        kind, expect = "change", None
        r = rng.random()
        if r < 0.2:      # exclude a value no target has but a neighbour of the subcategory does
            kind = "negation"
            same = sub == sub[c.anchor]
            if c.attribute == "stone_type":
                pool = sorted(set(materials[same]) - set(materials[targets]))
                attr, word = "material", None
            else:
                pool = sorted(set(stones[same]) - set(stones[targets]) - {"none", "nan"})
                attr = "stone_type"
            if not pool:
                kind = "change"
            else:
                value = pool[int(rng.integers(len(pool)))]
                word = plural(value) if attr == "stone_type" else value
                text = f"{text}, {'no' if attr == 'stone_type' else 'not in'} {word}"
                expect = {"attribute": attr, "op": "not_in", "value": value}
        elif r < 0.4:
            kind = "price"
            limit = nice_limit(price[targets].max() * 1.05)
            text = f"{text}, under {limit:,}"
            expect = {"attribute": "price", "op": "lt", "value": float(limit)}
        out.append({"anchor": int(c.anchor), "text": text, "targets": targets.tolist(), "kind": kind,
                    "attribute": c.attribute, "value": c.value, "expect": expect})
    return out


def parsed_as_expected(constraints: list[dict], expect: dict | None) -> bool:
    if expect is None:
        return True
    for c in constraints:
        if c["attribute"] != expect["attribute"] or c["op"] != expect["op"] or not c["hard"]:
            continue
        value = c["value"]
        if expect["op"] == "not_in" and expect["value"] in [str(v).lower() for v in value]:
            return True
        if expect["op"] == "lt" and float(value) == expect["value"]:
            return True
    return False


def run_method(engine: ComposedSearch, queries: list[dict], records: list[dict], k: int) -> dict:
    """Per-query recall@K, hit@10, hard-constraint checks and parse checks through engine.search."""
    rec = {f"recall@{kk}": [] for kk in KS}
    hits, checked, broken, parsed_ok = [], 0, 0, 0
    for q in queries:
        out = engine.search(q["text"], anchor=engine.ids_[q["anchor"]], k=k)
        rows = [engine.row_of_[r["product_id"]] for r in out["results"]]
        targets = set(q["targets"])
        for kk in KS:
            rec[f"recall@{kk}"].append(len(set(rows[:kk]) & targets) / len(targets))
        hits.append(float(bool(set(rows[:10]) & targets)))
        hard = [c for c in out["constraints"] if c["hard"]]
        for r in rows:
            for c in hard:
                checked += 1
                broken += not satisfies(records[r], _constraint(c))
        parsed_ok += parsed_as_expected(out["constraints"], q["expect"])
    return {**{m: float(np.mean(v)) for m, v in rec.items()}, "hit@10": float(np.mean(hits)),
            "per_query_recall@10": rec["recall@10"], "hard_checks": checked, "hard_violations": broken,
            "parsed_as_expected": parsed_ok / len(queries)}


def _constraint(d: dict):
    from vendome.search.query import Constraint

    value = tuple(d["value"]) if isinstance(d["value"], list) else d["value"]
    return Constraint(d["attribute"], d["op"], value, d["hard"], d.get("source", ""))


def latency(engine: ComposedSearch, queries: list[dict], n: int, seed: int) -> dict:
    """p50/p99 of the fast path (word cache cleared before each query, so the text encoder runs every time) and of
    an exact numpy scan of the same query vectors over the catalog (the reference)."""
    rng = np.random.default_rng(seed)
    picks = [queries[i] for i in rng.integers(0, len(queries), n)]
    anchors = [engine.ids_[rng.integers(len(engine.ids_))] for _ in picks]   # any piece of this catalog
    engine.search(picks[0]["text"], anchor=anchors[0])                          # load the encoder
    fast, scan = [], []
    z = engine.items_
    for q, a in tqdm(list(zip(picks, anchors, strict=True)), desc="latency", leave=False):
        engine._word_cache.clear()
        t0 = time.perf_counter()
        engine.search(q["text"], anchor=a, k=10)
        fast.append(time.perf_counter() - t0)
        v = z[engine.row_of_[a]]
        t0 = time.perf_counter()
        s = z @ v
        np.argpartition(-s, 50)[:50]
        scan.append(time.perf_counter() - t0)
    fast_ms, scan_ms = np.array(fast) * 1e3, np.array(scan) * 1e3
    return {"n_items": len(engine.ids_), "queries": n, "index": engine.index_.kind_,
            "p50_ms": float(np.percentile(fast_ms, 50)), "p99_ms": float(np.percentile(fast_ms, 99)),
            "scan_p50_ms": float(np.percentile(scan_ms, 50)), "scan_p99_ms": float(np.percentile(scan_ms, 99)),
            "ratio_p50_vs_scan": float(np.percentile(fast_ms, 50) / np.percentile(scan_ms, 50))}


def words_only(engine: ComposedSearch, queries: list[dict], n: int, seed: int) -> dict:
    """Queries with no anchor and no subcategory ("in rose gold, no diamonds"): the approximate index answers them
    (a selective filter is an exact scan instead). p50/p99 of the fast path, and the overlap of its top 10 with the
    same engine over an exact index (the ANN's recall), counted in designs: the grown catalog's size variants share
    their parent's vectors, so which of 31 tied variants comes first is arbitrary."""
    from vendome.search.index import VectorIndex

    rng = np.random.default_rng(seed + 7)
    texts = [queries[i]["text"].split("but ", 1)[-1] for i in rng.integers(0, len(queries), n)]
    exact = copy.copy(engine)
    exact.index_ = VectorIndex("flat").fit(engine.items_)
    fast, overlap = [], []
    for text in tqdm(texts, desc="words only", leave=False):
        engine._word_cache.clear()
        t0 = time.perf_counter()
        got = engine.search(text, k=10)["results"]
        fast.append(time.perf_counter() - t0)
        truth = exact.search(text, k=10)["results"]
        overlap.append(len({design(r["product_id"]) for r in got} & {design(r["product_id"]) for r in truth})
                       / max(len({design(r["product_id"]) for r in truth}), 1))
    ms = np.array(fast) * 1e3
    return {"queries": n, "index": engine.index_.kind_, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "top10_overlap_with_exact": float(np.mean(overlap))}


def design(product_id: str) -> str:
    """The demo design a size variant of bench/scale_catalog.py belongs to (P00001-S03 -> P00001)."""
    return product_id.split("-S", 1)[0]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(names))
    for j, m in enumerate(("recall@10", "recall@50", "hit@10")):
        ax.bar(x + (j - 1) * 0.27, [results[n][m] for n in names], 0.27, label=m)
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_title("Composed retrieval on the demo boutique (held-out anchors)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="bench/out/ws_demo")
    ap.add_argument("--export", default=None, help="the generator's folder with truth_products.csv "
                    "(default: WS/export, where `vendome demo` puts it)")
    ap.add_argument("--queries", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--scaled", default=None, help="a grown workspace (bench/scale_catalog.py) for the 100k latency")
    ap.add_argument("--out", default="bench/out/search")
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    export = Path(args.export) if args.export else ws.root / "export"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = training_data(ws, progress=False)
    truth = pd.read_csv(export / "truth_products.csv", dtype={"set_id": str}).set_index("product_id")
    ids = data.products["product_id"].astype(str)
    split = design_split(data.products, truth["set_id"].reindex(ids).reset_index(drop=True), args.seed)
    queries = build_queries(data.products, truth["motif"].reindex(ids).reset_index(drop=True), split, args.queries,
                            args.seed + 1)
    print(f"{len(queries)} test queries on {len(ids)} products "
          f"({pd.Series([q['kind'] for q in queries]).value_counts().to_dict()}); fitting the engine ...")
    t0 = time.perf_counter()
    engine = ComposedSearch(seed=args.seed).fit(data, train_rows=np.flatnonzero(split == "train"),
                                                val_rows=np.flatnonzero(split == "val"))
    fit_s = time.perf_counter() - t0
    print(f"fitted in {fit_s:.0f} s: {engine.n_train_changes_} training changes, composer stopped after "
          f"{len(engine.composer_.validation_) - 1} epochs, weights {engine.weights_}")
    records = engine.products_.to_dict("records")
    methods = {}
    for name, composer in (("image-only", ImageOnly()), ("text-only", TextOnly()), ("sum", Sum()),
                           ("composer", engine.composer_), ("composer + re-rank", engine.composer_)):
        e = copy.copy(engine)
        e.composer_ = composer
        e.weights_ = dict(DEFAULT_WEIGHTS) if name != "composer + re-rank" else engine.weights_
        methods[name] = run_method(e, queries, records, k=max(KS))
        m = methods[name]
        print(f"{name:>20}: recall@10 {m['recall@10']:.3f}  recall@50 {m['recall@50']:.3f}  hit@10 "
              f"{m['hit@10']:.3f}  hard violations {m['hard_violations']}/{m['hard_checks']}")
    base = np.array(methods["composer"]["per_query_recall@10"])
    tests = {}
    for name in ("image-only", "text-only", "sum"):
        other = np.array(methods[name]["per_query_recall@10"])
        diff = base - other
        tests[name] = {"mean_gain": float(diff.mean()),
                       "p_wilcoxon": float(wilcoxon(base, other).pvalue) if np.any(diff) else 1.0}
        print(f"composer vs {name}: recall@10 {base.mean():.3f} vs {other.mean():.3f}, "
              f"p = {tests[name]['p_wilcoxon']:.2g}")
    parse_rate = {k: float(np.mean([parsed_as_expected(
        engine.search(q["text"], anchor=engine.ids_[q["anchor"]], k=1)["constraints"], q["expect"])
        for q in queries if q["kind"] == k])) for k in ("negation", "price")}
    print(f"constraints parsed as written: {parse_rate}")
    lat = {"demo": latency(engine, queries, args.latency_queries, args.seed)}
    print(f"fast path at {lat['demo']['n_items']:,} products: p50 {lat['demo']['p50_ms']:.1f} ms, "
          f"p99 {lat['demo']['p99_ms']:.1f} ms ({lat['demo']['ratio_p50_vs_scan']:.1f}x an exact scan's p50)")
    if args.scaled:
        big = training_data(Workspace(args.scaled), progress=False)
        t0 = time.perf_counter()
        scaled = copy.copy(engine).reindex(big)
        lat["scaled"] = latency(scaled, queries, args.latency_queries, args.seed)
        lat["scaled"]["reindex_seconds"] = time.perf_counter() - t0
        s = lat["scaled"]
        print(f"fast path at {s['n_items']:,} products ({s['index']} over {len(scaled.index_.vectors_):,} distinct "
              f"vectors): p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms ({s['ratio_p50_vs_scan']:.2f}x an exact "
              f"scan's p50; index built in {s['reindex_seconds']:.0f} s)")
        # The same catalog with every SKU's vector its own (as if each size had its own photo shoot): 100,000
        # distinct vectors, so the approximate index serves, and its answers are compared with an exact index.
        from vendome.search.index import VectorIndex, normalise

        jittered = copy.copy(scaled)
        noise = np.random.default_rng(args.seed).normal(0.0, 0.01, scaled.items_.shape).astype(np.float32)
        jittered.items_ = normalise(scaled.items_ + noise)
        t0 = time.perf_counter()
        jittered.index_ = VectorIndex().fit(jittered.items_)
        built = time.perf_counter() - t0
        lat["distinct"] = latency(jittered, queries, args.latency_queries, args.seed)
        lat["distinct"]["index_seconds"] = built
        lat["distinct_words_only"] = words_only(jittered, queries, args.latency_queries, args.seed)
        for key in ("distinct", "distinct_words_only"):
            d = lat[key]
            print(f"{key} ({d['index']}, {len(jittered.index_.vectors_):,} distinct vectors): p50 {d['p50_ms']:.1f} "
                  f"ms, p99 {d['p99_ms']:.1f} ms" + (f", top-10 designs shared with an exact index "
                                                    f"{d['top10_overlap_with_exact']:.3f}" if "top10_overlap_with_exact"
                                                    in d else ""))
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.processor() or ''}",
              "command": " ".join(sys.argv), "queries": len(queries), "fit_seconds": fit_s,
              "weights": engine.weights_, "methods": {k: {m: v for m, v in r.items() if not m.startswith("per_")}
                                                      for k, r in methods.items()},
              "composer_vs": tests, "parse_rate": parse_rate, "latency": lat}
    (out / "search.json").write_text(json.dumps(report, indent=1))
    plot({k: v for k, v in methods.items()}, out / "search_recall.png")
    print(f"written: {out / 'search.json'}, {out / 'search_recall.png'}")


if __name__ == "__main__":
    main()
