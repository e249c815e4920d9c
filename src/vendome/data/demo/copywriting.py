"""Catalog copy: titles and descriptions composed from a product's attributes.

Descriptions mix several templates per sentence (collection story, material, technique, practical detail) so no
two pieces read alike. The technique is told here and never drawn; the motif is drawn and never told, so text and
image encoders each see something the other cannot.
"""

from __future__ import annotations

import numpy as np

NOUNS = {
    "ring": ("Ring", "ring"), "necklace": ("Pendant Necklace", "pendant necklace"),
    "earrings": ("Earrings", "pair of earrings"), "bracelet": ("Bracelet", "bracelet"),
    "dress watch": ("Automatic", "dress watch"), "chronograph": ("Chronograph", "chronograph"),
    "diver": ("Diver", "diving watch"), "jewelry watch": ("Jewelry Watch", "jewelry watch"),
    "handbag": ("Top-Handle Bag", "handbag"), "tote": ("Tote", "tote"), "clutch": ("Clutch", "clutch"),
    "wallet": ("Wallet", "wallet"), "belt": ("Belt", "belt"),
    "dress": ("Dress", "dress"), "coat": ("Coat", "coat"), "blouse": ("Blouse", "blouse"),
    "knitwear": ("Sweater", "sweater"),
    "pumps": ("Pumps", "pair of pumps"), "loafers": ("Loafers", "pair of loafers"),
    "sneakers": ("Sneakers", "pair of sneakers"), "boots": ("Ankle Boots", "pair of ankle boots"),
    "scarf": ("Carré", "silk square"), "sunglasses": ("Sunglasses", "pair of sunglasses"),
}
STONE_WORDS = {"diamond": "diamonds", "ruby": "rubies", "sapphire": "sapphires", "emerald": "emeralds",
               "pearl": "pearls", "onyx": "onyx"}
KARAT = {"yellow gold": "18k yellow gold", "rose gold": "18k rose gold", "white gold": "18k white gold",
         "platinum": "950 platinum", "silver": "sterling silver"}

# Technique family -> category -> phrase. Text-only: never rendered in the picture.
TECHNIQUE_PHRASES = {
    "hand-finished": {
        "Jewelry": "hand-engraved by the master engravers of our Paris atelier",
        "Watches": "with Côtes de Genève and perlage hand-finished by our watchmakers",
        "Leather Goods": "saddle-stitched by hand with waxed linen thread",
        "Ready-to-Wear": "with hand-embroidered details finished in our atelier",
        "Shoes": "Blake-stitched and burnished by hand",
        "Accessories": "with hand-rolled edges finished one by one",
    },
    "heritage": {
        "Jewelry": "drawn from a 1920s sketch kept in the house archive",
        "Watches": "reissued from a 1950s reference of the manufacture archive",
        "Leather Goods": "revived from the house's 1930s trunk-making archive",
        "Ready-to-Wear": "cut from a pattern kept in the couture archive since 1962",
        "Shoes": "built on a last from the 1950s shoemaking archive",
        "Accessories": "reprinted from an archival design of 1957",
    },
    "precision": {
        "Jewelry": "set under the microscope with micro-prong precision",
        "Watches": "powered by a Swiss automatic movement with a 70-hour power reserve, chronometer certified",
        "Leather Goods": "engineered around a lightweight, laser-cut inner structure",
        "Ready-to-Wear": "with bonded seams and a crease-resistant technical weave",
        "Shoes": "cushioned by a memory-foam insole over a rubber-injected sole",
        "Accessories": "engineered in Italy to a tolerance of a tenth of a millimetre",
    },
    "responsible": {
        "Jewelry": "crafted from recycled, fully traceable metal and responsibly sourced stones",
        "Watches": "assembled from traceable metals and delivered in recycled packaging",
        "Leather Goods": "in leather from a gold-rated, chrome-free tannery",
        "Ready-to-Wear": "woven from organic, traceable fibres",
        "Shoes": "tanned without chromium and resoleable for years of wear",
        "Accessories": "made from certified organic and recycled fibres",
    },
    "bespoke": {
        "Jewelry": "made to order and numbered in our Paris workshop",
        "Watches": "issued as a limited edition of 150 numbered pieces",
        "Leather Goods": "personalisable with hot-stamped initials and made to order",
        "Ready-to-Wear": "available made to measure through our salons",
        "Shoes": "made to order on your own last in our Italian workshop",
        "Accessories": "issued in a numbered edition and personalisable on request",
    },
}

# Technique family -> the savoir-faire label a house prints on every piece of that family, whatever its category:
# the shared wording a text encoder needs to see two pieces of one technique as alike (the phrases above differ
# by category, so on their own they mostly say the category).
TECHNIQUE_LABELS = {
    "hand-finished": ("Handcrafted", "Savoir-faire: handcrafted, finished entirely by hand by our artisans."),
    "heritage": ("Archive Edition", "Savoir-faire: archive edition, a vintage design reissued from the house "
                                    "archive."),
    "precision": ("Precision Engineered", "Savoir-faire: precision engineered, high-tech construction measured "
                                          "to the micron."),
    "responsible": ("Responsibly Made", "Savoir-faire: responsibly made, sustainable, recycled and certified "
                                        "eco-friendly materials."),
    "bespoke": ("Made to Order", "Savoir-faire: made to order, bespoke, personalised and numbered for its owner."),
}

