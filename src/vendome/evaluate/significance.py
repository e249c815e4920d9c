"""Paired significance tests on per-user metrics: is model A really better than B on the same test users?

Both tests pair each user's score under A with the same user's score under B (the evaluator scores every model on
the same users): the Wilcoxon signed-rank test (no normality assumption; users where A and B tie are dropped, the
scipy default) and the paired t-test. The effect size is the mean per-user difference A - B with a 95% confidence
interval (Student t, or a percentile bootstrap). A claim "A beats B" additionally needs at least MIN_SEEDS seeds
(DESIGN §5), so one lucky initialisation cannot carry it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ALPHA = 0.05
MIN_SEEDS = 3


def paired_test(a: np.ndarray, b: np.ndarray, *, ci: str = "t", level: float = 0.95, n_boot: int = 2000,
                seed: int = 0) -> dict:
    """Wilcoxon and paired t-test p-values, mean difference a - b and its confidence interval."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired arrays must have the same 1-d shape, got {a.shape} and {b.shape}")
    diff = a - b
    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    out = {"n": n, "mean_a": float(a.mean()) if n else 0.0, "mean_b": float(b.mean()) if n else 0.0,
           "diff": mean, "n_differ": int((diff != 0).sum())}
    if out["n_differ"] == 0:  # identical on every user: no evidence of any difference
        out.update(wilcoxon_p=1.0, ttest_p=1.0, ci_low=0.0, ci_high=0.0)
        return out
    out["wilcoxon_p"] = float(stats.wilcoxon(diff).pvalue)
    sd = float(diff.std(ddof=1)) if n > 1 else 0.0
    out["ttest_p"] = float(stats.ttest_rel(a, b).pvalue) if sd > 0 else 0.0
    if ci == "t":
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n) if n > 1 else math.inf
        out["ci_low"], out["ci_high"] = mean - half, mean + half
    elif ci == "bootstrap":
        out["ci_low"], out["ci_high"] = _bootstrap_ci(diff, level, n_boot, seed)
    else:
        raise ValueError(f"unknown confidence interval {ci!r}; expected 't' or 'bootstrap'")
    return out


def _bootstrap_ci(diff: np.ndarray, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean, resampled in blocks so memory stays small for many users."""
    rng = np.random.default_rng(seed)
    n = len(diff)
    block = max(1, 2_000_000 // max(n, 1))
    means = np.concatenate([diff[rng.integers(0, n, size=(min(block, n_boot - s), n))].mean(1)
                            for s in range(0, n_boot, block)])
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def compare(report_per_user: dict, a: str, b: str, metric: str = "ndcg@10", *, n_seeds: int | None = None,
            **test_opts) -> dict:
    """Paired comparison of models a and b on `metric` from per-user arrays.

    `report_per_user` maps model name -> metric -> per-user array (the evaluator's `report["per_user"]["models"]`;
    the whole `report["per_user"]` is accepted too). `n_seeds` (the fewer of the two models' seeds) decides whether
    the verdict may be stated as a claim.
    """
    per_user = report_per_user.get("models", report_per_user)
    for name in (a, b):
        if name not in per_user:
            raise KeyError(f"no per-user metrics for model {name!r}; have: {', '.join(per_user) or 'none'}")
        if metric not in per_user[name]:
            raise KeyError(f"model {name!r} has no per-user {metric!r}; have: {', '.join(per_user[name])}")
    out = {"a": a, "b": b, "metric": metric}
    out.update(paired_test(per_user[a][metric], per_user[b][metric], **test_opts))
    out["n_seeds"] = n_seeds
    out["verdict"] = verdict(out)
    return out


def verdict(result: dict, alpha: float = ALPHA) -> str:
    """One honest sentence: which is better, whether it is significant, whether enough seeds back it."""
    a, b, p = result["a"], result["b"], result.get("wilcoxon_p_holm", result["wilcoxon_p"])
    if p >= alpha or result["diff"] == 0:
        return f"no significant difference between {a} and {b} (p={p:.3g})"
    better, worse = (a, b) if result["diff"] > 0 else (b, a)
    text = f"{better} > {worse} (p={p:.3g})"
    seeds = result.get("n_seeds")
    if seeds is not None and seeds < MIN_SEEDS:
        text += f", but only {seeds} seed(s): run >= {MIN_SEEDS} before claiming it"
    return text


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control over one table of comparisons)."""
    m = len(pvalues)
    order = np.argsort(pvalues)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def significance_table(per_user: dict[str, dict[str, np.ndarray]], summary: dict[str, dict], *,
                       metric: str = "ndcg@10", pairs: list[tuple[str, ...]] | None = None,
                       n_seeds: dict[str, int] | None = None) -> dict:
    """The report's significance section: every model vs the best on `metric` (Holm-adjusted), plus `pairs`."""
    n_seeds = n_seeds or {}
    names = [n for n in per_user if metric in per_user[n]]
    out: dict = {"metric": metric, "alpha": ALPHA, "best": None, "vs_best": [], "pairs": []}
    if not names:
        return out
    best = max(names, key=lambda n: summary[n].get(metric, -math.inf))
    out["best"] = best

    def seeds_of(x: str, y: str) -> int | None:
        have = [n_seeds[m] for m in (x, y) if m in n_seeds]
        return min(have) if have else None

    rows = [compare(per_user, best, other, metric, n_seeds=seeds_of(best, other)) for other in names if other != best]
    for row, p in zip(rows, holm([r["wilcoxon_p"] for r in rows]), strict=True):
        row["wilcoxon_p_holm"] = p
        row["verdict"] = verdict(row)
    out["vs_best"] = rows
    for pair in pairs or []:  # (a, b) on the report's metric, or (a, b, metric), e.g. "new_items:recall@10"
        a, b, on = (*pair, metric) if len(pair) == 2 else pair
        missing = [m for m in (a, b) if m not in names]
        if missing:  # a model that failed or was never run: say so instead of dropping the pair silently
            out["pairs"].append({"a": a, "b": b, "metric": on, "error": f"no results for {', '.join(missing)}"})
        elif on not in per_user[a] or len(per_user[a][on]) == 0:
            out["pairs"].append({"a": a, "b": b, "metric": on, "error": f"no per-user {on} in this split"})
        else:
            out["pairs"].append(compare(per_user, a, b, on, n_seeds=seeds_of(a, b)))
    return out
