"""A guardrail policy compiled against one catalog and its history: which pieces each request may show, and the
list that respects every rule.

    guard = Guard(policy, data)                                   # catalog arrays, per-client bands, once
    allowed = guard.allowed(users, Request("home", now=now))      # (len(users), n_items) bool, vectorised
    items, scores = guard.select(scores_row, allowed_row, Request("cart", user=u, anchors=(i,)), k=10)

Two kinds of rule. Per-piece rules (stock, launch, seasons, placement exclusions, repurchase, price band, the
anchors' boundaries and, for the cart, their subcategories) become a boolean mask, applied before the top k.
Per-list rules (two lines never together, promotion slots, diversity) need the pieces already placed, so `select`
builds the list greedily, slot by slot, over the best `diversity.candidates` allowed pieces. `vendome.recommend`
calls both: it is the one path the API, the batch job and the evaluator share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.rules.policy import Match, Policy, PolicyError

OUT_OF_STOCK = frozenset({"out_of_stock", "outofstock", "discontinued", "sold_out", "unavailable"})
SIMILARITY_COLUMNS = ("category", "subcategory", "brand", "collection", "material")
N_TIERS = 4


@dataclass(frozen=True)
class Request:
    """What a list is for: a placement, the client (dense index, None when anonymous), the anchors (the product
    of a product page, the pieces in the cart) and the time it is served at (unix seconds; None: no dated rule)."""

    placement: str = "home"
    user: int | None = None
    anchors: tuple[int, ...] = ()
    now: float | None = None


class Guard:
    """`policy` compiled against `data` (catalog) and `history` (what clients did; default: `data` itself)."""

    def __init__(self, policy: Policy, data: Dataset, history: Dataset | None = None) -> None:
        self.policy, self.data = policy, data
        history = history if history is not None else data
        products = data.products
        problems: list[str] = []
        self._values = {c: products[c].fillna("").astype(str).to_numpy() for c in SIMILARITY_COLUMNS
                        if c in products}
        self.launch = launch_times(products)
        self.in_stock = in_stock(products) if policy.in_stock_only else np.ones(data.n_items, bool)
        self.exclude = {p: self.match(m.exclude, f"placements.{p}.exclude", problems)
                        for p, m in policy.placements.items()}
        self.seasons = [(s, self.match(s.match, f"seasons.{k}.match", problems)) for k, s in enumerate(policy.seasons)]
        self.promotions = [(p, self.match(p.match, f"promotions.{k}.match", problems))
                           for k, p in enumerate(policy.promotions)]
        self._rebuy = rebuy = self.match(policy.repurchase.allow, "repurchase.allow", problems)
        self.group, self.conflict = self._boundaries(problems)
        if problems:
            raise PolicyError("guardrail file against the catalog", problems)
        self.tiers = price_tiers(products)
        self.subcategory = pd.factorize(products.get("subcategory", products.get("category", pd.Series(
            [""] * data.n_items))).fillna("").astype(str))[0]
        self.purchased = _drop_columns(history.target_matrix(), rebuy) if policy.repurchase.exclude_purchased \
            else None
        self.band = self._bands(history) if policy.price_band.enabled else None
        self._codes = np.stack([pd.factorize(v)[0] for v in self._values.values()], 1) if self._values \
            else np.zeros((data.n_items, 0), np.int64)
        self._features = self._similarity_features()

    # ------------------------------------------------------------------------------------ compilation
    def match(self, m: Match, where: str, problems: list[str] | None = None) -> np.ndarray:
        """(n_items,) pieces matched by `m` (none when it is empty); a column or value the catalog lacks is a
        problem (a typo in a rules file must not silently match nothing)."""
        out = np.ones(self.data.n_items, bool) if not m.is_empty() else np.zeros(self.data.n_items, bool)
        for col, values in m.columns().items():
            have = self._values.get(col)
            if have is None:
                _report(problems, f"{where}.{col}: the catalog has no {col!r} column")
                return np.zeros(self.data.n_items, bool)
            unknown = sorted(set(values) - set(have))
            if unknown:
                known = ", ".join(sorted(set(have) - {""})[:12])
                _report(problems, f"{where}.{col}: {', '.join(map(repr, unknown))} not in the catalog's {col} "
                                  f"values (some: {known})")
            out &= np.isin(have, values)
        return out

    def _boundaries(self, problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n_items,) group index per piece (-1: none) and the (G, G) matrix of groups kept apart."""
        b = self.policy.boundaries
        names = list(b.groups)
        group = np.full(self.data.n_items, -1, np.int64)
        for g, values in enumerate(b.groups.values()):
            hit = self.match(Match(**{b.attribute: values}), f"boundaries.groups.{names[g]}", problems)
            group[hit] = g
        conflict = np.zeros((len(names), len(names)), bool)
        for x, y in b.never_together:
            conflict[names.index(x), names.index(y)] = conflict[names.index(y), names.index(x)] = True
        return group, conflict

    def _bands(self, history: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) allowed tier per client, -1 / N_TIERS (everything) for clients without enough events."""
        band = self.policy.price_band
        inter = history.interactions
        rows = inter[inter["behavior"].isin(band.behaviors)]
        tier = self.tiers[rows["item"].to_numpy()]
        keep = tier >= 0
        users, tier = rows["user"].to_numpy()[keep], tier[keep]
        lo = np.full(self.data.n_users, -1, np.int64)
        hi = np.full(self.data.n_users, N_TIERS, np.int64)
        if len(users):
            frame = pd.DataFrame({"u": users, "t": tier}).groupby("u")["t"].agg(["min", "max", "size"])
            ok = frame[frame["size"] >= band.min_events]
            idx = ok.index.to_numpy()
            lo[idx] = ok["min"].to_numpy() - band.below
            hi[idx] = ok["max"].to_numpy() + band.above
        return lo, hi

    def observe(self, history: Dataset, users: np.ndarray) -> None:
        """Refresh the per-client rules (what she bought, her price band) of `users` from `history` after new
        events, so the next list already excludes the piece she just bought."""
        users = np.asarray(users, dtype=np.int64)
        inter = history.interactions
        mine = inter[inter["user"].isin(users)]
        if self.purchased is not None:
            bought = mine[mine["behavior"].isin(history.target_behaviors) & ~self._rebuy[mine["item"].to_numpy()]]
            fresh = sp.csr_matrix((np.ones(len(bought), np.float32), (bought["user"], bought["item"])),
                                  shape=self.purchased.shape)
            fresh.data[:] = 1.0
            keep = np.ones(self.purchased.shape[0], np.float32)
            keep[users] = 0.0
            self.purchased = (sp.diags(keep) @ self.purchased + fresh).tocsr()
            self.purchased.data[:] = 1.0
        if self.band is not None:
            lo, hi = self._bands(history.with_interactions(mine))
            self.band[0][users], self.band[1][users] = lo[users], hi[users]

    def _similarity_features(self) -> np.ndarray | None:
        kind = self.policy.diversity.similarity
        if self.policy.diversity.strength == 0 or kind == "attributes":
            return None
        x = self.data.item_features.get(kind)
        if x is None:
            raise PolicyError("guardrail file against the catalog",
                              [f"diversity.similarity: {kind!r} needs {kind} embeddings, which this catalog has not "
                               "been given (run `vendome features`, or use similarity: attributes)"])
        x = np.asarray(x, np.float32) - np.asarray(x, np.float32).mean(0)   # centred: encoders share one cone
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)

    # ------------------------------------------------------------------------------------ per-piece rules
    def allowed(self, users: np.ndarray | None, req: Request) -> np.ndarray:
        """(len(users), n_items) bool (one row when users is None): the pieces this request may show."""
        base = self.piece_mask(req)
        users = np.array([-1] if users is None else users, dtype=np.int64)
        out = np.repeat(base[None], len(users), 0)
        known = users >= 0
        if self.purchased is not None and known.any():
            rows = self.purchased[users[known]]
            r, c = rows.nonzero()
            out[np.flatnonzero(known)[r], c] = False
        if self.band is not None and known.any():
            lo, hi = self.band[0][users[known]], self.band[1][users[known]]
            t = self.tiers[None, :]
            inside = (t < 0) | ((t >= lo[:, None]) & (t <= hi[:, None]))      # unknown tiers are not banded
            out[known] &= inside
        return out

    def piece_mask(self, req: Request) -> np.ndarray:
        """(n_items,) the rules that do not depend on the client: stock, launch, seasons, placement, anchors."""
        placement = self.policy.placement(req.placement)
        mask = self.in_stock.copy()
        if self.policy.launched_only and req.now is not None:
            mask &= ~(self.launch > req.now)
        if req.now is not None:
            for season, hit in self.seasons:
                if not in_window(season.start, season.end, req.now):
                    mask &= ~hit
        mask &= ~self.exclude.get(req.placement, np.zeros(self.data.n_items, bool))
        anchors = np.asarray(req.anchors, dtype=np.int64)
        if len(anchors):
            mask[anchors] = False
            groups = self.group[anchors]
            for g in np.unique(groups[groups >= 0]):
                mask &= ~(self.conflict[g][np.maximum(self.group, 0)] & (self.group >= 0))
            if placement.complementary:
                mask &= ~np.isin(self.subcategory, self.subcategory[anchors])
        return mask

    def stable_until(self, now: float) -> float:
        """The first instant after `now` at which a dated rule may change a list: the next launch, or the next
        UTC midnight while any season or dated promotion exists (they change by the day). Until then a list is a
        function of the model, the client and the rules alone, so a cache may keep it exactly that long."""
        out = math.inf
        if self.policy.launched_only:
            ahead = self.launch[self.launch > now]
            if len(ahead):
                out = float(ahead.min())
        if self.seasons or any(p.start or p.end for p, _ in self.promotions):
            day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            out = min(out, day.timestamp() + 86_400)
        return out

    # ------------------------------------------------------------------------------------ per-list rules
    def has_list_rules(self, req: Request) -> bool:
        return bool(self.conflict.any() or self.policy.diversity.strength > 0 or self._promotions_for(req))

    def _promotions_for(self, req: Request) -> list[tuple[int, np.ndarray]]:
        day = datetime.fromtimestamp(req.now, UTC).date() if req.now is not None else None
        out = []
        for k, (p, hit) in enumerate(self.promotions):
            if req.placement not in p.placements:
                continue
            if day is not None and ((p.start and day < p.start) or (p.end and day > p.end)):
                continue
            out.append((k, hit))
        return out

    def promotion_slots(self, req: Request, k: int) -> dict[int, int]:
        """Slot position -> promotion index: round(share x k) slots per promotion, spread evenly over the list."""
        slots: dict[int, int] = {}
        for idx, _ in self._promotions_for(req):
            n = min(k, max(1, math.floor(self.policy.promotions[idx].share * k + 0.5)))
            for j in range(n):
                pos = min(k - 1, int((j + 0.5) * k / n))
                while pos in slots and pos < k - 1:
                    pos += 1
                slots.setdefault(pos, idx)
        return slots

    def select(self, scores: np.ndarray, allowed: np.ndarray, req: Request, k: int
               ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """The list for one request: (items, scores, promotion name or None per slot), best first, at most k.

        Greedy, slot by slot, over the best `diversity.candidates` allowed pieces (and every allowed promoted
        piece): a promotion slot takes the best remaining promoted piece, any other slot the best remaining piece
        by maximal marginal relevance; a piece whose line is kept apart from a placed one (or an anchor) is skipped.
        """
        s = np.where(allowed, scores, -np.inf)
        n_cand = min(int(allowed.sum()), max(self.policy.diversity.candidates, 3 * k))
        if n_cand == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), []
        cand = np.argpartition(-s, n_cand - 1)[:n_cand]
        promos = self._promotions_for(req)
        promo_pool = {idx: np.flatnonzero(hit & allowed) for idx, hit in promos}
        pool = np.unique(np.concatenate([cand, *promo_pool.values()])) if promos else cand
        pool = pool[np.argsort(-s[pool], kind="stable")]
        rel = _relevance(s[pool])
        lam = self.policy.diversity.strength
        slots = self.promotion_slots(req, k)
        taken = np.zeros(len(pool), bool)
        blocked = np.zeros(len(pool), bool)
        max_sim = np.zeros(len(pool), np.float32)
        promoted = {idx: np.isin(pool, members) for idx, members in promo_pool.items()}
        items, out_scores, labels = [], [], []
        for pos in range(k):
            free = ~taken & ~blocked
            if not free.any():
                break
            idx = slots.get(pos)
            choice = None
            if idx is not None and (free & promoted[idx]).any():
                choice = int(np.flatnonzero(free & promoted[idx])[0])   # pool is sorted: the best promoted piece
            if choice is None:
                value = np.where(free, (1 - lam) * rel - lam * max_sim, -np.inf)
                choice, idx = int(np.argmax(value)), None
            item = int(pool[choice])
            items.append(item)
            out_scores.append(float(s[item]))
            labels.append(self.policy.promotions[idx].name if idx is not None else None)
            taken[choice] = True
            g = self.group[item]
            if g >= 0:
                blocked |= (self.group[pool] >= 0) & self.conflict[g][np.maximum(self.group[pool], 0)]
            if lam > 0:
                max_sim = np.maximum(max_sim, self.similarity(item, pool))
        return np.array(items, np.int64), np.array(out_scores, np.float32), labels

    def similarity(self, item: int, others: np.ndarray) -> np.ndarray:
        """Similarity of `item` to `others` for diversity: embedding cosine, or the share of equal attributes."""
        if self._features is not None:
            return self._features[others] @ self._features[item]
        if self._codes.shape[1] == 0:
            return np.zeros(len(others), np.float32)
        return (self._codes[others] == self._codes[item]).mean(1).astype(np.float32)


# ---------------------------------------------------------------------------------------------- catalog facts
def in_stock(products: pd.DataFrame) -> np.ndarray:
    """(n_items,) pieces that can be sold: not out of stock, sold out or discontinued."""
    if "stock_status" not in products:
        return np.ones(len(products), bool)
    status = products["stock_status"].astype(str).str.lower().str.replace(" ", "_")
    return ~status.isin(OUT_OF_STOCK).to_numpy()


def launch_times(products: pd.DataFrame) -> np.ndarray:
    """Unix seconds of each product's created_date (float, NaN where unknown)."""
    created = products.get("created_date")
    if created is None:
        return np.full(len(products), np.nan)
    ts = pd.to_datetime(created, utc=True, errors="coerce", format="mixed")
    out = ts.astype("datetime64[s, UTC]").astype("int64").to_numpy().astype(np.float64)
    out[ts.isna().to_numpy()] = np.nan
    return out


