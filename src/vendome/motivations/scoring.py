"""Extraction quality against hand labels: micro precision and recall over (polarity, label) pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

Pair = tuple[str, str]


def pairs(positive: list[str], negative: list[str]) -> set[Pair]:
    return {("+", x) for x in positive} | {("-", x) for x in negative}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def score(predicted: Mapping[str, tuple[list[str], list[str]]], gold: Mapping[str, Mapping[str, list[str]]]
          ) -> dict:
    """Micro P/R/F1 over every (polarity, label) pair, then for positives and negatives alone, and per label.
    A text missing from `predicted` counts as an empty answer (all its gold pairs missed)."""
    counts = {"all": Counter(), "+": Counter(), "-": Counter()}
    per_label: dict[str, Counter] = {}
    for key, labels in gold.items():
        truth = pairs(labels.get("positive", []), labels.get("negative", []))
        found = pairs(*predicted.get(key, ([], [])))
        for pair, kind in [(x, "tp") for x in truth & found] + [(x, "fp") for x in found - truth] + \
                          [(x, "fn") for x in truth - found]:
            counts["all"][kind] += 1
            counts[pair[0]][kind] += 1
            per_label.setdefault(pair[1], Counter())[kind] += 1
    out = {name: prf(c["tp"], c["fp"], c["fn"]) for name, c in counts.items()}
    out["per_label"] = {label: prf(c["tp"], c["fp"], c["fn"]) for label, c in sorted(per_label.items())}
    out["texts"] = len(gold)
    return out
