"""The catalog: lines, collections with launch dates, sets of matching pieces, and the products themselves.

A product carries what a PIM exports (title, material, price, stock...) plus the hidden attributes the truth
records: its motif (drawn only), its technique (written only), its set (the pieces that complete it), its tier and
its intrinsic popularity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vendome.data.demo import copywriting
from vendome.data.demo.vocab import (
    BASE_PRICE,
    CATEGORIES,
    COLLECTION_NAMES,
    COLORS,
    LINES,
    MATERIAL_PRICE,
    MATERIALS,
    METAL_COLOR,
    MOTIFS,
    STONE_COLOR,
    STONE_PRICE,
    STONES,
    SUBCATEGORY_MATERIALS,
    TECHNIQUES,
    THEMES,
    TIER_BOUNDS,
    Line,
)

DAY = 86_400
FABRIC_COLORS = (("black", 4), ("ivory", 2), ("navy", 2), ("camel", 2), ("burgundy", 1.2), ("red", 1.2),
                 ("blush", 1.2), ("green", 1), ("blue", 1), ("grey", 1.5), ("white", 1))
DIAL_COLORS = (("black", 3), ("blue", 2), ("white", 2.5), ("silver", 2), ("green", 1), ("grey", 1))
BAGS = ("handbag", "tote", "clutch")
# Anchor subcategory -> the pieces that complete it when they belong to the same set.
COMPLEMENTS = {"necklace": ("earrings", "bracelet"), "handbag": ("wallet",), "tote": ("wallet",),
               "clutch": ("wallet",)}


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    names = [o[0] for o in options]
    w = np.array([o[1] for o in options], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def build_collections(rng: np.random.Generator, scale: float, start: int, end: int) -> pd.DataFrame:
    """Collections of every line with launch dates; a few launch inside the window, some in its last two months."""
    names = [COLLECTION_NAMES[i] for i in rng.permutation(len(COLLECTION_NAMES))]
    rows = []
    for line in LINES:
        for _ in range(max(1, round(line.n_collections * scale))):
            in_window = rng.random() < 0.18
            if in_window:
                launch = start + int(rng.integers(20, (end - start) // DAY - 70)) * DAY
            else:
                launch = int(pd.Timestamp("2014-01-01", tz="UTC").timestamp()) + int(
                    rng.integers(0, (start - 30 * DAY - 1_388_534_400) // DAY)) * DAY
            rows.append({
                "collection": names.pop(), "line": line.key, "brand": line.brand, "launch": launch,
                "main_cat": CATEGORIES.index(line.subcategories[0][0]),
                "signature_motif": int(rng.integers(len(MOTIFS))), "signature_technique": int(rng.integers(
                    len(TECHNIQUES))), "theme": THEMES[int(rng.integers(len(THEMES)))],
                "weight": float(rng.lognormal(0.0, 0.5)), "bias": float(rng.normal(0.0, 0.4)),
            })
    coll = pd.DataFrame(rows)
    # New arrivals: a collection launches every two weeks over the last ten weeks, so any recent month (a
    # validation window as well as a test window) holds products with little or no history: content similarity
    # can find them, popularity cannot.
    n_recent = max(2, round(5 * scale))
    candidates = coll.index[coll["line"] != "haute_joaillerie"].to_numpy()
    for k, i in enumerate(rng.choice(candidates, size=n_recent, replace=False)):
        coll.loc[i, "launch"] = end - 14 * (n_recent - k) * DAY - (end % DAY)
    coll["launch"] = coll["launch"] - coll["launch"] % DAY
    return coll


def build_catalog(rng: np.random.Generator, n_products: int, scale: float, start: int, end: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The product table (with hidden attributes) and the collections it belongs to."""
    coll = build_collections(rng, scale, start, end)
    rows: list[dict] = []
    set_counter = 0
    for line in LINES:
        quota = round(line.share * n_products)
        mine = coll.index[coll["line"] == line.key].to_numpy()
        w = coll.loc[mine, "weight"].to_numpy()
        made = 0
        while made < quota:
            ci = int(mine[rng.choice(len(mine), p=w / w.sum())])
            pieces = _design_set(rng, line, coll.loc[ci])
            set_id = ""
            if len(pieces) > 1:
                set_counter += 1
                set_id = f"SET{set_counter:04d}"
            for p in pieces:
                p.update(collection=coll.at[ci, "collection"], coll_idx=ci, line=line.key, brand=line.brand,
                         set_id=set_id)
                rows.append(p)
            made += len(pieces)
    items = pd.DataFrame(rows)
    n = len(items)
    items.insert(0, "product_id", [f"P{i + 1:05d}" for i in range(n)])
    items["cat_idx"] = items["category"].map({c: i for i, c in enumerate(CATEGORIES)}).astype(int)
    items["mat_idx"] = items["material"].map({m: i for i, m in enumerate(MATERIALS)}).astype(int)
    items["stone_idx"] = items["stone_type"].map({s: i for i, s in enumerate(STONES)}).astype(int)
    items["color_idx"] = items["color"].map({c: i for i, c in enumerate(COLORS)}).astype(int)
    items["motif"] = [MOTIFS[i] for i in items["motif_idx"]]
    items["technique"] = [TECHNIQUES[i] for i in items["tech_idx"]]
    _price(rng, items)
    _dates_and_stock(rng, items, coll, start, end)
    items["bias"] = rng.normal(0.0, 0.8, n) + coll["bias"].to_numpy()[items["coll_idx"].to_numpy()]
    items["theme"] = coll["theme"].to_numpy()[items["coll_idx"].to_numpy()]
    items["title"] = [copywriting.title(r) for r in items.itertuples()]
    items["description"] = [copywriting.description(r, rng) for r in items.itertuples()]
    weight_size = [copywriting.measures(r, rng) for r in items.itertuples()]
    items["weight"] = [w for w, _ in weight_size]
    items["size"] = [s for _, s in weight_size]
    return items, coll


