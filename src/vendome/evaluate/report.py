"""Evaluation reports: JSON for machines, a self-contained HTML page for people, a plain table for the terminal.

    write_json(report, "ws/reports/eval.json")
    write_html(report, "ws/reports/eval.html")     # one file: styles, tables and PNG charts inline
    print(format_table(report))
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment

from vendome.evaluate import plots

# Comparison-table columns: (metric key pattern, header, which direction is better; None = never bold).
COLUMNS = (
    ("hr@{k}", "HR@{k}", "max"),
    ("ndcg@{k}", "NDCG@{k}", "max"),
    ("recall@{k}", "Recall@{k}", "max"),
    ("mrr@{k}", "MRR@{k}", "max"),
    ("map@{k}", "MAP@{k}", "max"),
    ("coverage@{k}", "Coverage", "max"),
    ("gini@{k}", "Gini", "min"),
    ("ild_category@{k}", "ILD cat.", "max"),
    ("ild_brand@{k}", "ILD brand", "max"),
    ("ild_embedding@{k}", "ILD emb.", "max"),
    ("novelty@{k}", "Novelty", "max"),
    ("price_tier_consistency@{k}", "Tier cons.", "max"),
    ("guardrail_violations", "Violations", None),
    ("fit_seconds", "Fit s", "min"),
    ("eval_seconds", "Eval s", "min"),
)
TERMINAL_COLUMNS = ("ndcg@{k}", "hr@{k}", "recall@{k}", "mrr@{k}", "coverage@{k}", "novelty@{k}",
                    "guardrail_violations", "fit_seconds", "eval_seconds")


# ---------------------------------------------------------------------------------------------- JSON
def to_jsonable(value: Any) -> Any:
    """numpy values and arrays as plain JSON; NaN and infinities as null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(report: dict, path: str | Path, *, per_user: bool = False) -> Path:
    """Write the report; the per-user arrays (large) only when `per_user` is set."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in report.items() if per_user or k != "per_user"}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(body), indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------- table
def comparison_rows(report: dict) -> tuple[list[str], list[dict]]:
    """Headers and rows of the comparison table, each cell {text, best}; the best value per column is flagged."""
    k = report.get("beyond_k", 10)
    models = report["models"]
    cols = [(key.format(k=k), head.format(k=k), better) for key, head, better in COLUMNS]
    cols = [c for c in cols if any(e.get(c[0]) is not None for e in models.values() if "error" not in e)]
    best: dict[str, float] = {}
    for key, _, better in cols:
        vals = [e[key] for e in models.values() if "error" not in e and e.get(key) is not None]
        if better and len(vals) > 1 and not all(math.isclose(v, vals[0]) for v in vals):  # a tie has no winner
            best[key] = max(vals) if better == "max" else min(vals)
    rows = []
    for name, entry in models.items():
        if "error" in entry:
            rows.append({"name": name, "error": entry["error"], "cells": []})
            continue
        cells = []
        for key, _, _ in cols:
            value = entry.get(key)
            std = entry.get("std", {}).get(key)
            cells.append({"text": _fmt(value, std if len(entry.get("seeds", {})) > 1 else None),
                          "best": key in best and value is not None and math.isclose(value, best[key])})
        rows.append({"name": name, "error": None, "cells": cells})
    return [head for _, head, _ in cols], rows


def _fmt(value: Any, std: float | None = None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    text = f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} ± {std:.4f}" if std else text


def format_table(report: dict) -> str:
    """The comparison as fixed-width text for a terminal, with the significance verdicts below it."""
    k = report.get("beyond_k", 10)
    keys = [c.format(k=k) for c in TERMINAL_COLUMNS]
    heads = ["model", *[c.replace("guardrail_violations", "violations").replace("_seconds", " s") for c in keys]]
    lines: list[list[str]] = []
    errors: list[str] = []
    for name, entry in report["models"].items():
        if "error" in entry:
            errors.append(f"  {name}: FAILED {entry['error']}")
            continue
        lines.append([name, *[_fmt(entry.get(key)) for key in keys]])
    widths = [max(len(r[i]) for r in [heads, *lines]) for i in range(len(heads))]

    def row(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                strict=True)))

    ds = report.get("dataset", {})
    split = ds.get("split", {})
    out = [f"{ds.get('name', 'dataset')}: protocol {report['protocol']}, {split.get('n_test_users', '?')} test users, "
           f"{split.get('n_test_targets', '?')} targets, {split.get('n_eligible_items', '?')} eligible items",
           row(heads), row(["-" * w for w in widths]), *[row(r) for r in lines], *errors]
    sig = report.get("significance", {})
    for entry in sig.get("vs_best", []) + sig.get("pairs", []):
        out.append(f"  {entry['metric']}: {entry.get('verdict') or entry.get('error')}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- HTML
def _template():
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt
    text = resources.files("vendome.evaluate").joinpath("templates/report.html").read_text(encoding="utf-8")
    return env.from_string(text)


def write_html(report: dict, path: str | Path) -> Path:
    """One self-contained page: dataset summary, comparison table, charts (inline PNG), significance."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    headers, rows = comparison_rows(report)
    ds = report.get("dataset", {})
    html = _template().render(
        report=report,
        dataset=ds,
        split=ds.get("split", {}),
        headers=headers,
        rows=rows,
        charts=plots.all_charts(report),
        significance=report.get("significance", {}),
        k=report.get("beyond_k", 10),
        models={n: e for n, e in report["models"].items() if "error" not in e},
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def format_markdown(report: dict, metrics: tuple[str, ...] = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")) -> str:
    """The comparison as a Markdown table (for bench/RESULTS.md), failed models with their error."""
    head = "| model | " + " | ".join(m.upper() for m in metrics)
    lines = [head + " | fit s |", "|---" * (len(metrics) + 2) + "|"]
    for name, m in report["models"].items():
        if "error" in m:
            lines.append(f"| {name} | error: {m['error'][:80]} |" + " |" * len(metrics))
            continue
        cells = " | ".join(f"{m[k]:.4f}" for k in metrics)
        lines.append(f"| {name} | {cells} | {m.get('fit_seconds') or 0:.1f} |")
    return "\n".join(lines)
