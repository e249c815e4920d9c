"""Public-format loaders: published sizes, behavior mapping, order and splits kept, and clean contract tables.

The real datasets are read from the shared data folder (skipped when absent), each loaded once per module;
malformed-input behavior is specified on tiny files written to a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vendome.data.dataset import Dataset
from vendome.data.ingest import validate_tables
from vendome.data.loaders import LOADERS, LoaderError, load, notes
from vendome.data.schema import TABLES
from vendome.data.splits import split

SOURCES = {
    "amazon-seq": "amazon_beauty_sports/Beauty.txt",
    "mbgcn": "tmall_mbcgcn_view_cart_buy",
    "taobao": "taobao_userbehavior_sample",
    "hm": "hm_sample_ragrec",
    "sellpy": "sellpy_secondhand_fashion",
    "recbole": "movielens100k_recbole",
}


@pytest.fixture(scope="module")
def loaded(shared_data: Path):
    """format -> contract tables, each format loaded at most once for the whole module."""
    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def get(fmt: str) -> dict[str, pd.DataFrame]:
        if fmt not in cache:
            cache[fmt] = load(fmt, shared_data / SOURCES[fmt])
        return cache[fmt]

    return get


@pytest.fixture(scope="module")
def validated(loaded):
    """format -> (clean tables, problems) from ingestion's validation, computed at most once per format."""
    cache: dict[str, tuple] = {}

    def get(fmt: str):
        if fmt not in cache:
            cache[fmt] = validate_tables(loaded(fmt))
        return cache[fmt]

    return get


def per_user_items(inter: pd.DataFrame, user: str) -> list[str]:
    rows = inter[inter["customer_id"] == user].sort_values("timestamp", kind="stable")
    return rows["product_id"].tolist()


# --------------------------------------------------------------------------- every format
def test_every_format_is_registered():
    assert set(LOADERS) == set(SOURCES)


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_tables_pass_validation_with_zero_problems(validated, fmt):
    clean, problems = validated(fmt)
    assert problems.total == 0, [str(p) for p in problems[:10]]
    assert len(clean["products"]) > 0 and len(clean["customers"]) > 0


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_required_columns_are_present_and_filled(loaded, fmt):
    for name, df in loaded(fmt).items():
        for col in TABLES[name].required_columns:
            assert col in df.columns, f"{fmt}: {name}.{col} missing"
            assert df[col].notna().all(), f"{fmt}: {name}.{col} has empty cells"
        if name == "interactions" and len(df):
            assert df["interaction_id"].is_unique
            assert str(df["timestamp"].dt.tz) == "UTC"


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(LoaderError, match="unknown format 'movielens'.*amazon-seq"):
        load("movielens", tmp_path)


# --------------------------------------------------------------------------- Amazon (S3-Rec)
def test_amazon_beauty_has_the_published_size(loaded):
    tables = loaded("amazon-seq")
    assert len(tables["customers"]) == 22_363
    assert len(tables["products"]) == 12_101
    assert len(tables["interactions"]) == 198_502
    assert set(tables["interactions"]["interaction_type"]) == {"purchase"}


def test_amazon_keeps_the_file_order_of_every_sequence(loaded, shared_data):
    inter = loaded("amazon-seq")["interactions"]
    with open(shared_data / SOURCES["amazon-seq"]) as fh:
        pairs = [(user, item) for user, *items in (fh.readline().split() for _ in range(500)) for item in items]
    head = inter.iloc[: len(pairs)]
    assert list(zip(head["customer_id"], head["product_id"], strict=True)) == pairs
    steps = inter.groupby("customer_id", sort=False)["timestamp"].diff().dropna()
    assert (steps > pd.Timedelta(0)).all()  # strictly increasing per user: time order is file order


def test_amazon_sequences_survive_the_dataset_view(validated, shared_data):
    data = Dataset.from_tables(validated("amazon-seq")[0])
    with open(shared_data / SOURCES["amazon-seq"]) as fh:
        first = fh.readline().split()
    user = data.user_index[first[0]]
    assert data.products["product_id"].to_numpy()[data.sequences()[user]].tolist() == first[1:]


def test_amazon_category_is_the_first_attribute(loaded):
    products = loaded("amazon-seq")["products"].set_index("product_id")
    assert products.loc["4", "attributes"] == "1 2 3"  # "4": [1, 2, 3] in Beauty_item2attributes.json
    assert products.loc["4", "category"] == "attr_1"
    assert products.loc["4", "title"] == "item 4"