OPENINGS = (
    "From the {coll} collection, a {noun} inspired by {theme}.",
    "{coll} pays tribute to {theme}; this {noun} carries its spirit.",
    "Born from {theme}, the {coll} {noun} is a quiet statement of elegance.",
    "The {coll} line of {brand} revisits {theme} in a {noun} made to be treasured.",
    "A signature of the {coll} collection, this {noun} recalls {theme}.",
)
MATERIAL_SENTENCES = (
    "It is crafted in {material}{stones}, in a {color} tone.",
    "{Material}{stones} lends it its {color} radiance.",
    "Shaped in {material}{stones}, it is offered in {color}.",
    "The piece is rendered in {material}{stones}, its colour a deep {color}.",
)
JEWEL_SENTENCES = (
    "It is crafted in {material}{stones}.",
    "{Material}{stones} lends it a {color} brilliance.",
    "Shaped in {material}{stones}, it catches the light with a {color} glow.",
    "The piece is rendered in {material}{stones}.",
)
WATCH_SENTENCES = (
    "Its {material} case frames a {color} dial{stones}.",
    "A {color} dial sits in a case of {material}{stones}.",
    "The {material} case{stones} and {color} dial give it quiet authority.",
)
TECHNIQUE_SENTENCES = (
    "Each piece is {technique}.",
    "It is {technique}, a hallmark of the house's savoir-faire.",
    "True to the maison, it is {technique}.",
    "Our artisans ensure it is {technique}.",
)
CLOSINGS = (
    "Delivered in the signature ivory box with a certificate of authenticity.",
    "Complimentary engraving and gift wrapping are available.",
    "Our client advisors can arrange a private appointment to try it.",
    "Each purchase includes lifetime care in our ateliers.",
    "",
)


def title(row) -> str:
    """`Ondine Pendant Necklace, 18k Rose Gold and Sapphires - Archive Edition`: collection, noun, material (and
    stones), savoir-faire label."""
    noun = NOUNS[row.subcategory][0]
    material = KARAT.get(row.material, row.material).title()
    label = TECHNIQUE_LABELS[row.technique][0]
    if row.category == "Watches":
        return f"{row.collection} {noun}, {material}, {row.color.title()} Dial - {label}"
    if row.stone_type != "none":
        return f"{row.collection} {noun}, {material} and {STONE_WORDS[row.stone_type].title()} - {label}"
    if row.category == "Jewelry":
        return f"{row.collection} {noun}, {material} - {label}"
    return f"{row.collection} {noun}, {row.color.title()} {material} - {label}"


def description(row, rng: np.random.Generator) -> str:
    """Four or five sentences: story, material and colour, technique, savoir-faire label, sometimes a closing."""
    noun = NOUNS[row.subcategory][1]
    material = KARAT.get(row.material, row.material)
    stones = "" if row.stone_type == "none" else f" set with {STONE_WORDS[row.stone_type]}"
    opening = OPENINGS[int(rng.integers(len(OPENINGS)))].format(coll=row.collection, noun=noun, theme=row.theme,
                                                                brand=row.brand)
    pool = {"Jewelry": JEWEL_SENTENCES, "Watches": WATCH_SENTENCES}.get(row.category, MATERIAL_SENTENCES)
    mat = pool[int(rng.integers(len(pool)))]
    mat = mat.format(material=material, Material=material[0].upper() + material[1:], stones=stones, color=row.color)
    tech = TECHNIQUE_SENTENCES[int(rng.integers(len(TECHNIQUE_SENTENCES)))].format(
        technique=TECHNIQUE_PHRASES[row.technique][row.category])
    middle = [mat, tech] if rng.random() < 0.6 else [tech, mat]
    closing = CLOSINGS[int(rng.integers(len(CLOSINGS)))]
    return " ".join(s for s in [opening, *middle, TECHNIQUE_LABELS[row.technique][1], closing] if s)


def measures(row, rng: np.random.Generator) -> tuple[str, str]:
    """(weight, size) as a catalog would print them, or empty strings where they make no sense."""
    sub = row.subcategory
    if row.category == "Jewelry":
        grams = {"ring": 6.0, "necklace": 9.0, "earrings": 5.0, "bracelet": 14.0}[sub]
        w = f"{grams * float(np.exp(rng.normal(0, 0.3))):.1f} g"
        size = {"ring": "48-60", "necklace": f"{int(rng.choice([40, 42, 45]))} cm", "earrings": "",
                "bracelet": f"{int(rng.choice([16, 17, 18]))} cm"}[sub]
        return w, size
    if row.category == "Watches":
        mm = int(rng.choice([33, 36, 38, 40, 42]))
        return f"{int(mm * 2.1 + rng.integers(-5, 6))} g", f"{mm} mm"
    if row.category == "Leather Goods":
        dims = {"handbag": (28, 20, 12), "tote": (38, 30, 16), "clutch": (24, 14, 5), "wallet": (19, 10, 2),
                "belt": (100, 3, 0)}[sub]
        if sub == "belt":
            return "", f"{int(rng.choice([75, 80, 85, 90, 95]))}-{int(rng.choice([100, 105, 110]))} cm"
        return f"{int(dims[0] * dims[1] * 1.6 + rng.integers(-40, 40))} g", f"{dims[0]} x {dims[1]} x {dims[2]} cm"
    if row.category == "Ready-to-Wear":
        return "", "XS-XL" if row.gender != "men" else "44-56"
    if row.category == "Shoes":
        return "", "35-41" if row.gender == "women" else "39-46"
    return ("", "90 x 90 cm") if sub == "scarf" else (f"{int(rng.integers(24, 38))} g", "one size")
