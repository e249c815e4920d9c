"""The year of client behaviour: sessions with funnels, orders, gifting seasons, sets completed weeks later.

Each client visits a number of times that follows her activity (long tail), on days drawn from the seasonal
intensity (December, Valentine's, Mother's Days). A visit browses one category; the pieces she looks at are drawn
by her taste utility plus the attention burst of new collections (strongest on the clients whose taste they suit)
and her growing loyalty to collections she has bought from. Liking shows in the funnel: long views, clicks,
wishlist, cart, and sometimes a purchase of the piece she liked best. A necklace or a bag is often followed, days
or weeks later, by the matching earrings, bracelet or wallet of the same set. Nothing happens before a product's
created_date or after its stock ran out.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vendome.data.demo.catalog import COMPLEMENTS
from vendome.data.demo.customers import Tastes
from vendome.data.demo.truth import BUYER_CODES, PARAMS, Params, utility
from vendome.data.demo.vocab import CATEGORIES

DAY = 86_400
EVENT_TYPES = ("view", "click", "add_to_wishlist", "add_to_cart", "remove_from_cart", "purchase")
VIEW, CLICK, WISH, CART, REMOVE, BUY = range(6)
DEVICES = ("mobile", "desktop", "tablet")
REFERRERS = ("direct", "organic_search", "paid_search", "email", "social", "affiliate", "boutique_associate")
REFERRER_P = (0.3, 0.22, 0.1, 0.15, 0.15, 0.03, 0.05)
HOUR_P = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.8, 3.0, 3.2, 3.6, 3.4, 3.2, 3.2, 3.4, 3.8, 4.4,
                   5.0, 5.4, 5.0, 3.6, 2.0])
HOUR_P = HOUR_P / HOUR_P.sum()
# Gift categories: a shift of the category choice in gifting sessions.
GIFT_CATEGORY = np.array([1.2, 0.3, 0.5, -0.8, -1.2, 0.7])


@dataclass(frozen=True)
class Season:
    name: str
    first: str        # inclusive, YYYY-MM-DD
    last: str
    intensity: float  # multiplier of visits
    gift_p: float     # chance that a visit is a gift search
    recipient: str    # "women", "men" or "any"


SEASONS = (
    Season("black_friday", "2025-11-27", "2025-11-30", 1.4, 0.2, "any"),
    Season("christmas", "2025-12-01", "2025-12-24", 2.2, 0.55, "any"),
    Season("valentines_day", "2026-02-01", "2026-02-14", 1.5, 0.45, "any"),
    Season("mothers_day", "2026-05-01", "2026-05-10", 1.4, 0.35, "women"),   # United States, 10 May 2026
    Season("mothers_day", "2026-05-21", "2026-05-31", 1.3, 0.3, "women"),    # France, 31 May 2026
    Season("summer", "2026-07-01", "2026-08-31", 0.85, 0.07, "any"),
)
BASE_GIFT_P = 0.07
OTHER_OCCASIONS = ("birthday", "anniversary", "wedding", "graduation")
# Liking thresholds of the funnel steps after a view: click, wishlist, cart (probability = sigmoid(liking - offset)).
FUNNEL_OFFSETS = np.array([0.8, 3.6, 3.6])


@dataclass
class Log:
    """Column lists of the simulated events and orders."""

    ev_user: list[int] = field(default_factory=list)
    ev_item: list[int] = field(default_factory=list)
    ev_type: list[int] = field(default_factory=list)
    ev_time: list[int] = field(default_factory=list)
    ev_session: list[int] = field(default_factory=list)
    ev_duration: list[float] = field(default_factory=list)
    sessions: list[tuple[int, int, int, int]] = field(default_factory=list)  # (user, start, device, referrer)
    orders: list[tuple[int, int, int, bool, str, tuple[int, ...]]] = field(default_factory=list)
    # (user, time, session, is_gift, occasion, items)

    def event(self, u: int, i: int, kind: int, t: int, s: int, dur: float = np.nan) -> None:
        self.ev_user.append(u)
        self.ev_item.append(i)
        self.ev_type.append(kind)
        self.ev_time.append(t)
        self.ev_session.append(s)
        self.ev_duration.append(dur)


def day_tables(start: int, end: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Per day of the window: visit intensity, gift chance, occasion and gift recipient."""
    days = pd.date_range(pd.Timestamp(start, unit="s"), pd.Timestamp(end, unit="s"), freq="D")
    intensity = np.ones(len(days))
    gift = np.full(len(days), BASE_GIFT_P)
    occasion = [""] * len(days)
    recipient = ["any"] * len(days)
    for s in SEASONS:
        sel = (days >= pd.Timestamp(s.first)) & (days <= pd.Timestamp(s.last))
        intensity[sel] *= s.intensity
        if s.name == "christmas":  # the rush builds up towards the 24th
            intensity[sel] *= np.linspace(0.7, 1.3, int(sel.sum()))
        gift[sel] = s.gift_p
        for d in np.flatnonzero(sel):
            if s.name not in ("summer", "black_friday"):
                occasion[d] = s.name
                recipient[d] = s.recipient
    return intensity, gift, occasion, recipient