def _design_set(rng: np.random.Generator, line: Line, coll: pd.Series) -> list[dict]:
    """One design: a single piece, or a set of matching pieces sharing material, stone, colour and motif."""
    cat, sub, _ = line.subcategories[int(rng.choice(
        len(line.subcategories), p=(w := np.array([s[2] for s in line.subcategories])) / w.sum()))]
    material = _pick(rng, SUBCATEGORY_MATERIALS.get(sub, line.materials[cat]))
    stone = _pick(rng, line.stones) if cat in ("Jewelry", "Watches") else "none"
    motif = int(coll["signature_motif"]) if rng.random() < 0.6 else int(rng.integers(len(MOTIFS)))
    tech = int(coll["signature_technique"]) if rng.random() < 0.6 else int(rng.integers(len(TECHNIQUES)))
    if cat == "Jewelry":
        color = STONE_COLOR[stone] if stone != "none" else METAL_COLOR[material]
        k = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.25, 0.3, 0.2]))
        subs = ["necklace"] if k > 1 else [sub]
        if k > 1:
            subs += [str(s) for s in rng.choice(["earrings", "bracelet", "ring"], size=k - 1, replace=False)]
    elif cat == "Watches":
        color = _pick(rng, DIAL_COLORS)
        subs = [sub]
    else:
        color = _pick(rng, FABRIC_COLORS)
        subs = [sub]
        if cat == "Leather Goods" and sub in BAGS and rng.random() < 0.6:
            subs += ["wallet"] + (["belt"] if rng.random() < 0.3 and line.key == "maroquinerie" else [])
    out = []
    for s in subs:
        out.append({"category": cat, "subcategory": s, "material": material, "stone_type": stone, "color": color,
                    "motif_idx": motif, "tech_idx": tech, "gender": _gender(rng, cat, s)})
    if len(out) > 1:  # a set is sold to one client: one gender
        for p in out[1:]:
            p["gender"] = out[0]["gender"]
    return out


