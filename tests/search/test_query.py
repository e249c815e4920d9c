"""Query understanding: the vocabulary comes from the catalog, and the parser turns a client's "like this, but ..."
into hard constraints (negations, prices, what she wants to see), soft preferences and the delta the composer
reads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vendome.search.constraints import OPS, Constraint
from vendome.search.query import ParsedQuery, Vocabulary, parse

HOUSE = "Maison Aurèle Joaillerie"
ROWS = [  # product_id, category, subcategory, material, stone_type, color, price, brand, collection
    ("R1", "Jewelry", "ring", "yellow gold", "diamond", "white", 2400.0, HOUSE, "Ondine"),
    ("R2", "Jewelry", "ring", "rose gold", "none", "rose", 1900.0, HOUSE, "Ondine"),
    ("R3", "Jewelry", "ring", "white gold", "sapphire", "blue", 5200.0, HOUSE, "Astrée"),
    ("R4", "Jewelry", "ring", "silver", "onyx", "black", 450.0, "Rive by Aurèle", "Astrée"),
    ("R5", "Jewelry", "ring", "rose gold", "diamond", "rose", 3100.0, HOUSE, "Ondine"),
    ("N1", "Jewelry", "necklace", "yellow gold", "pearl", "ivory", 3400.0, HOUSE, "Ondine"),
    ("N2", "Jewelry", "necklace", "platinum", "diamond", "white", 48000.0, "Maison Aurèle Haute Joaillerie", "Lys"),
    ("E1", "Jewelry", "earrings", "rose gold", "emerald", "green", 2900.0, HOUSE, "Ondine"),
    ("E2", "Jewelry", "earrings", "yellow gold", "pearl", "ivory", 2600.0, HOUSE, "Ondine"),
    ("B1", "Jewelry", "bracelet", "platinum", "ruby", "red", 12000.0, "Maison Aurèle Haute Joaillerie", "Lys"),
    ("B2", "Jewelry", "bracelet", "steel", "none", "silver", 900.0, "Rive by Aurèle", "Astrée"),
    ("W1", "Watches", "dress watch", "steel", "none", "silver", 8500.0, "Aurèle Manufacture", "Horizon"),
    ("W2", "Watches", "jewelry watch", "rose gold", "diamond", "rose", 14000.0, "Aurèle Manufacture", "Horizon"),
    ("W3", "Watches", "chronograph", "titanium", "none", "black", 11000.0, "Aurèle Manufacture", "Horizon"),
    ("W4", "Watches", "diver", "steel", "none", "navy", 9000.0, "Aurèle Manufacture", "Horizon"),
    ("H1", "Leather Goods", "handbag", "calfskin", "none", "black", 4300.0, "Aurèle Maroquinerie", "Éclat"),
    ("H2", "Leather Goods", "tote", "canvas", "none", "camel", 1800.0, "Aurèle Maroquinerie", "Éclat"),
    ("H3", "Leather Goods", "clutch", "patent leather", "none", "red", 2500.0, "Aurèle Maroquinerie", "Éclat"),
    ("H4", "Leather Goods", "wallet", "grained calfskin", "none", "burgundy", 820.0, "Aurèle Maroquinerie", "Éclat"),
    ("S1", "Shoes", "pumps", "patent leather", "none", "black", 860.0, "Aurèle Souliers", "Riviera"),
    ("D1", "Ready-to-Wear", "dress", "silk", "none", "navy", 3100.0, "Aurèle Couture", "Riviera"),
]
COLUMNS = ("product_id", "category", "subcategory", "material", "stone_type", "color", "price", "brand", "collection")
STONES = {"diamond", "ruby", "sapphire", "emerald", "pearl", "onyx"}
GOLDS = {"yellow gold", "rose gold", "white gold"}


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=COLUMNS)
    df["title"] = df["collection"] + " " + df["subcategory"]
    return df


@pytest.fixture(scope="module")
def vocab(products: pd.DataFrame) -> Vocabulary:
    return Vocabulary.from_products(products)


@pytest.fixture(scope="module")
def ring(products: pd.DataFrame) -> dict:
    """A yellow-gold diamond ring at 2,400."""
    return products.iloc[0].to_dict()


@pytest.fixture(scope="module")
def necklace(products: pd.DataFrame) -> dict:
    return products.iloc[5].to_dict()


def only(q: ParsedQuery, attribute: str, op: str | None = None) -> Constraint:
    """The one constraint of `q` on `attribute` (and `op`)."""
    found = [c for c in q.constraints if c.attribute == attribute and (op is None or c.op == op)]
    assert len(found) == 1, f"expected one {attribute} {op or ''} constraint, got {found}"
    return found[0]


def price(q: ParsedQuery) -> Constraint:
    return only(q, "price")


def attributes(q: ParsedQuery) -> set[str]:
    return {c.attribute for c in q.constraints}


# ------------------------------------------------------------------------------------------------- vocabulary
def test_vocabulary_holds_the_catalogs_own_values(vocab: Vocabulary) -> None:
    assert set(vocab.values["stone_type"]) == STONES | {"none"}
    assert "patent leather" in vocab.values["material"]


@pytest.mark.parametrize(("phrase", "attribute", "values"), [
    ("diamonds", "stone_type", {"diamond"}),
    ("rubies", "stone_type", {"ruby"}),
    ("pearls", "stone_type", {"pearl"}),
    ("earring", "subcategory", {"earrings"}),
    ("necklaces", "subcategory", {"necklace"}),
    ("dress watches", "subcategory", {"dress watch"}),
])
def test_lookup_maps_plurals_and_singulars_to_catalog_values(vocab: Vocabulary, phrase, attribute, values) -> None:
    assert vocab.lookup(phrase)[0] == (attribute, tuple(sorted(values)))


def test_lookup_of_gold_is_every_gold_material_before_the_gold_colour(vocab: Vocabulary) -> None:
    found = vocab.lookup("gold")
    assert found[0][0] == "material" and set(found[0][1]) == GOLDS
    assert ("color", ("gold",)) not in found[:1]


def test_lookup_of_leather_is_the_materials_containing_it(vocab: Vocabulary) -> None:
    assert vocab.lookup("leather")[0] == ("material", ("patent leather",))


def test_lookup_of_silver_is_the_silver_material_only(vocab: Vocabulary) -> None:
    assert vocab.lookup("silver")[0] == ("material", ("silver",))


def test_lookup_of_a_modifier_no_other_attribute_claims_completes_it(vocab: Vocabulary) -> None:
    assert vocab.lookup("yellow")[0] == ("material", ("yellow gold",))


def test_lookup_of_a_colour_word_stays_a_colour(vocab: Vocabulary) -> None:
    assert vocab.lookup("rose")[0] == ("color", ("rose",))
    assert vocab.lookup("white")[0] == ("color", ("white",))


def test_stones_are_every_stone_but_none(vocab: Vocabulary) -> None:
    for word in ("stones", "gems", "gemstones"):
        attribute, values = vocab.lookup(word)[0]
        assert attribute == "stone_type" and set(values) == STONES


def test_watch_is_the_watches_category(vocab: Vocabulary) -> None:
    assert vocab.lookup("watch")[0] == ("category", ("Watches",))


def test_bag_is_the_bag_subcategories_the_catalog_has(vocab: Vocabulary) -> None:
    attribute, values = vocab.lookup("bags")[0]
    assert attribute == "subcategory" and set(values) == {"handbag", "tote", "clutch"}


def test_lookup_folds_case_and_accents(vocab: Vocabulary) -> None:
    assert vocab.lookup("ECLAT")[0] == ("collection", ("Éclat",))
    assert vocab.lookup("Ready-to-Wear")[0] == ("category", ("Ready-to-Wear",))


def test_a_unique_part_of_a_brand_name_is_that_brand(vocab: Vocabulary) -> None:
    assert vocab.lookup("haute joaillerie")[0] == ("brand", ("Maison Aurèle Haute Joaillerie",))


def test_unknown_and_grammar_words_are_not_in_the_vocabulary(vocab: Vocabulary) -> None:
    assert vocab.lookup("art deco") == []
    assert vocab.lookup("none") == []  # the "no stone" value is not a word a client uses for it
    assert vocab.lookup("") == []


def test_the_vocabulary_is_built_from_whatever_catalog_is_given() -> None:
    other = pd.DataFrame({"category": ["Jewellery", "Jewellery"], "material": ["ceramic", "titanium ceramic"],
                          "stone_type": ["tsavorite", "spinel"], "color": ["gold", "green"]})
    vocab = Vocabulary.from_products(other)
    assert vocab.lookup("tsavorites")[0] == ("stone_type", ("tsavorite",))
    assert vocab.lookup("diamonds") == []  # not sold here
    assert vocab.lookup("gold")[0] == ("color", ("gold",))  # no gold material: the colour
    assert "subcategory" not in vocab.values  # columns the catalog lacks are skipped


# ----------------------------------------------------------------------------------------- the composed query
def test_like_this_in_rose_gold_no_diamonds(vocab: Vocabulary, ring: dict) -> None:
    q = parse("like this, but in rose gold, no diamonds", vocab, anchor=ring)
    assert only(q, "material") == Constraint("material", "in", ("rose gold",), hard=False, source="rose gold")
    stone = only(q, "stone_type")
    assert (stone.op, stone.value, stone.hard) == ("not_in", ("diamond",), True)
    lock = only(q, "subcategory")
    assert (lock.op, lock.value, lock.hard, lock.source) == ("in", ("ring",), True, "the anchor's subcategory")
    assert "rose gold" in q.delta and "diamond" not in q.delta
    assert q.named == {"material": ("rose gold",)}


def test_delta_keeps_the_change_and_drops_filler_negations_and_prices(vocab: Vocabulary, ring: dict) -> None:
    q = parse("like this, but in rose gold, no diamonds, under 2k", vocab, anchor=ring)
    assert q.delta == "in rose gold"


def test_unknown_words_stay_in_the_delta(vocab: Vocabulary) -> None:
    q = parse("please show me something more art deco in rose gold", vocab)
    assert q.delta == "more art deco in rose gold"


# -------------------------------------------------------------------------------------------------- prices
@pytest.mark.parametrize("text", ["under 2,000", "under 2k", "below €2,000", "less than 2000 euros", "under 2 000",
                                  "under 2.000", "under EUR 2000", "for under 2K €"])
def test_upper_limits_are_strict(vocab: Vocabulary, text: str) -> None:
    c = price(parse(text, vocab))
    assert (c.op, c.value, c.hard) == ("lt", 2000.0, True)


@pytest.mark.parametrize(("text", "value"), [("max 3k", 3000.0), ("at most 1.5k", 1500.0), ("up to 900", 900.0),
                                             ("2k or less", 2000.0), ("no more than 2,500", 2500.0)])
def test_inclusive_upper_limits(vocab: Vocabulary, text: str, value: float) -> None:
    c = price(parse(text, vocab))
    assert (c.op, c.value) == ("le", value)


@pytest.mark.parametrize(("text", "op", "value"), [("over 10k", "gt", 10000.0), ("above 5 000", "gt", 5000.0),
                                                   ("more than 1,000", "gt", 1000.0), ("from 1k", "ge", 1000.0),
                                                   ("at least $3,000", "ge", 3000.0), ("5k+", "ge", 5000.0)])
def test_lower_limits(vocab: Vocabulary, text: str, op: str, value: float) -> None:
    c = price(parse(text, vocab))
    assert (c.op, c.value) == (op, value)


@pytest.mark.parametrize("text", ["between 1k and 3k", "between 1,000 and 3,000", "1k-3k", "1-3k", "from 1k to 3k",
                                  "€1,000 to €3,000", "between 3k and 1k", "price 1000-3000"])
def test_ranges_are_inclusive_between(vocab: Vocabulary, text: str) -> None:
    c = price(parse(text, vocab))
    assert (c.op, c.value) == ("between", (1000.0, 3000.0))


@pytest.mark.parametrize("text", ["around 5k", "about 5000", "~5k", "roughly €5,000"])
def test_around_is_twenty_percent_either_side(vocab: Vocabulary, text: str) -> None:
    c = price(parse(text, vocab))
    assert (c.op, c.value) == ("between", (4000.0, 6000.0))


@pytest.mark.parametrize(("text", "value"), [("under 2.5k", 2500.0), ("under 2.500", 2500.0), ("under 2.50", 2.5),
                                             ("under 1m", 1_000_000.0), ("under 1.2 million", 1_200_000.0),
                                             ("under 1,000.50", 1000.5)])
def test_amounts_read_k_m_and_thousand_separators(vocab: Vocabulary, text: str, value: float) -> None:
    assert price(parse(text, vocab)).value == pytest.approx(value)


@pytest.mark.parametrize("text", ["size 52", "18k rose gold", "2 rings", "1-3"])
def test_numbers_without_a_price_context_are_ignored(vocab: Vocabulary, text: str) -> None:
    q = parse(text, vocab)
    assert "price" not in attributes(q)
    assert text.split()[0] in q.delta


def test_cheaper_is_below_the_anchors_price(vocab: Vocabulary, ring: dict) -> None:
    for text in ("cheaper", "like this but more affordable", "a slightly less expensive one"):
        q = parse(text, vocab, anchor=ring)
        assert (price(q).op, price(q).value, price(q).hard) == ("lt", 2400.0, True), text
        assert q.delta == ""


def test_more_expensive_is_above_the_anchors_price(vocab: Vocabulary, ring: dict) -> None:
    c = price(parse("more expensive", vocab, anchor=ring))
    assert (c.op, c.value) == ("gt", 2400.0)


def test_cheaper_without_an_anchor_adds_nothing_and_leaves_the_delta(vocab: Vocabulary) -> None:
    q = parse("cheaper, in rose gold", vocab)
    assert "price" not in attributes(q)
    assert q.delta == "in rose gold"


def test_cheaper_than_an_amount_is_that_amount(vocab: Vocabulary, ring: dict) -> None:
    assert price(parse("cheaper than 2k", vocab, anchor=ring)).value == 2000.0


# ----------------------------------------------------------------------------------------------- negations
@pytest.mark.parametrize("text", ["no diamonds", "not diamond", "without diamonds", "diamond-free", "avoid diamonds",
                                  "nothing with diamonds", "w/o diamonds", "NO DIAMONDS!!", "but not with a diamond",
                                  "I don't want diamonds", "nothing that has diamonds", "non-diamond"])
def test_negations_are_hard_not_in(vocab: Vocabulary, text: str) -> None:
    q = parse(text, vocab)
    assert q.constraints == [Constraint("stone_type", "not_in", ("diamond",), True, q.constraints[0].source)]
    assert "diamond" not in q.delta.lower()


def test_not_silver_excludes_silver_and_not_steel(vocab: Vocabulary) -> None:
    c = only(parse("not silver", vocab), "material")
    assert (c.op, c.value) == ("not_in", ("silver",))


def test_no_gold_excludes_every_gold(vocab: Vocabulary) -> None:
    c = only(parse("no gold", vocab), "material")
    assert c.op == "not_in" and set(c.value) == GOLDS


def test_nothing_in_gold_excludes_every_gold(vocab: Vocabulary) -> None:
    assert set(only(parse("nothing in gold", vocab), "material", "not_in").value) == GOLDS


def test_without_stones_excludes_every_stone_but_none(vocab: Vocabulary) -> None:
    c = only(parse("without stones", vocab), "stone_type")
    assert c.op == "not_in" and set(c.value) == STONES


def test_anything_but_black_excludes_black(vocab: Vocabulary) -> None:
    c = only(parse("anything but black", vocab), "color")
    assert (c.op, c.value) == ("not_in", ("black",))


def test_no_leather_excludes_the_leather_materials(vocab: Vocabulary) -> None:
    assert only(parse("no leather", vocab), "material").value == ("patent leather",)


def test_avoid_steel(vocab: Vocabulary) -> None:
    assert only(parse("avoid steel", vocab), "material").value == ("steel",)


@pytest.mark.parametrize(("text", "values"), [("no diamonds or rubies", {"diamond", "ruby"}),
                                              ("no diamonds, no pearls", {"diamond", "pearl"}),
                                              ("no diamonds, rubies or pearls", {"diamond", "ruby", "pearl"}),
                                              ("without pearls and rubies", {"pearl", "ruby"})])
def test_a_negation_covers_its_coordinated_list(vocab: Vocabulary, text: str, values: set[str]) -> None:
    c = only(parse(text, vocab), "stone_type")
    assert c.op == "not_in" and set(c.value) == values


def test_or_carries_a_negation_across_attributes(vocab: Vocabulary) -> None:
    q = parse("no diamonds or gold", vocab)
    assert set(only(q, "material").value) == GOLDS and only(q, "material").op == "not_in"
    assert only(q, "stone_type").value == ("diamond",)


def test_a_comma_does_not_carry_a_negation_to_another_attribute(vocab: Vocabulary) -> None:
    q = parse("no diamonds, rose gold please", vocab)
    assert only(q, "material") == Constraint("material", "in", ("rose gold",), hard=False, source="rose gold")
    assert only(q, "stone_type").op == "not_in"


def test_instead_of_excludes_the_old_value_and_prefers_the_new(vocab: Vocabulary) -> None:
    q = parse("rose gold instead of yellow gold", vocab)
    assert only(q, "material", "not_in").value == ("yellow gold",)
    assert only(q, "material", "in").value == ("rose gold",)


def test_an_excluded_value_is_not_also_a_preference(vocab: Vocabulary) -> None:
    q = parse("gold, but not yellow gold", vocab)
    assert set(only(q, "material", "in").value) == {"rose gold", "white gold"}
    assert q.named["material"] == only(q, "material", "in").value


def test_not_followed_by_nothing_known_stays_in_the_delta(vocab: Vocabulary) -> None:
    q = parse("not too flashy", vocab)
    assert q.constraints == [] and q.delta == "not too flashy"


# ------------------------------------------------------------------------------------- soft preferences
def test_with_emeralds_is_a_soft_stone_preference(vocab: Vocabulary) -> None:
    c = only(parse("with emeralds", vocab), "stone_type")
    assert (c.op, c.value, c.hard) == ("in", ("emerald",), False)


def test_gold_is_a_material_preference_when_the_catalog_sells_gold(vocab: Vocabulary) -> None:
    q = parse("in gold", vocab)
    assert set(only(q, "material").value) == GOLDS and "color" not in attributes(q)


def test_a_modifier_shared_with_a_later_phrase_completes_it(vocab: Vocabulary) -> None:
    q = parse("in white or yellow gold", vocab)
    assert set(only(q, "material").value) == {"white gold", "yellow gold"} and "color" not in attributes(q)


def test_colour_brand_and_collection_are_soft_and_named(vocab: Vocabulary) -> None:
    q = parse("a black one from Éclat by Aurèle Maroquinerie", vocab)
    assert q.named == {"color": ("black",), "collection": ("Éclat",), "brand": ("Aurèle Maroquinerie",)}
    assert all(not c.hard for c in q.constraints)


# ------------------------------------------------------------------------------------------- category lock
def test_matching_earrings_locks_earrings_not_the_anchors_necklace(vocab: Vocabulary, necklace: dict) -> None:
    q = parse("matching earrings", vocab, anchor=necklace)
    c = only(q, "subcategory")
    assert (c.op, c.value, c.hard) == ("in", ("earrings",), True)
    assert q.delta == "matching earrings"


def test_a_named_subcategory_locks_without_an_anchor(vocab: Vocabulary) -> None:
    c = only(parse("show me rings in rose gold", vocab), "subcategory")
    assert (c.op, c.value, c.hard) == ("in", ("ring",), True)


def test_several_named_subcategories_make_one_lock(vocab: Vocabulary) -> None:
    assert set(only(parse("rings or bracelets", vocab), "subcategory").value) == {"ring", "bracelet"}


def test_a_named_category_locks_the_category(vocab: Vocabulary, ring: dict) -> None:
    q = parse("watches under 10k", vocab, anchor=ring)
    assert only(q, "category").value == ("Watches",) and "subcategory" not in attributes(q)


def test_the_anchor_lock_falls_back_to_its_category(vocab: Vocabulary) -> None:
    q = parse("in rose gold", vocab, anchor={"category": "Jewelry", "subcategory": None, "price": 100.0})
    c = only(q, "category")
    assert (c.value, c.hard, c.source) == (("Jewelry",), True, "the anchor's category")


def test_excluding_the_anchors_subcategory_locks_its_category_instead(vocab: Vocabulary, ring: dict) -> None:
    q = parse("not a ring", vocab, anchor=ring)
    assert only(q, "subcategory").op == "not_in"
    assert only(q, "category").value == ("Jewelry",)


def test_a_piece_named_after_my_or_this_is_the_anchor_not_the_wish(vocab: Vocabulary, necklace: dict) -> None:
    q = parse("earrings to go with my necklace", vocab, anchor=necklace)
    assert only(q, "subcategory").value == ("earrings",)
    assert "necklace" not in q.delta


def test_a_description_of_the_anchor_is_not_a_preference(vocab: Vocabulary, ring: dict) -> None:
    q = parse("like this gold ring but in silver", vocab, anchor=ring)
    assert only(q, "material").value == ("silver",)
    assert q.delta == "in silver"


def test_a_pandas_row_is_an_anchor(vocab: Vocabulary, products: pd.DataFrame) -> None:
    q = parse("cheaper", vocab, anchor=products.iloc[0])
    assert price(q).value == 2400.0 and only(q, "subcategory").value == ("ring",)


# ---------------------------------------------------------------------------------------------- robustness
def test_case_punctuation_and_unicode_do_not_matter(vocab: Vocabulary, ring: dict) -> None:
    plain = parse("like this, but in rose gold, no diamonds, under 2k", vocab, anchor=ring)
    noisy = parse("  LIKE   THIS\u2026 but in Rose\u2010Gold \u2014 NO Diamonds;  under \u20ac2K!! ", vocab,
                  anchor=ring)
    key = [(c.attribute, c.op, c.value, c.hard) for c in plain.constraints]
    assert [(c.attribute, c.op, c.value, c.hard) for c in noisy.constraints] == key
    assert noisy.delta == "in Rose-Gold"  # dashes and apostrophes are normalised, the words kept as written


def test_unicode_apostrophes_read_as_ascii(vocab: Vocabulary) -> None:
    q = parse("I don\u2019t want diamonds", vocab)
    assert only(q, "stone_type").op == "not_in" and q.delta == ""


def test_empty_text_has_only_the_anchor_lock(vocab: Vocabulary, ring: dict) -> None:
    q = parse("", vocab, anchor=ring)
    assert q.constraints == [Constraint("subcategory", "in", ("ring",), True, "the anchor's subcategory")]
    assert q.delta == "" and q.named == {}
    assert parse("   ", vocab).constraints == []


@pytest.mark.parametrize("text", ["like this, but in rose gold, no diamonds, under 2k", "", "matching earrings ~5k",
                                  "no gold or stones between 1k and 3k", "Éclat bag, cheaper"])
def test_to_dict_is_json_ready(vocab: Vocabulary, ring: dict, text: str) -> None:
    q = parse(text, vocab, anchor=ring)
    out = json.loads(json.dumps(q.to_dict()))
    assert out["text"] == text and out["delta"] == q.delta
    assert [Constraint(**c) for c in out["constraints"]] == q.constraints


def test_describe_says_it_in_plain_words(vocab: Vocabulary, ring: dict) -> None:
    q = parse("in rose gold, no diamonds, under 2,000", vocab, anchor=ring)
    assert [c.describe() for c in q.constraints] == ["type: ring", "stone: not diamond", "price under 2,000",
                                                     "material: rose gold"]


def test_random_strings_never_raise(vocab: Vocabulary, ring: dict) -> None:
    rng = np.random.default_rng(7)
    words = ["no", "not", "rose", "gold", "diamonds", "under", "2k", "between", "and", "or", "1,000", "~", "-", "free",
             "like", "this", "but", "cheaper", "stones", "€", "5 000", "k", "m", ",", "earrings", "my", "w/o", "2.500",
             "around", "Éclat", "anything", "instead", "of", "1e9", "9" * 40, "'", "\u2019", "\u00a0", "\U0001f48d"]
    alphabet = list("abc xyz019,.-~€$£'\"!?/&+<>=()\t\n\u0301\u00e9\u0130\u00df\ufb01\u200b")
    for n in range(600):
        if n % 2:
            text = " ".join(rng.choice(words, size=int(rng.integers(0, 12))))
        else:
            text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))
        q = parse(text, vocab, anchor=ring if n % 3 else None)
        json.dumps(q.to_dict())
        assert isinstance(q.delta, str)
        for c in q.constraints:
            assert c.op in OPS
            if c.attribute == "price":
                assert c.hard and c.op not in ("in", "not_in")
