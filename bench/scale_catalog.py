"""A demo boutique export grown to N products (default 100,000) for the load test's large-catalog run.

    .venv/bin/python bench/scale_catalog.py --export workspace/export --out bench/out/export_100k --products 100000

A luxury house sells SKUs: one design in several sizes, each its own product id with its own price and stock.
So every product of the demo export gets size variants (`P00001-S03`: the parent's copy and picture, another size,
a price within a few percent, 8% of them out of stock) until the catalog holds `--products` pieces. Each client's
events on a design (and her order lines) land on one of its variants, chosen by a hash of (client, design), so her
view, cart and purchase of a piece stay on the same SKU. Orders and customers are kept as they are.

Variants share the parent's picture and text on purpose: the embeddings are then read from the demo workspace's
feature cache (keyed by content), so growing the catalog costs no encoder time (encoding 100,000 new texts takes
about 40 minutes here). Scoring, guardrails, top-k and diversity still run over every one of the N pieces, which is
what the load test measures.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

SIZES_MM = [f"{s} mm" for s in range(44, 70)]   # any size label will do: only `size` and price differ


def variant_of(customer: pd.Series, parent: pd.Series, n_variants: pd.Series) -> np.ndarray:
    """Variant index (0: the parent itself) of each (client, design) pair, stable across tables."""
    keys = (customer.astype(str) + "|" + parent.astype(str)).to_numpy()
    h = np.array([int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(), "little") for k in keys],
                 dtype=np.int64)
    return h % n_variants.to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default="workspace/export", help="a demo boutique export (vendome generate)")
    ap.add_argument("--out", default="bench/out/export_100k")
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    src, out = Path(args.export), Path(args.out)
    rng = np.random.default_rng(args.seed)
    products = pd.read_csv(src / "products.csv", dtype=str, keep_default_na=False)
    n = len(products)
    if args.products < n:
        raise SystemExit(f"--products {args.products} is below the export's {n} products")
    per = np.full(n, args.products // n)
    per[: args.products - per.sum()] += 1                       # variants per design, the parent included
    rows = []
    for i, row in tqdm(list(products.iterrows()), desc="variants", unit="design"):
        price = float(row["price"])
        for v in range(per[i]):
            r = row.copy()
            if v:
                r["product_id"] = f"{row['product_id']}-S{v:02d}"
                r["size"] = SIZES_MM[v % len(SIZES_MM)]
                r["price"] = f"{round(price * (1 + rng.uniform(-0.04, 0.06)), -1):.1f}"
                r["sale_price"] = ""
                r["stock_status"] = "out_of_stock" if rng.random() < 0.08 else row["stock_status"]
            rows.append(r)
    grown = pd.DataFrame(rows)
    counts = pd.Series(per, index=products["product_id"])
    out.mkdir(parents=True, exist_ok=True)
    grown.to_csv(out / "products.csv", index=False)

    def relabel(frame: pd.DataFrame, customer: pd.Series) -> pd.DataFrame:
        v = variant_of(customer, frame["product_id"], frame["product_id"].map(counts))
        frame = frame.copy()
        frame["product_id"] = np.where(v == 0, frame["product_id"],
                                       frame["product_id"] + "-S" + pd.Series(v).map("{:02d}".format).to_numpy())
        return frame

    inter = pd.read_csv(src / "interactions.csv", dtype=str, keep_default_na=False)
    relabel(inter, inter["customer_id"]).to_csv(out / "interactions.csv", index=False)
    orders = pd.read_csv(src / "orders.csv", dtype=str, keep_default_na=False)
    items = pd.read_csv(src / "order_items.csv", dtype=str, keep_default_na=False)
    buyer = items["order_id"].map(orders.set_index("order_id")["customer_id"])
    relabel(items, buyer).to_csv(out / "order_items.csv", index=False)
    for name in ("orders.csv", "customers.csv"):
        shutil.copy(src / name, out / name)
    if (out / "images").exists() or (out / "images").is_symlink():
        (out / "images").unlink() if (out / "images").is_symlink() else shutil.rmtree(out / "images")
    (out / "images").symlink_to((src / "images").resolve(), target_is_directory=True)
    print(f"{len(grown):,} products ({n:,} designs), {len(inter):,} interactions, {len(items):,} order lines "
          f"written to {out}")


if __name__ == "__main__":
    main()
