"""The demo boutique: contract-shaped exports, determinism, and the hidden structure showing in the data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vendome.data.dataset import Dataset
from vendome.data.demo import END, generate
from vendome.data.demo.truth import oracle_utility, read_truth
from vendome.data.demo.vocab import MOTIFS

CONTRACT = {
    "products": ["product_id", "title", "description", "category", "subcategory", "brand", "collection", "price",
                 "sale_price", "image_url", "additional_images", "material", "color", "gender", "age_group",
                 "stone_type", "weight", "size", "stock_status", "created_date"],
    "customers": ["customer_id", "registration_date", "gender", "age", "age_group", "location_country",
                  "location_state", "location_city", "preferred_language", "income_bracket", "customer_segment",
                  "lifetime_value", "total_orders", "avg_order_value", "preferred_categories", "preferred_materials",
                  "preferred_price_range", "marketing_consent", "last_active_date", "email", "first_name",
                  "last_name", "postal_code"],
    "orders": ["order_id", "customer_id", "order_date", "order_status", "total_amount", "discount_amount",
               "payment_method", "shipping_method", "delivery_date", "num_items", "is_gift", "occasion"],
    "order_items": ["order_item_id", "order_id", "product_id", "quantity", "unit_price", "discount_applied",
                    "final_price"],
    "interactions": ["interaction_id", "customer_id", "product_id", "interaction_type", "timestamp", "session_id",
                     "interaction_duration", "device_type", "referrer_source"],
}
DAY = 86_400


@pytest.fixture(scope="module")
def boutique(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("demo") / "seed0", size="small", seed=0, progress=False)


@pytest.fixture(scope="module")
def tables(boutique) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(boutique / f"{name}.csv", keep_default_na=False, na_values=[""]) for name in CONTRACT}


@pytest.fixture(scope="module")
def truth(boutique):
    return read_truth(boutique)


@pytest.fixture(scope="module")
def purchases(tables, truth) -> pd.DataFrame:
    """Order lines of orders that were not cancelled, with product and client truth attached."""
    _, tc, tp = truth
    lines = tables["order_items"].merge(tables["orders"], on="order_id")
    lines = lines[lines["order_status"] != "cancelled"]
    lines = lines.merge(tp[["product_id", "tier", "subcategory"]], on="product_id")
    return lines.merge(tc[["customer_id", "tier"]], on="customer_id", suffixes=("", "_client"))


def _unix(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).astype("datetime64[s, UTC]").astype("int64").to_numpy()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_small_size_has_the_announced_counts(boutique, tables):
    assert 250 <= len(tables["products"]) <= 350
    assert len(tables["customers"]) == 600
    assert 12_000 <= len(tables["interactions"]) <= 25_000
    assert len(list((boutique / "images").glob("*.png"))) == len(tables["products"])


def test_every_contract_column_is_exported(tables):
    for name, columns in CONTRACT.items():
        missing = set(columns) - set(tables[name].columns)
        assert not missing, f"{name}.csv lacks {sorted(missing)}"


def test_same_seed_writes_identical_files_and_another_seed_does_not(boutique, tmp_path):
    again = generate(tmp_path / "again", size="small", seed=0, progress=False)
    other = generate(tmp_path / "other", size="small", seed=1, progress=False)
    assert _digest(again) == _digest(boutique)
    differing = {k for k, v in _digest(other).items() if _digest(boutique).get(k) != v}
    assert {"products.csv", "interactions.csv", "orders.csv", "truth.json"} <= differing


def test_unknown_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown demo size 'huge'"):
        generate(tmp_path, size="huge", progress=False)


def test_no_event_before_a_product_exists_or_after_the_window(tables):
    inter = tables["interactions"].merge(tables["products"][["product_id", "created_date"]], on="product_id")
    t = _unix(inter["timestamp"])
    assert t.max() <= END
    assert (t >= _unix(inter["created_date"])).all()
    assert _unix(tables["orders"]["order_date"]).max() <= END


def test_sold_out_products_have_no_event_after_sales_stopped(tables, truth):
    _, _, tp = truth
    stopped = tp[tp["sales_stopped"] != ""][["product_id", "sales_stopped"]]
    assert len(stopped) > 0
    inter = tables["interactions"].merge(stopped, on="product_id")
    assert (_unix(inter["timestamp"]) < _unix(inter["sales_stopped"])).all()
    status = tables["products"].set_index("product_id").loc[stopped["product_id"], "stock_status"]
    assert set(status) <= {"out_of_stock", "discontinued"}


def test_purchase_events_mirror_the_orders_that_were_not_cancelled(tables):
    lines = tables["order_items"].merge(tables["orders"], on="order_id")
    kept = lines[lines["order_status"] != "cancelled"]
    buys = tables["interactions"][tables["interactions"]["interaction_type"] == "purchase"]
    assert sorted(zip(buys["customer_id"], buys["product_id"], strict=True)) == sorted(
        zip(kept["customer_id"], kept["product_id"], strict=True))
    data = Dataset.from_tables(tables)
    assert (data.interactions["behavior"] == "purchase").sum() == (~kept["order_status"].isin(["returned"])).sum()


def test_purchases_stay_near_the_clients_price_tier(purchases):
    within = (purchases["tier"] - purchases["tier_client"]).abs() <= 1
    shuffled = np.random.default_rng(0).permutation(purchases["tier_client"].to_numpy())
    chance = (np.abs(purchases["tier"].to_numpy() - shuffled) <= 1).mean()
    assert within.mean() > chance + 0.08
    assert within.mean() > 0.8


def test_complements_are_bought_after_their_anchor_far_more_than_chance(purchases, truth):
    doc, _, _ = truth
    pairs = pd.DataFrame(doc["complementary_pairs"], columns=["anchor", "complement", "kind"])
    first = purchases.assign(t=_unix(purchases["order_date"])).groupby(["customer_id", "product_id"])["t"].min()
    bought = first.reset_index()
    n_clients = bought["customer_id"].nunique()
    anchors = pairs.merge(bought, left_on="anchor", right_on="product_id")
    later = anchors.merge(bought, left_on=["customer_id", "complement"], right_on=["customer_id", "product_id"],
                          suffixes=("_a", "_b"))
    followed = (later["t_b"] > later["t_a"]).sum()
    base = bought.groupby("product_id")["customer_id"].nunique().reindex(anchors["complement"]).fillna(0) / n_clients
    assert len(anchors) >= 20
    assert followed / len(anchors) > 5 * base.mean()
    assert followed > (later["t_b"] < later["t_a"]).sum()


def test_visual_led_clients_follow_motifs_and_text_led_clients_follow_techniques(tables, truth):
    _, tc, tp = truth
    views = tables["interactions"][tables["interactions"]["interaction_type"] == "view"]
    v = views.merge(tp[["product_id", "motif", "technique"]], on="product_id").merge(
        tc[["customer_id", "fav_motif", "fav_technique", "visual_share"]], on="customer_id")
    v = v.assign(motif_match=v["motif"] == v["fav_motif"], technique_match=v["technique"] == v["fav_technique"])
    per_client = v.groupby("customer_id")[["motif_match", "technique_match", "visual_share"]].mean()
    visual = per_client[per_client["visual_share"] > 0.7]
    textual = per_client[per_client["visual_share"] < 0.3]
    assert visual["motif_match"].mean() > visual["technique_match"].mean() + 0.05
    assert textual["technique_match"].mean() > textual["motif_match"].mean() + 0.02


def test_december_orders_are_mostly_gifts_unlike_the_rest_of_the_year(tables):
    orders = tables["orders"]
    december = orders["order_date"].str[5:7] == "12"
    gift = orders["is_gift"].astype(str) == "True"
    assert gift[december].mean() > 2.5 * gift[~december & ~orders["order_date"].str[5:7].isin(["02", "05"])].mean()
    assert (orders.loc[december & gift, "occasion"] == "christmas").mean() > 0.8  # after the 24th: other occasions


def test_cancellations_and_returns_are_a_small_share_of_orders(tables):
    share = tables["orders"]["order_status"].value_counts(normalize=True)
    assert 0.02 < share["cancelled"] < 0.09
    assert 0.04 < share["returned"] < 0.13


def test_descriptions_tell_the_technique_but_never_the_motif(tables, truth):
    _, _, tp = truth
    text = tables["products"]["description"].str.lower()
    for motif in MOTIFS:
        assert not text.str.contains(motif.rstrip("s")).any(), f"the copy names the visual-only motif {motif!r}"
    assert text.nunique() == len(text)
    by_technique = tp.set_index("product_id")["technique"]
    heritage = tables["products"]["product_id"].map(by_technique) == "heritage"
    assert text[heritage].str.contains("archiv").all()
    assert not text[~heritage].str.contains("archiv").any()


def test_images_are_pngs_that_differ_by_category_and_material(boutique, tables):
    products = tables["products"]
    pixels = {}
    for row in products.itertuples():
        with Image.open(boutique / row.image_url) as img:
            assert img.format == "PNG" and img.size == (128, 128)
            pixels[row.product_id] = np.asarray(img.convert("RGB"), dtype=float)
    background = np.array([244, 241, 236], dtype=float)

    def coverage(pids) -> np.ndarray:  # where the object is drawn, per category
        return np.mean([(np.abs(pixels[p] - background).sum(-1) > 30) for p in pids], axis=0)

    cats = {c: coverage(g["product_id"]) for c, g in products.groupby("category")}
    assert np.abs(cats["Jewelry"] - cats["Ready-to-Wear"]).mean() > 0.15
    assert np.abs(cats["Watches"] - cats["Leather Goods"]).mean() > 0.15

    def warmth(material: str) -> float:  # red minus blue of the drawn pixels of jewelry in that metal
        pids = products[(products["category"] == "Jewelry") & (products["material"] == material)]["product_id"]
        drawn = [pixels[p][(np.abs(pixels[p] - background).sum(-1) > 30)] for p in pids]
        return float(np.mean([d[:, 0].mean() - d[:, 2].mean() for d in drawn]))

    assert warmth("yellow gold") > warmth("white gold") + 60


def test_taste_truth_predicts_next_purchases_better_than_popularity(boutique, tables):
    data = Dataset.from_tables(tables)
    inter = data.interactions
    cut = END - 60 * DAY
    buys = inter[inter["behavior"] == "purchase"]
    before, after = buys[buys["timestamp"] < cut], buys[buys["timestamp"] >= cut]
    popularity = np.bincount(before["item"], minlength=data.n_items).astype(float)
    utility = oracle_utility(boutique)
    seen = before.groupby("user")["item"].apply(set)
    targets = after.groupby("user")["item"].apply(set)

    def hit_rate(scores_of) -> float:
        hits = []
        for u, wanted in targets.items():
            s = scores_of(u).copy()
            s[list(seen.get(u, set()))] = -np.inf
            hits.append(bool(set(np.argsort(-s, kind="stable")[:20]) & wanted))
        return float(np.mean(hits))

    assert len(targets) > 50
    assert hit_rate(lambda u: utility[u]) > 1.5 * hit_rate(lambda u: popularity)


def test_collections_launch_inside_the_last_month_and_sell_there(tables, truth):
    # a recent month (a test window) must hold products with no earlier history that clients buy on taste
    _, _, tp = truth
    created = _unix(tp["created_date"])
    fresh = tp.loc[created >= END - 30 * DAY, "product_id"]
    assert tp.loc[created >= END - 30 * DAY, "collection"].nunique() >= 1
    lines = tables["order_items"].merge(tables["orders"], on="order_id")
    sold = lines[lines["product_id"].isin(fresh) & (lines["order_status"] != "cancelled")]
    assert len(sold) >= 5


def test_every_technique_carries_one_label_across_categories(tables, truth):
    _, _, tp = truth
    products = tables["products"].merge(tp[["product_id", "technique"]], on="product_id")
    labels = products["title"].str.rsplit(" - ", n=1).str[1]
    assert (labels.groupby(products["technique"]).nunique() == 1).all()     # one label per technique ...
    assert labels.groupby(products["technique"]).first().nunique() == products["technique"].nunique()  # ... each own
    assert products.groupby("technique")["category"].nunique().max() > 1


def test_the_motif_is_drawn_bold_enough_to_see(boutique, tables, truth):
    _, _, tp = truth
    jewels = tables["products"].merge(tp[["product_id", "motif"]], on="product_id")
    jewels = jewels[jewels["category"] == "Jewelry"]
    background = np.array([244, 241, 236], dtype=float)

    def texture(row) -> float:  # spread of the drawn pixels' brightness: flat metal vs an inked pattern
        with Image.open(boutique / row.image_url) as img:
            px = np.asarray(img.convert("RGB"), dtype=float)
        drawn = px[np.abs(px - background).sum(-1) > 30]
        return float(drawn.mean(-1).std())

    spread = {m: np.mean([texture(r) for r in g.itertuples()]) for m, g in jewels.groupby("motif")}
    assert min(v for m, v in spread.items() if m != "plain") > 2 * spread["plain"]