def simulate(rng: np.random.Generator, items: pd.DataFrame, it: dict[str, np.ndarray], customers: pd.DataFrame,
             tastes: Tastes, start: int, end: int, p: Params = PARAMS, progress: bool = True) -> Log:
    """Run every client's year; returns the raw event and order log (indices, unix seconds)."""
    from tqdm.auto import tqdm

    log = Log()
    intensity, gift_p, occasion_of_day, recipient_of_day = day_tables(start, end)
    n_days = len(intensity)
    cum = np.cumsum(intensity)
    created = items["created"].to_numpy(np.int64)
    stop = items["stop"].to_numpy(np.int64)
    launch = np.where(items["launched_in_window"].to_numpy(bool), created, np.iinfo(np.int64).max // 2)
    subcat = items["subcategory"].to_numpy()
    coll = it["coll"]
    n_coll = int(coll.max()) + 1
    by_cat = [np.flatnonzero(it["cat"] == k) for k in range(len(CATEGORIES))]
    partners: dict[int, list[int]] = {}
    for _set_id, grp in items[items["set_id"] != ""].groupby("set_id", sort=True):
        idx = grp.index.to_numpy()
        for a in idx:
            comp = [int(b) for b in idx if subcat[b] in COMPLEMENTS.get(subcat[a], ())]
            if comp:
                partners[int(a)] = comp
    device_cum = np.cumsum([0.55, 0.33, 0.12])
    referrer_cum = np.cumsum(REFERRER_P)
    hour_cum = np.cumsum(HOUR_P)

    genders = customers["gender"].to_numpy()
    buyer = np.array([BUYER_CODES[g] for g in genders])
    reg = customers["registration"].to_numpy(np.int64)
    n = len(customers)
    chunk = 256
    session_id = 0
    for u in tqdm(range(n), desc="behaviour", disable=not progress):
        if u % chunk == 0:  # utilities of a block of clients at once: as themselves and as gift givers
            sl = slice(u, min(n, u + chunk))
            c = {"material": tastes.material[sl], "stone": tastes.stone[sl], "color": tastes.color[sl],
                 "motif": tastes.motif[sl], "technique": tastes.technique[sl], "tier": tastes.tier[sl],
                 "visual_share": tastes.visual_share[sl], "fav_collection": tastes.fav_collection[sl],
                 "gender": buyer[sl]}
            own_block = utility(c, it, p)
            gift_block = [utility(dict(c, gender=np.full(sl.stop - sl.start, code)), it, p, gift=True)
                          for code in (0, 1)]
        row = u % chunk
        first_day = max(0, int((reg[u] - start) // DAY))
        exposure = (n_days - first_day) / n_days
        n_sess = int(rng.poisson(tastes.activity[u] * exposure))
        if n_sess == 0:
            continue
        own = own_block[row]
        loyalty = np.zeros(n_coll)
        device_pref = int(np.searchsorted(device_cum, rng.random()))
        lo = cum[first_day - 1] if first_day > 0 else 0.0
        days = np.searchsorted(cum, lo + rng.random(n_sess) * (cum[-1] - lo), side="right")
        if first_day > 0 and rng.random() < 0.6:
            days[0] = first_day
        hours = np.minimum(np.searchsorted(hour_cum, rng.random(n_sess)), 23)
        starts = start + np.minimum(days, n_days - 1) * DAY + hours * 3600 + rng.integers(0, 3600, n_sess)
        starts = np.minimum(starts, end - 2 * 3600 - rng.integers(0, 3600, n_sess))
        queue: list[tuple[int, int]] = sorted((int(t), -1) for t in starts)  # (time, complement item or -1)
        while queue:
            t0, follow = queue.pop(0)
            r = rng.random(12)  # the visit's own decisions
            day = min(n_days - 1, int((t0 - start) // DAY))
            gift = follow < 0 and r[0] < gift_p[day]
            base = own
            if gift:
                rec = recipient_of_day[day]
                if rec == "any":
                    rec = ("women" if r[1] < 0.85 else "men") if genders[u] == "male" else (
                        "men" if r[1] < 0.5 else "women")
                base = gift_block[0 if rec == "women" else 1][row]
            if follow >= 0:
                cat = int(it["cat"][follow])
            else:
                z = tastes.category[u] + (GIFT_CATEGORY if gift else 0.0)
                pc = np.cumsum(np.exp(z - z.max()))
                cat = min(len(pc) - 1, int(np.searchsorted(pc, r[2] * pc[-1])))
            cand = by_cat[cat]
            cand = cand[(created[cand] <= t0) & (stop[cand] > t0)]
            if len(cand) == 0:
                continue
            logits = base[cand] + loyalty[coll[cand]]
            age = (t0 - launch[cand]) / (DAY * p.burst_days)
            # a launch catches the eye of the clients it suits (campaigns are targeted by style): the burst is
            # scaled by 2 * sigmoid(how much more she likes the piece than the average piece on offer)
            suits = 2.0 / (1.0 + np.exp(-(base[cand] - base[cand].mean())))
            logits = logits + np.where(age >= 0, p.burst * suits * np.exp(-np.minimum(np.maximum(age, 0), 50)), 0.0)
            if follow >= 0:
                logits = logits + np.where(cand == follow, p.complement_bonus + 5.0, 0.0)
            g = logits + rng.gumbel(size=len(cand))
            n_view = min(len(cand), int(np.log(max(r[3], 1e-12)) / np.log(0.7)) + 1 + int(follow >= 0), 10)
            top = np.argpartition(-g, n_view - 1)[:n_view] if n_view < len(cand) else np.arange(len(cand))
            top = top[np.argsort(-g[top], kind="stable")]
            k90 = int(0.9 * (len(logits) - 1))
            liking = logits[top] - np.partition(logits, k90)[k90]
            device = device_pref if r[4] < 0.7 else int(np.searchsorted(device_cum, r[5]))
            ref = 3 if follow >= 0 and r[6] < 0.5 else min(len(REFERRERS) - 1, int(np.searchsorted(referrer_cum,
                                                                                                  r[7])))
            log.sessions.append((u, t0, device, ref))
            s = session_id
            session_id += 1
            dur = np.exp(2.9 + 0.35 * liking + rng.normal(0, 0.45, n_view))
            dur = np.round(np.minimum(420.0, np.maximum(2.0, dur)), 1)
            steps = rng.random((n_view, 3)) < 1.0 / (1.0 + np.exp(-(liking[:, None] - FUNNEL_OFFSETS)))
            gaps = rng.integers(2, 40, (n_view, 4))
            t = t0
            carted = []
            for j in range(n_view):
                i = int(cand[top[j]])
                log.event(u, i, VIEW, t, s, float(dur[j]))
                t += int(dur[j]) + int(gaps[j, 0])
                for kind, done, gap in ((CLICK, steps[j, 0], gaps[j, 1]), (WISH, steps[j, 1], gaps[j, 2]),
                                        (CART, steps[j, 2], gaps[j, 3])):
                    if done:
                        log.event(u, i, kind, t, s)
                        t += int(gap)
                if steps[j, 2]:
                    carted.append(i)
            buy_p = tastes.propensity[u] * (1.3 if gift else 1.0) * min(1.6, intensity[day])
            if follow >= 0:
                buy_p = 0.65
            bought: list[int] = []
            if r[8] < buy_p:
                bought.append(int(cand[top[0]]))
                if len(top) > 1 and r[9] < 0.12:
                    bought.append(int(cand[top[1]]))
            removal = rng.random(len(carted))
            for i, x in zip(carted, removal, strict=True):
                if i not in bought and x < 0.35:
                    log.event(u, i, REMOVE, t, s)
                    t += 17
            if not bought:
                continue
            for i in bought:
                if i not in carted:
                    log.event(u, i, CART, t, s)
                    t += 23
            t += 60 + int(340 * r[10])
            occ = occasion_of_day[day] if gift and occasion_of_day[day] else (
                OTHER_OCCASIONS[int(r[11] * len(OTHER_OCCASIONS))] if gift else "")
            log.orders.append((u, t, s, bool(gift), occ, tuple(bought)))
            for i in bought:
                loyalty[coll[i]] = min(p.loyalty_max, loyalty[coll[i]] + p.loyalty_step)
                if i in partners and rng.random() < p.complement_p:
                    nxt = t + int((1 + rng.exponential(p.complement_days)) * DAY)
                    if nxt < end - 3 * 3600:
                        comp = partners[i][int(rng.integers(len(partners[i])))]
                        bisect.insort(queue, (nxt, comp))
    return log
