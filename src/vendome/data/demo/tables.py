"""The simulated year turned into the six exports a house would hand over (DESIGN §2 column names).

Orders get statuses (about 5% cancelled, 8% returned), shipping and delivery dates; completed and returned orders
also appear as `purchase` rows in the click stream, as a real tag manager would log them. The CRM table is a
snapshot at export time: its aggregates (orders, lifetime value, segment) include the whole window plus the
purchases a client made before it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vendome.data.demo.behavior import DEVICES, EVENT_TYPES, REFERRERS, Log
from vendome.data.demo.customers import Tastes
from vendome.data.demo.vocab import CATEGORIES, MATERIALS, TIERS

DAY = 86_400
PRODUCT_COLUMNS = ["product_id", "title", "description", "category", "subcategory", "brand", "collection", "price",
                   "sale_price", "image_url", "additional_images", "material", "color", "gender", "age_group",
                   "stone_type", "weight", "size", "stock_status", "created_date", "price_tier"]
SHIPPING = {"standard": (3, 7), "express": (1, 3), "boutique_pickup": (2, 5), "white_glove": (1, 4)}
TIER_SPEND = (600.0, 2500.0, 8000.0, 40000.0)  # typical basket of a tier, for purchases before the window


def iso(ts: np.ndarray, date_only: bool = False) -> np.ndarray:
    """Unix seconds as ISO-8601 UTC strings ('2026-03-01T10:15:00Z') or dates ('2026-03-01')."""
    s = np.datetime_as_string(np.asarray(ts, dtype=np.int64).astype("datetime64[s]"), unit="D" if date_only else "s")
    return s if date_only else np.char.add(s, "Z")


def products_table(items: pd.DataFrame) -> pd.DataFrame:
    out = items.copy()
    out["image_url"] = "images/" + out["product_id"] + ".png"
    out["additional_images"] = ""
    out["age_group"] = "adult"
    out["created_date"] = iso(out["created"].to_numpy(), date_only=True)
    out["price_tier"] = [TIERS[t] for t in out["tier"]]
    return out[PRODUCT_COLUMNS]


def order_tables(rng: np.random.Generator, log: Log, items: pd.DataFrame, customers: pd.DataFrame, tastes: Tastes,
                 end: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """orders and order_items, ids in time order."""
    raw = sorted(log.orders, key=lambda o: (o[1], o[0]))
    price = items["price"].to_numpy(float)
    country = customers["location_country"].to_numpy()
    pids = items["product_id"].to_numpy()
    cids = customers["customer_id"].to_numpy()
    orders, lines = [], []
    for n, (u, t, _s, is_gift, occasion, bought) in enumerate(raw):
        oid = f"O{n + 1:07d}"
        r = rng.random()
        status = "cancelled" if r < 0.05 else "returned" if r < 0.13 else "delivered"
        tier = int(tastes.tier[u])
        ship = "white_glove" if tier == 3 and rng.random() < 0.6 else str(
            rng.choice(["standard", "express", "boutique_pickup"], p=[0.5, 0.3, 0.2]))
        lo, hi = SHIPPING[ship]
        delivery = t + int(rng.integers(lo, hi + 1)) * DAY
        if status == "delivered" and delivery > end:
            status = "shipped" if t < end - DAY else "processing"
        if country[u] == "CN" and rng.random() < 0.6:
            pay = str(rng.choice(["alipay", "wechat_pay"]))
        else:
            pay = str(rng.choice(["credit_card", "amex", "paypal", "apple_pay", "bank_transfer"],
                                 p=[0.45, 0.2, 0.12, 0.15, 0.08]))
        private_sale = tier >= 2 and rng.random() < 0.06
        total = disc_total = 0.0
        for i in bought:
            qty = 2 if price[i] < 800 and is_gift and rng.random() < 0.1 else 1
            disc = round(0.1 * price[i] * qty, 2) if private_sale else 0.0
            final = price[i] * qty - disc
            lines.append({"order_item_id": f"{oid}-{len(lines) + 1:08d}", "order_id": oid,
                          "product_id": pids[i], "quantity": qty, "unit_price": price[i],
                          "discount_applied": disc, "final_price": final})
            total += final
            disc_total += disc
        orders.append({"order_id": oid, "customer_id": cids[u], "order_ts": t,
                       "order_status": status, "total_amount": round(total, 2), "discount_amount": round(disc_total, 2),
                       "payment_method": pay, "shipping_method": ship,
                       "delivery_ts": delivery if status != "cancelled" else -1, "num_items": len(bought),
                       "is_gift": is_gift, "occasion": occasion, "_user": u})
    o = pd.DataFrame(orders)
    o.insert(2, "order_date", iso(o["order_ts"].to_numpy()))
    o["delivery_date"] = np.where(o["delivery_ts"] >= 0, iso(np.maximum(o["delivery_ts"].to_numpy(), 0), True), "")
    o = o.drop(columns=["order_ts", "delivery_ts"])
    cols = ["order_id", "customer_id", "order_date", "order_status", "total_amount", "discount_amount",
            "payment_method", "shipping_method", "delivery_date", "num_items", "is_gift", "occasion", "_user"]
    return o[cols], pd.DataFrame(lines)


def interactions_table(log: Log, orders: pd.DataFrame, order_items: pd.DataFrame, items: pd.DataFrame,
                       customers: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The click stream, with a purchase row per line of every order that was not cancelled.

    Also returns each row's unix time and user index (for the CRM's last_active_date).
    """
    user = np.array(log.ev_user, dtype=np.int64)
    item = np.array(log.ev_item, dtype=np.int64)
    kind = np.array(log.ev_type, dtype=np.int64)
    t = np.array(log.ev_time, dtype=np.int64)
    sess = np.array(log.ev_session, dtype=np.int64)
    dur = np.array(log.ev_duration, dtype=float)
    raw = sorted(log.orders, key=lambda o: (o[1], o[0]))
    kept = orders["order_status"].to_numpy() != "cancelled"
    pu, pi, pt, ps = [], [], [], []
    for (u, ts, s, _g, _o, bought), keep in zip(raw, kept, strict=True):
        if keep:
            for i in bought:
                pu.append(u)
                pi.append(i)
                pt.append(ts)
                ps.append(s)
    user = np.concatenate([user, pu]).astype(np.int64)
    item = np.concatenate([item, pi]).astype(np.int64)
    kind = np.concatenate([kind, np.full(len(pu), EVENT_TYPES.index("purchase"))]).astype(np.int64)
    t = np.concatenate([t, pt]).astype(np.int64)
    seq = np.arange(len(t))
    sess = np.concatenate([sess, ps]).astype(np.int64)
    dur = np.concatenate([dur, np.full(len(pu), np.nan)])
    order = np.lexsort((seq, sess, t))
    sess_info = np.array([(d, r) for _u, _t, d, r in log.sessions], dtype=np.int64).reshape(-1, 2)
    s_sorted = sess[order]
    return pd.DataFrame({
        "interaction_id": [f"E{k + 1:08d}" for k in range(len(order))],
        "customer_id": customers["customer_id"].to_numpy()[user[order]],
        "product_id": items["product_id"].to_numpy()[item[order]],
        "interaction_type": np.array(EVENT_TYPES)[kind[order]],
        "timestamp": iso(t[order]),
        "session_id": np.char.add("S", np.char.zfill(s_sorted.astype(str), 7)),
        "interaction_duration": dur[order],
        "device_type": np.array(DEVICES)[sess_info[s_sorted, 0]],
        "referrer_source": np.array(REFERRERS)[sess_info[s_sorted, 1]],
    }), t[order], user[order]


