"""H&M Personalized Fashion Recommendations (Kaggle 2022) parquet files: articles, customers, transactions, images.

A folder with `articles*.parquet`, `customers*.parquet`, `transactions*.parquet` (the full competition files or a
sample such as hm_sample_ragrec) and optionally `images/<10-digit article_id>.jpg`.

Mapping and what is derived rather than read:
- products: title prod_name, description detail_desc, category product_group_name, subcategory product_type_name,
  color colour_group_name, brand "H&M", gender "women"/"men" where index_group_name says Ladieswear/Menswear
  (age_group "kids" for Baby/Children, both empty otherwise), material "" (not in the data);
  price = the article's median transaction price, in H&M's normalised units (the competition scaled prices, they
  are not a currency), 0.0 for an article never sold; image_url = absolute path of its photo when that file
  exists, else "". Pattern, perceived colours, department, index, section, garment group and product_code (the
  model an article is a variant of) are kept as attribute columns;
- customers: age, club_member_status, fashion_news_frequency kept; `fn` and `active` are the FN/Active flags as
  booleans (missing = not set); postal_code is dropped (personal, and already hashed upstream); country "unknown";
  registration/last-active = first/last purchase date. Customers without a transaction are dropped (noted);
- each transaction is an order (status completed, total = price) with one order line (quantity 1); the
  purchases come from those lines, so there is no separate purchase interaction and `interactions` is empty.
  Transaction dates are days: they become midnight UTC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.loaders.common import (
    LoaderError,
    add_note,
    customers_from_events,
    empty_interactions,
    finish_orders,
    finish_products,
    require_dir,
)

ARTICLE_COLUMNS = ("article_id", "prod_name", "product_type_name", "product_group_name", "colour_group_name",
                   "index_group_name", "detail_desc")
CUSTOMER_COLUMNS = ("customer_id",)
TRANSACTION_COLUMNS = ("t_dat", "customer_id", "article_id", "price")
# article attribute columns kept under their own (readable) names
ARTICLE_ATTRIBUTES = {
    "product_code": "product_code",
    "graphical_appearance_name": "pattern",
    "perceived_colour_value_name": "perceived_colour_value",
    "perceived_colour_master_name": "perceived_colour_master",
    "department_name": "department",
    "index_name": "index_name",
    "index_group_name": "index_group",
    "section_name": "section",
    "garment_group_name": "garment_group",
}
GENDER = {"Ladieswear": "women", "Menswear": "men"}
AGE_GROUP = {"Baby/Children": "kids"}


def load_hm(path: str | Path) -> dict[str, pd.DataFrame]:
    """Load an H&M folder (articles, customers, transactions parquet; images/) into contract tables."""
    folder = require_dir(path, "an H&M folder with articles, customers and transactions parquet files")
    articles = _read(folder, "articles", ARTICLE_COLUMNS)
    people = _read(folder, "customers", CUSTOMER_COLUMNS)
    trans = _read(folder, "transactions", TRANSACTION_COLUMNS).reset_index(drop=True)

    article_id = articles["article_id"].astype(np.int64)
    trans_article = trans["article_id"].astype(np.int64)
    unknown = ~trans_article.isin(article_id)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise LoaderError(_file(folder, "transactions"), f"row {row + 1}, column article_id: expected an article "
                          f"of the articles file, got {trans_article.iloc[row]} ({int(unknown.sum())} such rows)")
    median_price = trans.groupby(trans_article)["price"].median()

    images = folder / "images"
    image_paths = [images / f"{a:010d}.jpg" for a in article_id]
    products = pd.DataFrame({
        "product_id": article_id.astype(str).to_numpy(),
        "title": articles["prod_name"].to_numpy(),
        "description": articles["detail_desc"].fillna("").to_numpy(),
        "category": articles["product_group_name"].to_numpy(),
        "subcategory": articles["product_type_name"].to_numpy(),
        "brand": "H&M",
        "price": median_price.reindex(article_id).fillna(0.0).to_numpy(float),
        "image_url": [str(p.resolve()) if p.is_file() else "" for p in image_paths],
        "color": articles["colour_group_name"].to_numpy(),
        "gender": articles["index_group_name"].map(GENDER).to_numpy(),
        "age_group": articles["index_group_name"].map(AGE_GROUP).to_numpy(),
    })
    for src, dst in ARTICLE_ATTRIBUTES.items():
        if src in articles:
            products[dst] = articles[src].to_numpy()
    products = finish_products(products)

    when = pd.to_datetime(trans["t_dat"], utc=True)
    ids = pd.RangeIndex(len(trans)).astype(str)
    orders, order_items = finish_orders(
        pd.DataFrame({
            "order_id": ids,
            "customer_id": trans["customer_id"].astype(str).to_numpy(),
            "order_date": when,
            "order_status": "completed",
            "total_amount": trans["price"].to_numpy(float),
            "num_items": 1,
        }),
        pd.DataFrame({
            "order_item_id": ids,
            "order_id": ids,
            "product_id": trans_article.astype(str).to_numpy(),
            "quantity": 1,
            "unit_price": trans["price"].to_numpy(float),
            "final_price": trans["price"].to_numpy(float),
        }),
    )

    attrs = _customer_attributes(people)
    customers = customers_from_events(orders["customer_id"], orders["order_date"], attrs)
    order = customers["customer_id"].map(pd.Series(np.arange(len(attrs)), index=attrs.index.astype(str)))
    customers = customers.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
    tables = {"products": products, "customers": customers, "interactions": empty_interactions(),
              "orders": orders, "order_items": order_items}
    silent = len(attrs) - len(customers)
    if silent:
        add_note(tables, f"{_file(folder, 'customers')}: dropped {silent} customers without any transaction "
                         "(no event to date their registration)")
    return tables


def _customer_attributes(people: pd.DataFrame) -> pd.DataFrame:
    """Demographics indexed by customer_id; the postal code is personal data and does not leave this function."""
    attrs = pd.DataFrame(index=people["customer_id"].astype(str))
    if "age" in people:
        attrs["age"] = pd.array(pd.to_numeric(people["age"], errors="coerce").round(), dtype="Int64")
    for col in ("club_member_status", "fashion_news_frequency"):
        if col in people:
            attrs[col] = people[col].to_numpy()
    for col in ("FN", "Active"):
        if col in people:
            attrs[col.lower()] = (pd.to_numeric(people[col], errors="coerce") == 1).to_numpy()
    return attrs


def _file(folder: Path, stem: str) -> Path:
    matches = sorted(folder.glob(f"{stem}*.parquet"))
    if len(matches) != 1:
        found = ", ".join(m.name for m in matches) or "none"
        raise LoaderError(folder, f"expected exactly one {stem}*.parquet file, found {found}")
    return matches[0]


def _read(folder: Path, stem: str, required: tuple[str, ...]) -> pd.DataFrame:
    path = _file(folder, stem)
    df = pd.read_parquet(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise LoaderError(path, f"missing column(s) {', '.join(missing)} (expected the H&M {stem} columns)")
    for col in required:
        if col != "detail_desc" and df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise LoaderError(path, f"row {row + 1}, column {col}: expected a value, got an empty cell")
    return df
