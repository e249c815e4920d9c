"""The house's vocabulary: lines, categories, materials, stones, colours, motifs and techniques.

Every list is ordered, and its position is the index the generator and the truth tables use, so a seed always
produces the same catalog. Motifs are visual-only (drawn in the picture, never written in the copy); techniques are
text-only (written in the copy, never drawn); material, colour and stone are in both.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUSE = "Maison Aurèle"

CATEGORIES = ("Jewelry", "Watches", "Leather Goods", "Ready-to-Wear", "Shoes", "Accessories")

# How much a category's purchases are led by the eye (motif) rather than by the story (technique).
CATEGORY_VISUAL_SHARE = {
    "Jewelry": 0.8, "Watches": 0.2, "Leather Goods": 0.55, "Ready-to-Wear": 0.7, "Shoes": 0.8, "Accessories": 0.65,
}

SUBCATEGORIES = {
    "Jewelry": ("ring", "necklace", "earrings", "bracelet"),
    "Watches": ("dress watch", "chronograph", "diver", "jewelry watch"),
    "Leather Goods": ("handbag", "tote", "clutch", "wallet", "belt"),
    "Ready-to-Wear": ("dress", "coat", "blouse", "knitwear"),
    "Shoes": ("pumps", "loafers", "sneakers", "boots"),
    "Accessories": ("scarf", "sunglasses"),
}

MATERIALS = (
    "yellow gold", "rose gold", "white gold", "platinum", "silver", "steel",
    "calfskin", "lambskin", "grained calfskin", "crocodile", "canvas",
    "silk", "cashmere", "wool", "cotton", "tweed",
    "suede", "patent leather", "satin", "acetate", "titanium",
)
METALS = ("yellow gold", "rose gold", "white gold", "platinum", "silver", "steel", "titanium")
STONES = ("none", "diamond", "ruby", "sapphire", "emerald", "pearl", "onyx")
COLORS = (
    "black", "ivory", "white", "red", "burgundy", "navy", "blue", "green", "blush", "camel", "grey",
    "gold", "rose", "silver",
)
MOTIFS = ("plain", "stripes", "quilting", "dots", "chevrons")
TECHNIQUES = ("hand-finished", "heritage", "precision", "responsible", "bespoke")
TIERS = ("entry", "core", "high", "haute")

RGB = {
    "black": (28, 28, 32), "ivory": (236, 226, 200), "white": (246, 246, 244), "red": (180, 30, 38),
    "burgundy": (112, 24, 42), "navy": (24, 36, 84), "blue": (40, 92, 176), "green": (22, 112, 72),
    "blush": (232, 178, 178), "camel": (190, 144, 92), "grey": (128, 128, 134), "gold": (212, 172, 58),
    "rose": (214, 146, 124), "silver": (190, 192, 198),
    "yellow gold": (214, 174, 56), "rose gold": (212, 142, 118), "white gold": (218, 220, 226),
    "platinum": (198, 204, 212), "steel": (158, 164, 172), "titanium": (110, 114, 122),
    "diamond": (236, 246, 255), "ruby": (170, 12, 44), "sapphire": (22, 52, 156), "emerald": (12, 124, 72),
    "pearl": (242, 236, 224), "onyx": (14, 14, 16),
}
METAL_COLOR = {"yellow gold": "gold", "rose gold": "rose", "white gold": "silver", "platinum": "silver",
               "silver": "silver", "steel": "silver", "titanium": "grey"}
STONE_COLOR = {"diamond": "white", "ruby": "red", "sapphire": "blue", "emerald": "green", "pearl": "ivory",
               "onyx": "black"}


@dataclass(frozen=True)
class Line:
    """A brand line of the house: what it sells and at what standing."""

    key: str
    brand: str
    share: float                                  # share of the catalog
    subcategories: tuple[tuple[str, str, float], ...]   # (category, subcategory, weight)
    materials: dict[str, tuple[tuple[str, float], ...]]  # category -> (material, weight)
    stones: tuple[tuple[str, float], ...]
    price_factor: float
    n_collections: int                            # at full size


_JEWEL = (("Jewelry", "ring", 1.0), ("Jewelry", "necklace", 1.0), ("Jewelry", "earrings", 1.0),
          ("Jewelry", "bracelet", 1.0))
_GEMS = (("diamond", 3.0), ("ruby", 1.2), ("sapphire", 1.5), ("emerald", 1.2), ("pearl", 0.8))

LINES = (
    Line("haute_joaillerie", f"{HOUSE} Haute Joaillerie", 0.05, _JEWEL,
         {"Jewelry": (("white gold", 3), ("platinum", 3), ("yellow gold", 2), ("rose gold", 1))},
         _GEMS, 11.0, 4),
    Line("joaillerie", f"{HOUSE} Joaillerie", 0.27, _JEWEL,
         {"Jewelry": (("yellow gold", 3), ("rose gold", 3), ("white gold", 2), ("platinum", 0.6))},
         (("none", 3.0), ("diamond", 2.5), ("ruby", 0.6), ("sapphire", 0.8), ("emerald", 0.6), ("pearl", 1.2),
          ("onyx", 0.8)), 1.0, 14),
    Line("manufacture", "Aurèle Manufacture", 0.10,
         (("Watches", "dress watch", 1.0), ("Watches", "chronograph", 0.8), ("Watches", "diver", 0.6),
          ("Watches", "jewelry watch", 0.5)),
         {"Watches": (("steel", 3), ("yellow gold", 1.5), ("rose gold", 1.5), ("white gold", 1), ("platinum", 0.5),
                      ("titanium", 0.8))},
         (("none", 5.0), ("diamond", 1.5)), 1.0, 6),
    Line("maroquinerie", "Aurèle Maroquinerie", 0.16,
         (("Leather Goods", "handbag", 1.0), ("Leather Goods", "tote", 0.8), ("Leather Goods", "clutch", 0.5),
          ("Leather Goods", "wallet", 1.0), ("Leather Goods", "belt", 0.6)),
         {"Leather Goods": (("calfskin", 4), ("lambskin", 2), ("grained calfskin", 3), ("crocodile", 0.5))},
         (("none", 1.0),), 1.0, 9),
    Line("couture", "Aurèle Couture", 0.14,
         (("Ready-to-Wear", "dress", 1.0), ("Ready-to-Wear", "coat", 0.8), ("Ready-to-Wear", "blouse", 0.8),
          ("Ready-to-Wear", "knitwear", 0.8)),
         {"Ready-to-Wear": (("silk", 3), ("cashmere", 2), ("wool", 2), ("cotton", 1.5), ("tweed", 1.2),
                            ("lambskin", 0.5))},
         (("none", 1.0),), 1.0, 8),
    Line("souliers", "Aurèle Souliers", 0.10,
         (("Shoes", "pumps", 1.0), ("Shoes", "loafers", 1.0), ("Shoes", "sneakers", 0.8), ("Shoes", "boots", 0.7)),
         {"Shoes": (("calfskin", 3), ("suede", 2), ("patent leather", 1.5), ("satin", 1))},
         (("none", 1.0),), 1.0, 5),
    Line("accessoires", "Aurèle Accessoires", 0.08,
         (("Accessories", "scarf", 1.5), ("Accessories", "sunglasses", 1.0)),
         {"Accessories": (("silk", 3), ("cashmere", 1.5), ("acetate", 2), ("titanium", 0.8))},
         (("none", 1.0),), 1.0, 5),
    Line("diffusion", "Rive by Aurèle", 0.10,
         (("Jewelry", "ring", 1.0), ("Jewelry", "necklace", 1.0), ("Jewelry", "earrings", 1.0),
          ("Jewelry", "bracelet", 1.0), ("Watches", "dress watch", 0.8), ("Leather Goods", "tote", 0.8),
          ("Leather Goods", "wallet", 0.8), ("Shoes", "sneakers", 0.8)),
         {"Jewelry": (("silver", 5), ("steel", 1)), "Watches": (("steel", 1),),
          "Leather Goods": (("canvas", 3), ("calfskin", 1)), "Shoes": (("canvas", 1), ("calfskin", 1))},
         (("none", 5.0), ("onyx", 1.5), ("pearl", 1.0)), 0.45, 6),
)

# Materials that depend on the piece, not only on the category (a scarf is never acetate).
SUBCATEGORY_MATERIALS = {
    "scarf": (("silk", 3), ("cashmere", 1.5)),
    "sunglasses": (("acetate", 2), ("titanium", 0.8)),
    "coat": (("wool", 3), ("cashmere", 2), ("tweed", 1.5), ("lambskin", 0.6)),
    "knitwear": (("cashmere", 3), ("wool", 2), ("cotton", 1)),
    "dress": (("silk", 3), ("wool", 1), ("cotton", 1.5), ("tweed", 0.6)),
    "blouse": (("silk", 3), ("cotton", 2)),
}

# Price of a core-material piece of each subcategory, in euros, before line, material and stone factors.
BASE_PRICE = {
    "ring": 2400, "necklace": 3400, "earrings": 2900, "bracelet": 3900,
    "dress watch": 8500, "chronograph": 11000, "diver": 9000, "jewelry watch": 14000,
    "handbag": 4300, "tote": 3200, "clutch": 2500, "wallet": 820, "belt": 640,
    "dress": 3100, "coat": 4700, "blouse": 1450, "knitwear": 1350,
    "pumps": 860, "loafers": 920, "sneakers": 720, "boots": 1450,
    "scarf": 470, "sunglasses": 520,
}
MATERIAL_PRICE = {
    "yellow gold": 1.0, "rose gold": 1.0, "white gold": 1.1, "platinum": 1.6, "silver": 0.2, "steel": 0.55,
    "titanium": 0.8, "calfskin": 1.0, "lambskin": 1.15, "grained calfskin": 1.0, "crocodile": 5.5, "canvas": 0.55,
    "silk": 1.0, "cashmere": 1.3, "wool": 0.9, "cotton": 0.6, "tweed": 1.2, "suede": 1.0, "patent leather": 1.05,
    "satin": 1.0, "acetate": 1.0,
}
STONE_PRICE = {"none": 1.0, "onyx": 1.1, "pearl": 1.4, "diamond": 2.3, "sapphire": 2.0, "ruby": 2.3,
               "emerald": 2.3}
# Upper price bounds (euros) of the entry, core and high tiers per category; above the last one is haute.
TIER_BOUNDS = {
    "Jewelry": (1500, 6000, 25000), "Watches": (4500, 12000, 35000), "Leather Goods": (1000, 3600, 9000),
    "Ready-to-Wear": (1200, 2800, 6000), "Shoes": (700, 1000, 1600), "Accessories": (420, 560, 800),
}

COLLECTION_NAMES = (
    "Ondine", "Astrée", "Lys Royal", "Méridienne", "Perle de Lune", "Soleil d'Or", "Boréale", "Cascade", "Nymphéa",
    "Orée", "Constellation", "Sirène", "Éclat", "Pavane", "Volute", "Aube", "Ciselure", "Rivage", "Faubourg",
    "Odyssée", "Horizon", "Calypso", "Tuileries", "Opaline", "Zéphyr", "Arabesque", "Gravure", "Fleur de Sel",
    "Saint-Honoré", "Élysée", "Diane", "Minuit", "Clair de Lune", "Belle Époque", "Riviera", "Mistral", "Alcôve",
    "Séraphine", "Lumière", "Camargue", "Orangerie", "Palmyre", "Versailles", "Ombelle", "Galatée", "Pléiade",
    "Sérénade", "Azur", "Marquise", "Églantine", "Ariane", "Capucine", "Écume", "Nocturne", "Primevère", "Solstice",
    "Trianon", "Vermeil", "Amarante", "Bérénice", "Chantilly", "Iris Noir", "Jasmin", "Lagune",
)
THEMES = (
    "the gardens of the Palais-Royal at dawn", "the light of the Riviera at dusk", "the ballets of the 1920s",
    "the constellations charted by the house's founder", "the waves of the Atlantic coast", "a winter night in Paris",
    "the orangeries of French châteaux", "the curves of Art Nouveau ironwork", "the founder's travels to Kyoto",
    "the wild horses of the Camargue", "the salons of the Faubourg Saint-Honoré", "the lagoons of Venice",
    "the first spring blossoms", "the gilded mirrors of Versailles", "the sea foam of Brittany",
    "the lavender fields of Provence",
)
