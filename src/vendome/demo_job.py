"""The demo boutique end to end: generate, ingest, embed, evaluate every model side by side, train for serving.

Prints a comparison table, the checks the foundation promises (hybrid vs its components, content vs popularity on
new products), the run time and peak memory, and writes the JSON and HTML reports under WS/reports.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from vendome.data.demo import generate
from vendome.data.ingest import ingest_folder
from vendome.pipeline import DEMO_MODELS, evaluate_workspace, peak_memory_mb, train, training_data
from vendome.workspace import Workspace

HYBRID_COMPONENTS = ("content-visual", "content-attributes", "als", "pop-segment", "pop-recent")
CONTENT = ("content-visual", "content-text", "content-attributes")


def _stage(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def print_checks(report: dict) -> None:
    """The foundation's promises, read off the report: hybrid vs each component, content vs popularity on new items."""
    _stage("checks")
    for row in report.get("significance", {}).get("pairs", []):
        if "error" in row:
            print(f"  {row['a']} vs {row['b']}: {row['error']}")
            continue
        rel = f"{row['diff'] / row['mean_b']:+.0%}" if row["mean_b"] > 0 else "from zero"
        print(f"  {row['a']:<15} vs {row['b']:<15} {row['metric']} {row['mean_a']:.4f} vs {row['mean_b']:.4f} "
              f"({rel}), Wilcoxon p={row['wilcoxon_p']:.2g}, "
              f"{row['n_seeds'] or 1} seed(s): {row['verdict']}")
    models = report.get("models", {})
    print("  new products (launched in the last 60 days of training, or never seen):")
    for name in ("pop", "pop-recent", *CONTENT, "hybrid"):
        new = models.get(name, {}).get("slices", {}).get("new_items")
        if new:
            print(f"    {name:<15} recall@10 {new.get('recall@10') or 0:.4f}  ndcg@10 {new.get('ndcg@10') or 0:.4f}"
                  f"  ({new['targets']} targets, {new['users']} users)")


def install_demo_rules(ws: Workspace) -> Path:
    """The house's guardrails (fine jewelry never beside the diffusion line, price band, diversity) as the
    workspace's rules file, unless the workspace already has one (a merchandiser's edits are kept)."""
    from vendome.rules.policy import DEMO_RULES

    path = ws.root / "rules.yaml"
    if not path.exists():
        shutil.copyfile(DEMO_RULES, path)
    return path


def search_example(ws: Workspace, data) -> None:
    """Fit (and save) the workspace's composed search, then answer one "like this, but ..." from a diamond ring."""
    from vendome.search.engine import search_engine

    t = time.perf_counter()
    engine = search_engine(ws, data=data)
    print(f"composed search ready in {time.perf_counter() - t:.0f} s -> {ws.root / 'search'}")
    p = data.products
    rings = p[(p.get("subcategory") == "ring") & (p.get("stone_type") == "diamond")] if "stone_type" in p else p[:0]
    if rings.empty:
        return
    anchor = str(rings["product_id"].iloc[0])
    text = "like this, but in rose gold, no diamonds"
    out = engine.search(text, anchor=anchor, k=5)
    print(f"\"{text}\" from {anchor} ({engine.product(anchor).get('title')}):")
    for r in out["results"]:
        facts = engine.product(r["product_id"])
        print(f"  {r['product_id']}  {str(facts.get('title'))[:60]:<60} {facts.get('price', 0):>9,.0f}  {r['reason']}")


def run_demo(ws: Workspace, size: str = "full", seed: int = 0, seeds: tuple[int, ...] = (0, 1, 2),
             threads: int = 2, test_days: float = 30) -> dict:
    t0 = time.perf_counter()
    ws.ensure()
    export = ws.root / "export"
    stamp = export / "GENERATED.json"
    wanted = {"size": size, "seed": seed}
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        _stage(f"generating the demo boutique ({size}, seed {seed}) into {export}")
        generate(export, size=size, seed=seed)
        stamp.write_text(json.dumps(wanted))
    else:
        _stage(f"reusing the demo boutique export in {export}")

    _stage("validating and ingesting the export")
    print(ingest_folder(export, ws))
    install_demo_rules(ws)

    _stage("embedding images (MobileNetV2) and texts (MiniLM); cached by content hash")
    data = training_data(ws, threads=threads)
    print(json.dumps(data.describe(), indent=1))

    _stage(f"evaluating {len(DEMO_MODELS)} models, temporal protocol (last {test_days:g} days), seeds {seeds}")
    reports = ws.reports
    pairs = [("hybrid", c) for c in HYBRID_COMPONENTS] + [
        (c, "pop", f"new_items:{m}") for c in CONTENT for m in ("recall@10", "ndcg@10")]
    report = evaluate_workspace(ws, list(DEMO_MODELS), "temporal", seeds=seeds, test_days=test_days, data=data,
                                json_path=reports / "demo_temporal.json", html_path=reports / "demo_temporal.html",
                                pairs=pairs)
    from vendome.evaluate.report import format_table

    print(format_table(report))
    print_checks(report)

    _stage("training the serving models on all data")
    for name in ("hybrid", "content-visual"):
        _, folder, seconds = train(ws, name, data=data, threads=threads)
        print(f"{name}: {seconds:.1f} s -> {folder}")

    _stage("fitting composed search: joint image-text space, composer, faiss index, re-ranking")
    search_example(ws, data)

    elapsed = time.perf_counter() - t0
    summary = {"seconds": round(elapsed, 1), "peak_memory_mb": round(peak_memory_mb(), 1),
               "report_html": str(reports / "demo_temporal.html"), "report_json": str(reports / "demo_temporal.json")}
    (reports / "demo_run.json").write_text(json.dumps(summary, indent=2))
    _stage("done")
    print(f"demo finished in {elapsed / 60:.1f} min, peak memory {summary['peak_memory_mb']:.0f} MB")
    print(f"report: {Path(summary['report_html'])}")
    print(f"try:    vendome recommend {data.customers['customer_id'].iloc[0]} --workspace {ws.root}")
    print(f"serve:  vendome serve --workspace {ws.root}   (OpenAPI docs at http://127.0.0.1:8000/docs)")
    print(f"search: vendome search \"like this, but in rose gold, no diamonds\" --anchor PRODUCT_ID "
          f"--workspace {ws.root}")
    print(f"app:    http://127.0.0.1:8000/app   (staff key: {ws.root / 'admin_api_key'}, written on first start, "
          "or VENDOME_API_KEY)")
    return report
