"""A six-piece jewelry catalog with product photos drawn by PIL, as a Dataset, for the feature tests."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from vendome.data.dataset import Dataset


def draw_product(path, colour, shape, size=112):
    """A product shot on white: one coloured ring or pendant, as catalog exports often are (small PNGs)."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    if shape == "ring":
        draw.ellipse((20, 20, size - 20, size - 20), outline=colour, width=12)
    else:
        draw.polygon([(size // 2, 15), (size - 25, size // 2), (size // 2, size - 15), (25, size // 2)], fill=colour)
    image.save(path)
    return path


@pytest.fixture
def catalog(tmp_path):
    """Dataset whose products hold: 3 readable photos, an http URL, an empty image_url, a corrupt file."""
    img = tmp_path / "images"
    img.mkdir()
    corrupt = img / "p6.png"
    corrupt.write_bytes(b"this is not a png")
    products = pd.DataFrame({
        "product_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "title": ["Solitaire ring", "Eternity band", "Drop pendant", "Silk scarf", "Tote bag", "Pearl earrings"],
        "description": ["A round brilliant diamond on a thin band.", "Sapphires set all around.",
                        "A pear-cut emerald on a fine chain.", "Printed twill.", "Grained calfskin.",
                        "Freshwater pearls."],
        "category": ["rings", "rings", "necklaces", "accessories", "bags", "earrings"],
        "brand": ["Vendome"] * 6,
        "material": ["platinum", "white gold", "yellow gold", "silk", "leather", "gold"],
        "color": ["silver", "blue", "green", "red", "black", None],
        "stone_type": ["diamond", "sapphire", "emerald", None, None, "pearl"],
        "price": [5200.0, 3100.0, 2400.0, 450.0, 2900.0, 800.0],
        "image_url": [str(draw_product(img / "p1.png", (190, 190, 200), "ring")),
                      str(draw_product(img / "p2.png", (20, 40, 160), "ring")),
                      str(draw_product(img / "p3.png", (10, 140, 60), "pendant")),
                      "https://cdn.example.com/p4.jpg", "", str(corrupt)],
        "stock_status": ["in_stock"] * 6,
    })
    interactions = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2"], "product_id": ["p1", "p2", "p3"],
        "interaction_type": ["view", "purchase", "add_to_cart"],
        "timestamp": ["2024-03-01T10:00:00", "2024-03-02T10:00:00", "2024-03-03T10:00:00"],
    })
    return Dataset.from_tables({"products": products, "interactions": interactions}, name="boutique")