def customers_table(rng: np.random.Generator, frame: pd.DataFrame, tastes: Tastes, orders: pd.DataFrame,
                    event_time: np.ndarray, event_user: np.ndarray, start: int, end: int) -> pd.DataFrame:
    """The CRM export at the end of the window (aggregates include purchases made before it)."""
    n = len(frame)
    reg = frame["registration"].to_numpy(np.int64)
    years_before = np.maximum(0, start - reg) / (365 * DAY)
    prior_orders = rng.poisson(tastes.activity * tastes.propensity * years_before * 0.6)
    prior_spend = prior_orders * np.array(TIER_SPEND)[tastes.tier] * rng.lognormal(0, 0.3, n)
    done = orders[orders["order_status"] != "cancelled"]
    kept = done[done["order_status"] != "returned"]
    n_orders = np.bincount(done["_user"].to_numpy(), minlength=n) + prior_orders
    spend = np.bincount(kept["_user"].to_numpy(), weights=kept["total_amount"].to_numpy(), minlength=n) + prior_spend
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, event_user, event_time)
    last = np.maximum(last, reg)

    recent = reg >= end - 180 * DAY
    tier = tastes.tier
    segment = np.where(recent, "new", np.where((spend >= 100_000) | ((tier >= 2) & (n_orders >= 10)), "VIC",
                       np.where(n_orders >= 6, "loyal", np.where((tier == 0) & (n_orders >= 1), "aspirational",
                                                                  "occasional"))))
    declared_tier = np.clip(tier + np.where(rng.random(n) < 0.15, rng.choice([-1, 1], n), 0), 0, 3)

    def declared(m: np.ndarray, vocab: tuple[str, ...]) -> list[str]:
        noisy = m + rng.normal(0, 0.5, m.shape)
        top = np.argsort(-noisy, axis=1, kind="stable")[:, :2]
        return ["|".join(vocab[j] for j in row) for row in top]

    out = pd.DataFrame({
        "customer_id": frame["customer_id"],
        "registration_date": iso(reg, date_only=True),
        "gender": frame["gender"], "age": frame["age"], "age_group": frame["age_group"],
        "location_country": frame["location_country"], "location_state": frame["location_state"],
        "location_city": frame["location_city"], "preferred_language": frame["preferred_language"],
        "income_bracket": frame["income_bracket"], "customer_segment": segment,
        "lifetime_value": np.round(spend, 2), "total_orders": n_orders,
        "avg_order_value": np.round(np.where(n_orders > 0, spend / np.maximum(n_orders, 1), 0.0), 2),
        "preferred_categories": declared(tastes.category, CATEGORIES),
        "preferred_materials": declared(tastes.material, MATERIALS),
        "preferred_price_range": [TIERS[t] for t in declared_tier],
        "marketing_consent": frame["marketing_consent"],
        "last_active_date": iso(last, date_only=True),
        "email": frame["email"], "first_name": frame["first_name"], "last_name": frame["last_name"],
        "postal_code": frame["postal_code"],
    })
    return out