def test_amazon_malformed_line_names_file_line_and_expectation(tmp_path):
    path = tmp_path / "Tiny.txt"
    path.write_text("1 10 11 12\n2 11 x3 13\n")
    with pytest.raises(LoaderError, match=r"Tiny\.txt, line 2: expected integer ids .* got 'x3'"):
        load("amazon-seq", path)


def test_amazon_user_listed_twice_is_an_error(tmp_path):
    path = tmp_path / "Tiny.txt"
    path.write_text("1 10 11\n2 11 12\n1 13\n")
    with pytest.raises(LoaderError, match=r"line 3: expected one line per user, user 1 is already on line 1"):
        load("amazon-seq", path)


# --------------------------------------------------------------------------- MB-CGCN (Tmall)
def test_tmall_has_the_published_size_and_behaviors(loaded):
    tables = loaded("mbgcn")
    assert len(tables["customers"]) == 15_449
    assert len(tables["products"]) == 11_953
    counts = tables["interactions"].groupby(["interaction_type", "split"]).size().to_dict()
    assert counts == {("view", "train"): 858_505, ("add_to_cart", "train"): 180_027,
                      ("purchase", "train"): 92_180, ("purchase", "test"): 15_449}


def test_tmall_test_split_is_one_purchase_per_user(loaded):
    inter = loaded("mbgcn")["interactions"]
    test = inter[inter["split"] == "test"]
    assert (test["interaction_type"] == "purchase").all()
    assert test["customer_id"].is_unique and test["customer_id"].nunique() == 15_449


def test_tmall_synthetic_time_orders_views_carts_buys_then_test_buys(loaded):
    inter = loaded("mbgcn")["interactions"]
    phase = np.select([inter["split"] == "test", inter["interaction_type"] == "purchase",
                       inter["interaction_type"] == "add_to_cart"], [3, 2, 1], 0)
    span = inter.groupby(phase)["timestamp"].agg(["min", "max"])
    assert all(span["max"].iloc[p] < span["min"].iloc[p + 1] for p in range(3))


def test_tmall_given_protocol_tests_on_buy_test(validated):
    result = split(Dataset.from_tables(validated("mbgcn")[0]), "given")
    assert result.info["n_test_targets"] + result.info["dropped_repeat_targets"] == 15_449
    assert result.info["n_train"] == 858_505 + 180_027 + 92_180


# --------------------------------------------------------------------------- Taobao UserBehavior
def test_taobao_drops_the_truncated_last_row_and_says_so(loaded):
    tables = loaded("taobao")
    inter = tables["interactions"]
    assert len(inter) == 84_475  # 84,476 lines, the last one cut short
    assert any("truncated last line 84476" in n for n in notes(tables))
    assert len(tables["customers"]) == 815 and len(tables["products"]) == 55_368


def test_taobao_maps_behaviors(loaded):
    counts = loaded("taobao")["interactions"]["interaction_type"].value_counts().to_dict()
    assert counts == {"view": 75_872, "add_to_cart": 4_497, "add_to_wishlist": 2_356, "purchase": 1_750}


def test_taobao_sessions_break_after_30_minutes_of_inactivity(tmp_path):
    t0 = 1_511_900_000
    path = tmp_path / "UserBehavior.csv"
    path.write_text(f"7,100,5,pv,{t0}\n7,101,5,cart,{t0 + 600}\n7,102,6,pv,{t0 + 600 + 31 * 60}\n"
                    f"8,100,5,buy,{t0 + 60}\n")
    inter = load("taobao", path)["interactions"]
    assert inter["session_id"].tolist() == ["7-0", "7-0", "7-1", "8-0"]
    assert inter["interaction_type"].tolist() == ["view", "add_to_cart", "view", "purchase"]


def test_taobao_malformed_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("7,100,5,pv,1511900000\n7,101,5,like,1511900600\n7,102,6,pv,1511900900\n")
    with pytest.raises(LoaderError, match=r"line 2: column behavior_type: expected one of pv, cart, fav, buy"):
        load("taobao", path)


# --------------------------------------------------------------------------- H&M
def test_hm_image_paths_exist(loaded, shared_data):
    products = loaded("hm")["products"]
    with_image = products[products["image_url"] != ""]
    photos = {p.stem for p in (shared_data / SOURCES["hm"] / "images").glob("*.jpg")}
    assert len(with_image) == len(photos & {f"{int(a):010d}" for a in products["product_id"]}) > 0
    assert all(Path(u).is_absolute() and Path(u).is_file() for u in with_image["image_url"])


