"""A small, realistic luxury-boutique export: fine jewelry, a watch, five clients, their orders and clicks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOW = pd.Timestamp("2024-07-01T12:00:00Z")

CUSTOMER_PII = {
    "email": ["camille.durand@example.fr", "sofia.rossi@example.it", "hannah.meyer@example.de",
              "olivia.smith@example.co.uk", "yuki.tanaka@example.jp"],
    "first_name": ["Camille", "Sofia", "Hannah", "Olivia", "Yuki"],
    "last_name": ["Durand", "Rossi", "Meyer", "Smith", "Tanaka"],
    "postal_code": ["75008", "20121", "80331", "SW1X 7XL", "150-0001"],
    "phone": ["+33 1 42 65 11 20", "+39 02 7601 1234", "+49 89 2424 7788", "+44 20 7235 9999", "+81 3 5766 0000"],
}


def luxury_tables() -> dict[str, pd.DataFrame]:
    """The contract tables with native types (what a Parquet export carries)."""
    products = pd.DataFrame({
        "product_id": [f"P{i:03d}" for i in range(1, 11)],
        "title": ["Solitaire Diamond Ring", "Eternity Band Ring", "Emerald Cocktail Ring", "Pearl Strand Necklace",
                  "Diamond Riviere Necklace", "Gold Chain Necklace", "Automatic Chronograph Watch",
                  "Sapphire Drop Earrings", "Tennis Bracelet", "Signet Ring"],
        "description": ["1 ct round brilliant on platinum", "Full circle of diamonds", "Colombian emerald",
                        "Akoya pearls, 45 cm", "Graduated diamonds", "18k yellow gold", "Steel, 42 mm",
                        "Ceylon sapphires", "Diamonds on white gold", "Engravable yellow gold"],
        "category": ["rings", "rings", "rings", "necklaces", "necklaces", "necklaces", "watches", "earrings",
                     "bracelets", "rings"],
        "brand": ["Maison Vendome"] * 6 + ["Horlogerie Place", "Maison Vendome", "Maison Vendome", "Atelier Nord"],
        "collection": ["Bridal", "Bridal", "Resort", "Heritage", "Haute Joaillerie", "Heritage", None, "Resort",
                       "Bridal", None],
        "price": [12500.0, 8900.0, 23000.0, 6400.0, 48000.0, 3200.0, 15800.0, 9100.0, 11200.0, 2100.0],
        "image_url": ["images/P001.jpg", "images/P002.jpg", "https://cdn.example.com/p003.jpg", "images/P004.jpg",
                      "https://cdn.example.com/p005.jpg", "images/P006.jpg", "images/P007.jpg", None,
                      "images/P009.jpg", "images/P010.jpg"],
        "material": ["platinum", "white gold", "yellow gold", "pearl", "white gold", "yellow gold", "steel",
                     "white gold", "white gold", None],
        "stone_type": ["diamond", "diamond", "emerald", "pearl", "diamond", None, None, "sapphire", "diamond", None],
        "stock_status": ["in_stock", "in_stock", "low_stock", "in_stock", "preorder", "in_stock", "out_of_stock",
                         "in_stock", "in_stock", "discontinued"],
        "created_date": pd.to_datetime(["2023-01-10", "2023-01-10", "2023-03-05", "2022-11-20", "2024-02-01",
                                        "2022-06-15", "2023-09-01", "2023-03-05", "2023-01-10", "2021-05-05"],
                                       utc=True),
        "sku_code": ["VDM-001", "VDM-002", "VDM-003", "VDM-004", "VDM-005", "VDM-006", "HP-007", "VDM-008",
                     "VDM-009", "AN-010"],
    })
    customers = pd.DataFrame({
        "customer_id": ["C001", "C002", "C003", "C004", "C005"],
        "registration_date": pd.to_datetime(["2022-02-01", "2022-05-12", "2023-01-20", "2023-06-30", "2024-01-05"],
                                            utc=True),
        "gender": ["F", "F", "F", "F", "M"],
        "age": [42, 35, 51, 29, 38],
        "location_country": ["FR", "IT", "DE", "GB", "JP"],
        "location_city": ["Paris", "Milan", "Munich", "London", "Tokyo"],
        "customer_segment": ["VIC", "loyal", "VIC", "new", "new"],
        "marketing_consent": [True, True, False, True, False],
        "last_active_date": pd.to_datetime(["2024-06-20", "2024-06-18", "2024-05-30", "2024-06-25", "2024-06-28"],
                                           utc=True),
        **CUSTOMER_PII,
    })
    orders = pd.DataFrame({
        "order_id": ["O001", "O002", "O003", "O004"],
        "customer_id": ["C001", "C002", "C003", "C004"],
        "order_date": pd.to_datetime(["2024-03-14T15:20:00Z", "2024-04-02T11:05:00Z", "2024-05-19T17:45:00Z",
                                      "2024-06-01T10:00:00Z"]),
        "order_status": ["completed", "delivered", "cancelled", "returned"],
        "total_amount": [12500.0, 9600.0, 48000.0, 2100.0],
        "payment_method": ["card", "card", "wire", "card"],
        "is_gift": [False, True, False, False],
    })
    order_items = pd.DataFrame({
        "order_item_id": ["L001", "L002", "L003", "L004", "L005"],
        "order_id": ["O001", "O002", "O002", "O003", "O004"],
        "product_id": ["P001", "P004", "P006", "P005", "P010"],
        "quantity": [1, 1, 1, 1, 1],
        "unit_price": [12500.0, 6400.0, 3200.0, 48000.0, 2100.0],
    })
    rows = [
        ("C001", "P001", "view", "2024-03-10T09:00:00Z", 45.0), ("C001", "P002", "click", "2024-03-10T09:02:00Z", 5.0),
        ("C001", "P001", "add_to_wishlist", "2024-03-12T20:10:00Z", None),
        ("C001", "P001", "add_to_cart", "2024-03-14T15:10:00Z", None),
        ("C002", "P004", "view", "2024-03-30T12:00:00Z", 80.0), ("C002", "P006", "view", "2024-03-30T12:03:00Z", 12.0),
        ("C002", "P004", "add_to_cart", "2024-04-02T10:55:00Z", None),
        ("C002", "P008", "click", "2024-04-10T08:00:00Z", 3.0),
        ("C003", "P005", "view", "2024-05-18T18:00:00Z", 120.0),
        ("C003", "P005", "add_to_cart", "2024-05-19T17:40:00Z", None),
        ("C003", "P009", "add_to_wishlist", "2024-05-20T09:00:00Z", None),
        ("C004", "P010", "view", "2024-05-30T16:00:00Z", 20.0),
        ("C004", "P010", "add_to_cart", "2024-05-31T09:30:00Z", None),
        ("C004", "P010", "remove_from_cart", "2024-05-31T09:45:00Z", None),
        ("C005", "P007", "view", "2024-06-27T19:00:00Z", 60.0),
        ("C005", "P007", "add_to_wishlist", "2024-06-27T19:05:00Z", None),
        ("C005", "P003", "click", "2024-06-28T10:00:00Z", 2.0),
        ("C005", "P007", "purchase", "2024-06-28T11:00:00Z", None),
    ]
    interactions = pd.DataFrame(rows, columns=["customer_id", "product_id", "interaction_type", "timestamp",
                                               "interaction_duration"])
    interactions.insert(0, "interaction_id", [f"I{i:04d}" for i in range(1, len(rows) + 1)])
    interactions["timestamp"] = pd.to_datetime(interactions["timestamp"])
    interactions["device_type"] = ["mobile", "mobile", "desktop", "desktop", "tablet", "tablet", "tablet", "mobile",
                                   "desktop", "desktop", "mobile", "mobile", "mobile", "mobile", "desktop",
                                   "desktop", "mobile", "desktop"]
    return {"products": products, "customers": customers, "orders": orders, "order_items": order_items,
            "interactions": interactions}


def write_export(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> Path:
    """Write tables as an export folder (CSV with ISO dates, or Parquet), with the local product pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    images = folder / "images"
    images.mkdir(exist_ok=True)
    for url in tables["products"]["image_url"].dropna():
        if url.startswith("images/"):
            (folder / url).write_bytes(b"\xff\xd8\xff\xe0 jpeg " + url.encode())
    return folder


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with the SHA-256 of its bytes (to prove a workspace was left untouched)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def now() -> pd.Timestamp:
    return NOW


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return luxury_tables()


@pytest.fixture
def make_export():
    """write_export(tables, folder, fmt="csv"|"parquet") -> folder."""
    return write_export


@pytest.fixture
def digest():
    """tree_digest(root) -> {relative path: sha256}."""
    return tree_digest


@pytest.fixture
def pii() -> dict[str, list[str]]:
    return CUSTOMER_PII


@pytest.fixture
def export(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    return write_export(tables, tmp_path / "export")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


@pytest.fixture
def embeddings() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    return [f"P{i:03d}" for i in range(1, 11)], rng.normal(size=(10, 8)).astype(np.float32)
