"""An independent check of served lists against a guardrail policy.

Deliberately written apart from `Guard`: it reads the catalog rows and the client's history directly, one piece at
a time, and re-derives every rule from the policy, so a bug in the guard's masks or in its greedy list builder
shows up here instead of agreeing with itself. Used by the tests and by `bench/bench_guardrails.py`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from vendome.data.dataset import Dataset
from vendome.rules.guard import Request
from vendome.rules.policy import Match, Policy

STOCKLESS = {"out_of_stock", "outofstock", "discontinued", "sold_out", "unavailable"}


class Auditor:
    """Checks lists for one catalog and history."""

    def __init__(self, policy: Policy, data: Dataset, history: Dataset | None = None) -> None:
        self.policy, self.data = policy, data
        self.rows = data.products.to_dict("records")
        history = history if history is not None else data
        inter = history.interactions
        self.bought: dict[int, set[int]] = {}
        for u, i, b in zip(inter["user"], inter["item"], inter["behavior"], strict=True):
            if b in history.target_behaviors:
                self.bought.setdefault(int(u), set()).add(int(i))
        self.engaged: dict[int, list[int]] = {}
        for u, i, b in zip(inter["user"], inter["item"], inter["behavior"], strict=True):
            if b in policy.price_band.behaviors:
                self.engaged.setdefault(int(u), []).append(int(i))
        self.tier = _tiers(data.products)

    def violations(self, req: Request, items: list[int], promo_labels: list[str | None] | None = None) -> list[str]:
        """Every rule one served list breaks, in words (empty: the list is clean)."""
        out: list[str] = []
        p = self.policy
        place = p.placement(req.placement)
        if len(set(items)) != len(items):
            out.append("a piece appears twice")
        for i in items:
            row = self.rows[i]
            name = f"{row['product_id']}"
            status = str(row.get("stock_status", "")).lower().replace(" ", "_")
            if p.in_stock_only and status in STOCKLESS:
                out.append(f"{name} is {status}")
            if p.launched_only and req.now is not None:
                created = pd.to_datetime(row.get("created_date"), utc=True, errors="coerce")
                if pd.notna(created) and created.timestamp() > req.now:
                    out.append(f"{name} is shown before its launch")
            if _matches(place.exclude, row):
                out.append(f"{name} is excluded from placement {req.placement}")
            if req.now is not None:
                for s in p.seasons:
                    if _matches(s.match, row) and not _in_season(s.start, s.end, req.now):
                        out.append(f"{name} is out of its season {s.start}..{s.end}")
            if i in req.anchors:
                out.append(f"{name} is the anchor itself")
            if req.user is not None and p.repurchase.exclude_purchased and i in self.bought.get(req.user, set()) \
                    and not _matches(p.repurchase.allow, row):
                out.append(f"{name} was already bought")
            if req.user is not None and p.price_band.enabled:
                tiers = [self.tier[j] for j in self.engaged.get(req.user, []) if self.tier[j] >= 0]
                if len(tiers) >= p.price_band.min_events and self.tier[i] >= 0 and not (
                        min(tiers) - p.price_band.below <= self.tier[i] <= max(tiers) + p.price_band.above):
                    out.append(f"{name} (tier {self.tier[i]}) is outside her band {min(tiers)}..{max(tiers)}")
            if place.complementary and req.anchors:
                subs = {self._sub(a) for a in req.anchors}
                if self._sub(i) in subs:
                    out.append(f"{name} repeats a subcategory of the cart ({self._sub(i)})")
        shown = list(items) + list(req.anchors)
        for a in range(len(shown)):
            for b in range(a + 1, len(shown)):
                if a >= len(items) and b >= len(items):
                    continue                       # two anchors: the client chose them
                ga, gb = self._group(shown[a]), self._group(shown[b])
                if ga and gb and ((ga, gb) in p.boundaries.never_together or (gb, ga) in p.boundaries.never_together):
                    out.append(f"{self.rows[shown[a]]['product_id']} ({ga}) beside "
                               f"{self.rows[shown[b]]['product_id']} ({gb})")
        if promo_labels is not None:
            out += self._promotions(req, items, promo_labels)
        return out

    def _promotions(self, req: Request, items: list[int], labels: list[str | None]) -> list[str]:
        """Each promoted slot holds a matching piece; each active promotion has its share of slots, unless the
        list is short of matching pieces it could have shown (then every one it could show is there)."""
        out = []
        day = datetime.fromtimestamp(req.now, UTC).date() if req.now is not None else None
        for promo in self.policy.promotions:
            active = req.placement in promo.placements and not (
                day is not None and ((promo.start and day < promo.start) or (promo.end and day > promo.end)))
            mine = [i for i, lab in zip(items, labels, strict=False) if lab == promo.name]
            if not active and mine:
                out.append(f"promotion {promo.name!r} fills slots where it is not active")
            for i in mine:
                if not _matches(promo.match, self.rows[i]):
                    out.append(f"{self.rows[i]['product_id']} fills a {promo.name!r} slot without matching it")
            if active and items:
                want = min(len(items), max(1, math.floor(promo.share * len(items) + 0.5)))
                have = sum(_matches(promo.match, self.rows[i]) for i in items)
                if have < want and len(mine) < want and self._could_fill(req, promo.match, items):
                    out.append(f"promotion {promo.name!r} has {have} of its {want} slots")
        return out

    def _could_fill(self, req: Request, match: Match, items: list[int]) -> bool:
        """Whether some matching piece not in the list would have passed every per-piece rule and boundary."""
        for i in range(len(self.rows)):
            if i in items or not _matches(match, self.rows[i]):
                continue
            if not self.violations(req, [*items, i]):
                return True
        return False

    def _sub(self, i: int) -> str:
        row = self.rows[i]
        return str(row.get("subcategory", row.get("category", "")))

    def _group(self, i: int) -> str | None:
        value = str(self.rows[i].get(self.policy.boundaries.attribute, ""))
        return next((g for g, values in self.policy.boundaries.groups.items() if value in values), None)


def _matches(m: Match, row: dict) -> bool:
    cols = m.columns()
    return bool(cols) and all(str(row.get(c, "")) in values for c, values in cols.items())


def _in_season(start: str, end: str, now: float) -> bool:
    day = datetime.fromtimestamp(now, UTC).date()
    if len(start) == 10:
        return datetime.fromisoformat(start).date() <= day <= datetime.fromisoformat(end).date()
    md = (day.month, day.day)
    s, e = tuple(map(int, start.split("-"))), tuple(map(int, end.split("-")))
    return s <= md <= e if s <= e else (md >= s or md <= e)


def _tiers(products: pd.DataFrame) -> list[int]:
    """Price quartile within the category, recomputed by sorting (ties share the average rank)."""
    out = [-1] * len(products)
    price = pd.to_numeric(products.get("price"), errors="coerce")
    cats = products["category"].fillna("unknown").astype(str) if "category" in products else pd.Series(
        ["all"] * len(products))
    for cat in cats.unique():
        idx = [i for i in range(len(products)) if cats.iloc[i] == cat and price.iloc[i] > 0]
        values = sorted(price.iloc[i] for i in idx)
        if len(set(values)) < 2:
            continue
        for i in idx:
            p = price.iloc[i]
            below = sum(v < p for v in values)
            equal = sum(v == p for v in values)
            pct = (below + (equal + 1) / 2) / len(values)
            out[i] = int(min(max(np.ceil(pct * 4) - 1, 0), 3))
    return out
