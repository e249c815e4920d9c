"""Charts of an evaluation report, as base64 PNG strings the HTML page embeds (matplotlib Agg, no display).

Each function takes the report dict and returns a data URI body (or None when the report has nothing to draw).
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

SLICES = ("cold", "warm", "regular", "heavy", "new_items")
PALETTE = plt.get_cmap("tab10")


def _ok_models(report: dict) -> dict[str, dict]:
    return {n: e for n, e in report["models"].items() if "error" not in e}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def accuracy_bars(report: dict, k: int = 10) -> str | None:
    """NDCG@k and HR@k per model, with the std over seeds as error bars."""
    models = _ok_models(report)
    if not models:
        return None
    names = list(models)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.4))
    for i, metric in enumerate((f"ndcg@{k}", f"hr@{k}")):
        vals = [models[n].get(metric) or 0.0 for n in names]
        err = [models[n].get("std", {}).get(metric) or 0.0 for n in names]
        ax.bar(x + (i - 0.5) * 0.38, vals, 0.38, yerr=err, capsize=3, label=metric.upper(), color=PALETTE(i))
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("mean over test users")
    ax.set_title(f"Accuracy at {k} (error bars: std over seeds)")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def metric_curves(report: dict) -> str | None:
    """NDCG@k and Recall@k against k, one line per model."""
    models = _ok_models(report)
    ks = report.get("ks") or []
    if not models or not ks:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, metric in zip(axes, ("ndcg", "recall"), strict=True):
        for i, (name, entry) in enumerate(models.items()):
            ax.plot(ks, [entry.get(f"{metric}@{k}") or 0.0 for k in ks], marker="o", color=PALETTE(i % 10),
                    label=name)
        ax.set_xticks(ks)
        ax.set_xlabel("k")
        ax.set_title(f"{metric.upper()}@k")
        ax.grid(alpha=0.3)
    axes[1].legend(frameon=False, fontsize=8, loc="best")
    return _png(fig)


def slice_bars(report: dict, k: int = 10) -> str | None:
    """NDCG@k per user slice (and on new-item targets), users or targets counted under each group."""
    models = _ok_models(report)
    if not models:
        return None
    first = next(iter(models.values()))["slices"]
    labels = []
    for s in SLICES:
        info = first.get(s, {})
        count = f"{info.get('targets', 0)} targets" if s == "new_items" else f"{info.get('users', 0)} users"
        labels.append(f"{s}\n({count})")
    x = np.arange(len(SLICES))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(SLICES) + 0.3 * len(models)), 3.4))
    for i, (name, entry) in enumerate(models.items()):
        vals = [entry["slices"].get(s, {}).get(f"ndcg@{k}") or 0.0 for s in SLICES]
        ax.bar(x - 0.4 + (i + 0.5) * width, vals, width, label=name, color=PALETTE(i % 10))
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title("Accuracy by slice (new_items: NDCG on never-seen target items)")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def exposure_bars(report: dict, max_categories: int = 8) -> str | None:
    """Share of recommendation slots by category and by price tier, per model, beside the eligible catalog."""
    models = _ok_models(report)
    if not models:
        return None
    catalog = next(iter(models.values()))["exposure"].get("catalog", {})
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * (len(models) + 1) + 1.6))
    for ax, attr in zip(axes, ("category", "price_tier"), strict=True):
        rows = {"(catalog)": catalog.get(attr, {})} | {n: e["exposure"].get(attr, {}) for n, e in models.items()}
        totals: dict[str, float] = {}
        for shares in rows.values():
            for key, v in shares.items():
                totals[key] = totals.get(key, 0.0) + v
        keys = sorted(totals, key=totals.get, reverse=True)
        if attr == "price_tier":
            order = ("entry", "mid", "high", "top", "(unknown)")
            keys = [t for t in order if t in totals]
        shown = keys[:max_categories]
        names = list(rows)
        left = np.zeros(len(names))
        for i, key in enumerate([*shown, "(other)"] if len(keys) > len(shown) else shown):
            if key == "(other)":
                vals = np.array([sum(v for c, v in rows[n].items() if c not in shown) for n in names])
            else:
                vals = np.array([rows[n].get(key, 0.0) for n in names])
            ax.barh(names, vals, left=left, label=key, color=plt.get_cmap("tab20")(i % 20))
            left += vals
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(f"Exposure by {attr.replace('_', ' ')}")
        ax.legend(frameon=False, fontsize=7, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    fig.tight_layout()
    return _png(fig)


def coverage_scatter(report: dict, k: int = 10) -> str | None:
    """Catalog coverage against NDCG: the accuracy / breadth trade-off at a glance."""
    models = _ok_models(report)
    if not models:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (name, entry) in enumerate(models.items()):
        cx, cy = entry.get(f"coverage@{k}") or 0.0, entry.get(f"ndcg@{k}") or 0.0
        ax.scatter(cx, cy, s=45, color=PALETTE(i % 10))
        ax.annotate(name, (cx, cy), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f"catalog coverage@{k}")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title("Coverage vs accuracy")
    ax.grid(alpha=0.3)
    return _png(fig)


def all_charts(report: dict) -> dict[str, str]:
    """Every chart that has something to draw, keyed by a short id."""
    k = report.get("beyond_k", 10)
    charts = {
        "accuracy": accuracy_bars(report, k),
        "curves": metric_curves(report),
        "slices": slice_bars(report, k),
        "exposure": exposure_bars(report),
        "coverage": coverage_scatter(report, k),
    }
    return {key: png for key, png in charts.items() if png}