def _gender(rng: np.random.Generator, cat: str, sub: str) -> str:
    if sub in ("dress", "blouse", "pumps", "clutch", "jewelry watch"):
        return "women"
    table = {"Jewelry": (0.86, 0.04), "Watches": (0.38, 0.45), "Leather Goods": (0.6, 0.2),
             "Ready-to-Wear": (0.6, 0.4), "Shoes": (0.6, 0.32), "Accessories": (0.5, 0.15)}
    if sub in ("wallet", "belt"):
        women, men = 0.4, 0.35
    else:
        women, men = table[cat]
    r = rng.random()
    return "women" if r < women else "men" if r < women + men else "unisex"


def _price(rng: np.random.Generator, items: pd.DataFrame) -> None:
    """Prices from subcategory, material, stone and line; tiers from the category's price bounds."""
    factor = {line.key: line.price_factor for line in LINES}
    raw = (items["subcategory"].map(BASE_PRICE) * items["material"].map(MATERIAL_PRICE)
           * items["stone_type"].map(STONE_PRICE) * items["line"].map(factor)).to_numpy(float)
    spread = np.where(items["line"].to_numpy() == "haute_joaillerie", 0.5, 0.22)
    raw = raw * np.exp(rng.normal(0.0, 1.0, len(items)) * spread)
    step = np.select([raw < 1000, raw < 10_000, raw < 100_000], [10, 50, 500], 5000)
    price = np.maximum(step, np.round(raw / step) * step)
    items["price"] = price
    bounds = items["category"].map(TIER_BOUNDS)
    items["tier"] = [int(np.searchsorted(b, p, side="right")) for b, p in zip(bounds, price, strict=True)]
    on_sale = (rng.random(len(items)) < 0.06) & items["category"].isin(["Ready-to-Wear", "Shoes", "Accessories"])
    items["sale_price"] = np.where(on_sale, np.round(price * 0.7 / 10) * 10, np.nan)


def _dates_and_stock(rng: np.random.Generator, items: pd.DataFrame, coll: pd.DataFrame, start: int, end: int) -> None:
    """created_date from the collection's launch; stock at export time, with the date sales stopped when they did."""
    launch = coll["launch"].to_numpy()[items["coll_idx"].to_numpy()]
    n = len(items)
    late_addition = rng.random(n) < 0.35  # old collections keep receiving new pieces
    last_day = end - 75 * DAY
    span = np.maximum(0, last_day - launch)
    added = launch + (rng.random(n) * span).astype(np.int64) * late_addition
    recent = launch >= start
    added = np.where(recent, launch + rng.integers(0, 5, n) * DAY, added)
    created = added - added % DAY
    items["created"] = created
    items["launched_in_window"] = launch >= start
    r = rng.random(n)
    status = np.full(n, "in_stock", dtype=object)
    stop = np.full(n, end + 1, dtype=np.int64)
    old = created < start - 180 * DAY
    disc = old & (r < 0.035)
    status[disc] = "discontinued"
    stop[disc] = start + rng.integers(30, 240, int(disc.sum())) * DAY
    oos = (~disc) & (r >= 0.035) & (r < 0.085) & (created < end - 150 * DAY)
    status[oos] = "out_of_stock"
    stop[oos] = end - end % DAY - rng.integers(31, 130, int(oos.sum())) * DAY  # at midnight, as sales_stopped says
    low = (status == "in_stock") & (r >= 0.085) & (r < 0.19)
    status[low] = "low_stock"
    items["stock_status"] = status
    items["stop"] = stop


def complement_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """(anchor, complement) product pairs of the same set: necklace -> earrings/bracelet, bag -> wallet."""
    rows = []
    in_set = items[items["set_id"] != ""]
    for set_id, grp in in_set.groupby("set_id", sort=True):
        subs = grp["subcategory"].tolist()
        pids = grp["product_id"].tolist()
        for a_sub, a_pid in zip(subs, pids, strict=True):
            for b_sub, b_pid in zip(subs, pids, strict=True):
                if b_sub in COMPLEMENTS.get(a_sub, ()):
                    rows.append({"anchor": a_pid, "complement": b_pid, "set_id": set_id,
                                 "kind": f"{a_sub}->{b_sub}"})
    return pd.DataFrame(rows, columns=["anchor", "complement", "set_id", "kind"])