def price_tiers(products: pd.DataFrame) -> np.ndarray:
    """Price quartile of each item within its category: 0 entry .. 3 top; -1 when it cannot be told."""
    price = pd.to_numeric(products.get("price", pd.Series(np.nan, index=products.index)), errors="coerce")
    price = price.where(price > 0)  # public loaders write 0.0 for "price unknown"
    groups = products["category"].fillna("unknown").astype(str).to_numpy() if "category" in products \
        else np.zeros(len(products))
    pct = price.groupby(groups).rank(pct=True, method="average")
    spread = price.groupby(groups).transform("nunique") > 1  # one price for a whole category ranks nothing
    tier = np.clip(np.ceil(pct.to_numpy() * N_TIERS) - 1, 0, N_TIERS - 1)
    return np.where(np.isnan(tier) | ~spread.to_numpy(), -1, tier).astype(np.int8)


def in_window(start: str, end: str, now: float) -> bool:
    """Whether unix time `now` falls in [start, end]: MM-DD repeats yearly (and may wrap), YYYY-MM-DD once."""
    day = datetime.fromtimestamp(now, UTC).date()
    if len(start) == 10:
        return start <= day.isoformat() <= end
    md = day.strftime("%m-%d")
    return start <= md <= end if start <= end else (md >= start or md <= end)


def _relevance(scores: np.ndarray) -> np.ndarray:
    """Scores of the candidates mapped to [0, 1] (min-max), the scale MMR trades against similarity."""
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros(len(scores), np.float32)
    lo, hi = scores[finite].min(), scores[finite].max()
    rel = (scores - lo) / (hi - lo) if hi > lo else np.ones(len(scores))
    return np.where(finite, rel, 0.0).astype(np.float32)


def _drop_columns(m: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    if not columns.any():
        return m
    return (m @ sp.diags((~columns).astype(np.float32))).tocsr()


def _report(problems: list[str] | None, message: str) -> None:
    if problems is None:
        raise PolicyError("guardrail file against the catalog", [message])
    problems.append(message)
