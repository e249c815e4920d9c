"""The demo boutique: a believable luxury house with a year of clients, orders and clicks, and the hidden truth.

`generate(out_dir)` writes the exports a house would hand over (products, customers, orders, order_items,
interactions, reviews and client_notes as CSV, one PNG per product) plus `truth.json`, `truth_customers.csv`,
`truth_products.csv` and `truth_motivations.csv`, which models never read and tests and benchmarks do. Output is
byte-identical for a seed: every random draw comes from seeded PCG64 streams (one per stage) and every date is
anchored on the window ending 2026-10-31.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.demo import behavior, catalog, customers, images, tables, texts, truth
from vendome.data.demo.vocab import (
    CATEGORIES,
    CATEGORY_VISUAL_SHARE,
    COLORS,
    LINES,
    MATERIALS,
    MOTIFS,
    STONES,
    TECHNIQUES,
    TIER_BOUNDS,
    TIERS,
)

__all__ = ["SIZES", "START", "END", "Size", "generate"]

START = int(pd.Timestamp("2025-11-01T00:00:00Z").timestamp())
END = int(pd.Timestamp("2026-10-31T23:59:59Z").timestamp())


@dataclass(frozen=True)
class Size:
    products: int
    customers: int
    collection_scale: float  # number of collections relative to the full house


# "large": the full house with 3.4x the clients, for tests of small effects (a 30-day test of the full demo has 785
# test users, too few for a paired test to see +12% NDCG@10; see bench/RESULTS.md, CAMMSR)
SIZES = {"full": Size(3200, 10_500, 1.0), "small": Size(300, 600, 0.25), "large": Size(3200, 36_000, 1.0)}


def generate(out_dir: str | Path, size: str = "full", seed: int = 0, progress: bool = True) -> Path:
    """Write the demo boutique of the given size into `out_dir` (created if needed) and return its path."""
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; expected one of {', '.join(SIZES)}")
    from tqdm.auto import tqdm

    spec = SIZES[size]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # a stream per stage; spawn keys are positional, so a stage added at the end leaves the others' draws as they were
    streams = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(7)]
    rng_cat, rng_cust, rng_sim, rng_orders, rng_img, rng_crm, rng_text = streams
    t_begin = time.perf_counter()
    steps = tqdm(total=4, desc=f"demo boutique ({size})", disable=not progress)

    items, coll = catalog.build_catalog(rng_cat, spec.products, spec.collection_scale, START, END)
    steps.update()
    frame, tastes, priors = customers.build_customers(rng_cust, spec.customers, coll, START, END)
    steps.update()
    it = truth.item_arrays(_truth_products(items))
    log = behavior.simulate(rng_sim, items, it, frame, tastes, START, END, progress=progress)
    steps.update()
    orders, order_items = tables.order_tables(rng_orders, log, items, frame, tastes, END)
    inter, ev_time, ev_user = tables.interactions_table(log, orders, order_items, items, frame)
    crm = tables.customers_table(rng_crm, frame, tastes, orders, ev_time, ev_user, START, END)
    if len(ev_time) and int(ev_time.max()) > END:
        raise RuntimeError("demo generator produced an event after the end of the window")
    catalog_table = tables.products_table(items)
    planted = texts.motivations(frame, tastes, orders)
    reviews, notes = texts.client_texts(rng_text, frame, planted, orders, order_items, catalog_table, START, END)
    catalog_table.to_csv(out / "products.csv", index=False)
    reviews.to_csv(out / "reviews.csv", index=False)
    notes.to_csv(out / "client_notes.csv", index=False)
    crm.to_csv(out / "customers.csv", index=False)
    orders.drop(columns="_user").to_csv(out / "orders.csv", index=False)
    order_items.to_csv(out / "order_items.csv", index=False)
    inter.to_csv(out / "interactions.csv", index=False)
    steps.update()
    steps.close()
    images.write_images(items, out / "images", rng_img, progress=progress)

    tp = _truth_products(items)
    tp.to_csv(out / "truth_products.csv", index=False)
    tc = pd.concat([frame[["customer_id", "gender", "age_group", "location_country"]], tastes.table()], axis=1)
    tc.to_csv(out / "truth_customers.csv", index=False)
    planted.to_csv(out / "truth_motivations.csv", index=False)
    counts = {"products": len(items), "customers": len(crm), "orders": len(orders), "order_items": len(order_items),
              "interactions": len(inter), "sessions": len(log.sessions), "reviews": len(reviews),
              "client_notes": len(notes),
              "interactions_by_type": {k: int(v) for k, v in inter["interaction_type"].value_counts().sort_index()
                                       .items()}}
    doc = _truth_doc(seed, size, items, coll, priors, counts)
    (out / "truth.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if progress:
        tqdm.write(f"demo boutique ({size}, seed {seed}) written to {out} in {time.perf_counter() - t_begin:.1f} s: "
                   f"{counts['products']} products, {counts['customers']} customers, "
                   f"{counts['interactions']} interactions, {counts['orders']} orders")
    return out


def _truth_products(items: pd.DataFrame) -> pd.DataFrame:
    cols = ["product_id", "category", "subcategory", "collection", "coll_idx", "set_id", "cat_idx", "mat_idx",
            "stone_idx", "color_idx", "motif", "motif_idx", "technique", "tech_idx", "gender", "tier", "bias"]
    tp = items[cols].copy()
    tp["bias"] = tp["bias"].round(4)
    tp["created_date"] = tables.iso(items["created"].to_numpy(), date_only=True)
    tp["launched_in_window"] = items["launched_in_window"].to_numpy()
    stop = items["stop"].to_numpy()
    tp["sales_stopped"] = np.where(stop <= END, tables.iso(np.minimum(stop, END), date_only=True), "")
    return tp


def _truth_doc(seed: int, size: str, items: pd.DataFrame, coll: pd.DataFrame, priors: dict, counts: dict) -> dict:
    pairs = catalog.complement_pairs(items)
    launched = coll["launch"].to_numpy()
    return {
        "generator": "vendome.data.demo", "seed": seed, "size": size,
        "window": {"start": tables.iso(np.array([START]))[0], "end": tables.iso(np.array([END]))[0]},
        "counts": counts,
        "params": truth.params_dict(),
        "utility": ("u = bias + material*taste_material + stone*taste_stone + color*taste_color + style*(w*taste_motif "
                    "+ (1-w)*taste_technique) - tier_up*max(0, tier_item - tier_client) - tier_down*max(0, "
                    "tier_client - tier_item) + gender_mismatch*[item gender is the other one] + fav_collection*"
                    "[favourite collection]; w = customer_visual_weight*visual_share + (1-customer_visual_weight)*"
                    "category_visual_share; see vendome.data.demo.truth.utility"),
        "attributes": {"visual_only": ["motif"], "text_only": ["technique"], "both": ["material", "color",
                                                                                      "stone_type"],
                       "motifs": list(MOTIFS), "techniques": list(TECHNIQUES), "materials": list(MATERIALS),
                       "stones": list(STONES), "colors": list(COLORS), "categories": list(CATEGORIES)},
        "category_visual_share": CATEGORY_VISUAL_SHARE,
        "price_tiers": {"names": list(TIERS), "upper_bounds_eur": {k: list(v) for k, v in TIER_BOUNDS.items()},
                        "customer_tier_shares": [*customers.TIER_SHARES, round(1 - sum(customers.TIER_SHARES), 2)]},
        "lines": [{"key": line.key, "brand": line.brand, "share": line.share} for line in LINES],
        "demographics": {
            "gender_category": customers.GENDER_CATEGORY, "age_category": customers.AGE_CATEGORY,
            "age_material": customers.AGE_MATERIAL, "age_technique": customers.AGE_TECHNIQUE,
            "country_material": customers.COUNTRY_MATERIAL, "country_stone": customers.COUNTRY_STONE,
            "young_age_groups": list(customers.YOUNG), "old_age_groups": list(customers.OLD), **priors,
        },
        "collections": [{"index": int(i), "collection": r.collection, "line": r.line, "brand": r.brand,
                         "launch_date": tables.iso(np.array([r.launch]), date_only=True)[0],
                         "launched_in_window": bool(r.launch >= START),
                         "signature_motif": MOTIFS[r.signature_motif],
                         "signature_technique": TECHNIQUES[r.signature_technique]}
                        for i, r in enumerate(coll.itertuples())],
        "new_arrivals": {
            "launched_in_window": coll.loc[launched >= START, "collection"].tolist(),
            "launched_in_last_two_months": coll.loc[launched >= END - 61 * 86_400, "collection"].tolist(),
        },
        "complementary_pairs": pairs[["anchor", "complement", "kind"]].to_numpy().tolist(),
        "seasons": [asdict(s) for s in behavior.SEASONS],
        "base_gift_p": behavior.BASE_GIFT_P,
        "gift_category_shift": dict(zip(CATEGORIES, behavior.GIFT_CATEGORY.tolist(), strict=True)),
        "behaviours": {
            "taste": "items viewed are drawn by softmax(u + burst + loyalty) within a category drawn by the client's "
                     "category taste; the purchase is the most liked piece of the visit",
            "funnel": "view (duration grows with liking) -> click -> wishlist / cart -> sometimes remove -> purchase",
            "collection_loyalty": "each purchase adds loyalty_step (up to loyalty_max) to its collection",
            "complements": "with complement_p, a necklace or bag purchase is followed after 1 + Exp(complement_days) "
                           "days by a visit that shows (and mostly sells) a complement of the same set",
            "gifts": "a visit is a gift search with the day's gift chance; the recipient's gender replaces the "
                     "client's and personal taste counts gift_taste times",
            "new_arrivals": "collections launched during the window get burst*2*sigmoid(u - mean u)"
                            "*exp(-age/burst_days) attention (u: the client's utility of the piece)",
            "stock": "out_of_stock and discontinued products have no event after their sales_stopped date",
            "orders": "about 5% cancelled and 8% returned; completed and returned orders also log purchase events",
            "activity": "expected visits per client ~ LogNormal(1.32, 0.95) for a full year, 8% cold clients",
        },
    }
