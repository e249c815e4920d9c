"""What the public-data benchmarks share: where ../shared/data is, their argument parser, their workspace."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vendome.workspace import Workspace

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SHARED = Path(os.environ.get("VENDOME_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def parser(doc: str | None, models: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=models, help="comma list of registry names")
    ap.add_argument("--seeds", default="0", help="comma list of seeds")
    return ap


def shared_folder(name: str) -> Path:
    """A dataset folder of ../shared/data, or a clear exit when the benchmark cannot run here."""
    src = SHARED / name
    if not src.exists():
        raise SystemExit(f"{src} not found: this benchmark needs ../shared/data (or VENDOME_SHARED_DATA)")
    return src


def workspace(name: str) -> Workspace:
    return Workspace(OUT / f"ws_{name}")


def seeds(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s)


def print_tables(report: dict, metrics: tuple[str, ...] = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")) -> None:
    """A `run_protocol` report as two markdown tables: the models (means of the seeds, fit seconds, NDCG@10 per
    seed) and the paired tests (relative NDCG@10, Wilcoxon p)."""
    print("| model | " + " | ".join(m.upper() for m in metrics) + " | fit s | NDCG@10 per seed |")
    print("|---|" + "---|" * (len(metrics) + 2))
    for name, e in report["models"].items():
        if "error" in e:
            print(f"| {name} | failed: {e['error']} |")
            continue
        per_seed = ", ".join(f"{v:.4f}" for v in e["seeds"].values())
        values = " | ".join(f"{e[m]:.4f}" for m in metrics)
        print(f"| {name} | {values} | {e['fit_seconds']:.0f} | {per_seed} |")
    print("\n| a | b | NDCG@10 a / b | relative | Wilcoxon p |")
    print("|---|---|---|---|---|")
    for row in report["significance"]["pairs"]:
        if "error" in row:
            print(f"| {row['a']} | {row['b']} | {row['error']} |")
            continue
        a, b = report["models"][row["a"]]["ndcg@10"], report["models"][row["b"]]["ndcg@10"]
        print(f"| {row['a']} | {row['b']} | {a:.4f} / {b:.4f} | {100 * (a / b - 1):+.1f}% | {row['wilcoxon_p']:.2g} |")