def test_hm_each_transaction_is_a_completed_single_line_order(loaded):
    tables = loaded("hm")
    orders, lines = tables["orders"], tables["order_items"]
    assert len(orders) == len(lines) == 5_000
    assert (orders["order_status"] == "completed").all() and (lines["quantity"] == 1).all()
    assert lines["order_id"].is_unique and set(lines["order_id"]) == set(orders["order_id"])
    assert len(tables["interactions"]) == 0  # purchases come from the order lines only


def test_hm_purchases_are_counted_once_in_the_dataset_view(validated):
    data = Dataset.from_tables(validated("hm")[0])
    assert data.describe()["behaviors"] == {"purchase": 5_000}


def test_hm_price_is_the_median_transaction_price(loaded, shared_data):
    trans = pd.read_parquet(shared_data / SOURCES["hm"] / "transactions_sample.parquet")
    article = trans["article_id"].value_counts().index[0]
    prices = trans.loc[trans["article_id"] == article, "price"]
    products = loaded("hm")["products"].set_index("product_id")
    assert products.loc[str(article), "price"] == pytest.approx(prices.median())
    assert (products["price"] >= 0).all() and products["brand"].eq("H&M").all()


def test_hm_customers_keep_demographics_but_not_the_postal_code(loaded):
    customers = loaded("hm")["customers"]
    assert "postal_code" not in customers.columns
    assert {"age", "club_member_status", "fashion_news_frequency"} <= set(customers.columns)
    assert len(customers) == 4_946


# --------------------------------------------------------------------------- Sellpy
def test_sellpy_maps_wishlist_and_order(loaded):
    counts = loaded("sellpy")["interactions"]["interaction_type"].value_counts().to_dict()
    assert counts == {"add_to_wishlist": 25_045, "purchase": 3_174}


def test_sellpy_products_come_from_the_metadata_dict(loaded):
    products = loaded("sellpy")["products"].set_index("product_id")
    boots = products.loc["009P4Tknu1"]  # {'type': 'Ankle boots', 'brand': 'Acne', 'color': ['Black'], ...}
    assert boots["title"] == "Acne Ankle boots"
    assert (boots["category"], boots["subcategory"]) == ("Shoes > Boots", "Boots")
    assert (boots["color"], boots["material"], boots["condition"]) == ("Black", "Leather", "Acceptable")
    assert boots["image_url"] == "" and boots["image_remote_url"].startswith("https://")
    assert len(products) == 26_443


def test_sellpy_customers_carry_country_and_affinities(loaded):
    customers = loaded("sellpy")["customers"]
    assert len(customers) == 100
    assert customers["location_country"].value_counts().to_dict() == {"SE": 77, "DE": 19, "NL": 2, "FI": 1,
                                                                      "unknown": 1}
    assert customers["demography_affinity"].str.startswith("{").all()


def test_sellpy_sessions_are_per_user(loaded):
    inter = loaded("sellpy")["interactions"]
    assert inter["session_id"].str.split("-").str[0].eq(inter["customer_id"]).all()
    assert inter["session_id"].nunique() > inter["customer_id"].nunique()


# --------------------------------------------------------------------------- RecBole
def test_recbole_movielens_keeps_ratings_and_drops_zip_codes(loaded):
    tables = loaded("recbole")
    inter, customers = tables["interactions"], tables["customers"]
    assert (len(customers), len(tables["products"]), len(inter)) == (943, 1_682, 100_000)
    assert set(inter["interaction_type"]) == {"purchase"} and inter["rating"].between(1, 5).all()
    assert "zip_code" not in customers.columns and {"age", "gender", "occupation"} <= set(customers.columns)


def test_recbole_item_title_and_first_genre(loaded):
    toy_story = loaded("recbole")["products"].set_index("product_id").loc["1"]
    assert (toy_story["title"], toy_story["category"]) == ("Toy Story", "Animation")


def test_recbole_header_without_types_is_an_error(tmp_path):
    (tmp_path / "tiny.inter").write_text("user_id\titem_id:token\n1\t2\n")
    with pytest.raises(LoaderError, match=r"tiny\.inter, line 1: expected a tab-separated header of name:type"):
        load("recbole", tmp_path)


def test_recbole_without_timestamps_keeps_file_order(tmp_path):
    (tmp_path / "tiny.inter").write_text("user_id:token\titem_id:token\n1\t30\n2\t10\n1\t20\n")
    inter = load("recbole", tmp_path)["interactions"]
    assert per_user_items(inter, "1") == ["30", "20"]
