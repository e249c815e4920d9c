"""The attribute guard: `satisfies` is the reference semantics on one record; the vectorised masks must agree with
it row by row, whatever the catalog's casing, whitespace and missing values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vendome.search.constraints import AttributeGuard, Constraint, satisfies
from vendome.search.query import Vocabulary, parse

MATERIALS = ["yellow gold", "Rose Gold", " rose gold ", "white gold", "silver", "STEEL", "calfskin", None]
STONES = ["none", "diamond", "Diamond", "ruby", "pearl", None, float("nan")]
COLORS = ["black", "rose", "gold", "white", pd.NA]
SUBCATEGORIES = ["ring", "necklace", "earrings", "handbag", "dress watch", None]


def random_catalog(rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    """Values in mixed case and padding, with every kind of missing value, and some unpriced pieces."""
    def pick(values: list) -> list:
        return [values[k] for k in rng.integers(0, len(values), n)]

    price = rng.uniform(100, 20000, n).round(2)
    price[rng.random(n) < 0.1] = np.nan
    price[:3] = (2000.0, 1000.0, 3000.0)  # the boundaries of the constraints drawn below
    return pd.DataFrame({"product_id": [f"p{i}" for i in range(n)], "material": pick(MATERIALS),
                         "stone_type": pick(STONES), "color": pick(COLORS), "subcategory": pick(SUBCATEGORIES),
                         "price": price})


def random_constraint(rng: np.random.Generator) -> Constraint:
    hard = bool(rng.random() < 0.7)
    kind = int(rng.integers(0, 6))
    if kind < 4:
        attribute, pool = [("material", MATERIALS), ("stone_type", STONES), ("color", COLORS),
                           ("subcategory", SUBCATEGORIES)][kind]
        names = [str(v) for v in pool if isinstance(v, str)] + ["PLATINUM", "absent"]
        values = tuple(rng.choice(names, size=int(rng.integers(1, 4)), replace=False))
        return Constraint(attribute, str(rng.choice(["in", "not_in"])), values, hard)
    if kind == 4:
        lo, hi = sorted(rng.choice([1000.0, 2000.0, 3000.0, 7500.5], size=2, replace=False))
        return Constraint("price", "between", (lo, hi), hard)
    return Constraint("price", str(rng.choice(["lt", "le", "gt", "ge"])), float(rng.choice([1000.0, 2000.0, 3000.0])),
                      hard)


def records(products: pd.DataFrame) -> list[dict]:
    return products.to_dict("records")


# ------------------------------------------------------------------------------------------ reference semantics
def test_strings_compare_case_insensitively_on_the_stripped_text() -> None:
    c = Constraint("material", "in", ("Rose Gold",))
    assert satisfies({"material": "  rose GOLD "}, c)
    assert not satisfies({"material": "rose golden"}, c)


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, pd.NaT])
def test_a_missing_value_never_satisfies_in_and_always_satisfies_not_in(missing) -> None:
    assert not satisfies({"stone_type": missing}, Constraint("stone_type", "in", ("diamond",)))
    assert satisfies({"stone_type": missing}, Constraint("stone_type", "not_in", ("diamond",)))


def test_a_missing_column_reads_as_a_missing_value() -> None:
    assert not satisfies({}, Constraint("brand", "in", ("Aurèle",)))
    assert satisfies({}, Constraint("brand", "not_in", ("Aurèle",)))


@pytest.mark.parametrize("op", ["lt", "le", "gt", "ge"])
def test_a_missing_price_satisfies_no_price_constraint(op: str) -> None:
    for missing in (None, float("nan"), "n/a"):
        assert not satisfies({"price": missing}, Constraint("price", op, 2000.0))
    assert not satisfies({"price": None}, Constraint("price", "between", (0.0, 1e12)))


def test_limits_are_strict_or_inclusive_as_named() -> None:
    row = {"price": 2000.0}
    assert not satisfies(row, Constraint("price", "lt", 2000))
    assert satisfies(row, Constraint("price", "le", 2000))
    assert not satisfies(row, Constraint("price", "gt", 2000))
    assert satisfies(row, Constraint("price", "ge", 2000))
    assert satisfies(row, Constraint("price", "between", (2000, 3000)))
    assert satisfies(row, Constraint("price", "between", (1000, 2000)))


def test_a_price_written_as_text_is_read_as_a_number() -> None:
    assert satisfies({"price": " 1500 "}, Constraint("price", "lt", 2000))


# ------------------------------------------------------------------------------------------------- Constraint
def test_constraint_values_are_coerced_to_hashable_json_ready_forms() -> None:
    c = Constraint("material", "in", ["rose gold", "platinum"], hard=False, source="rose gold or platinum")
    assert c.value == ("rose gold", "platinum") and hash(c)
    assert Constraint("stone_type", "not_in", "diamond").value == ("diamond",)
    assert Constraint("price", "between", [1000, 3000]).value == (1000.0, 3000.0)
    assert c.to_dict() == {"attribute": "material", "op": "in", "value": ["rose gold", "platinum"], "hard": False,
                           "source": "rose gold or platinum"}


def test_an_unknown_op_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown constraint op"):
        Constraint("price", "below", 2000.0)


@pytest.mark.parametrize(("c", "words"), [
    (Constraint("stone_type", "not_in", ("diamond",)), "stone: not diamond"),
    (Constraint("material", "in", ("rose gold",), hard=False), "material: rose gold"),
    (Constraint("price", "lt", 2000.0), "price under 2,000"),
    (Constraint("price", "ge", 1000.0), "price from 1,000"),
    (Constraint("price", "between", (4000.0, 6000.0)), "price between 4,000 and 6,000"),
    (Constraint("price", "le", 1499.5), "price up to 1,499.50"),
])
def test_describe(c: Constraint, words: str) -> None:
    assert c.describe() == words


# ----------------------------------------------------------------------------------------------------- guard
@pytest.mark.parametrize("seed", range(8))
def test_hard_mask_agrees_with_satisfies_row_by_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    products = random_catalog(rng)
    guard, rows = AttributeGuard(products), records(products)
    for _ in range(25):
        constraints = [random_constraint(rng) for _ in range(int(rng.integers(0, 6)))]
        expected = np.array([all(satisfies(r, c) for c in constraints if c.hard) for r in rows])
        np.testing.assert_array_equal(guard.hard_mask(constraints), expected)


@pytest.mark.parametrize("seed", range(4))
def test_soft_matches_counts_the_soft_constraints_each_item_meets(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    products = random_catalog(rng)
    guard, rows = AttributeGuard(products), records(products)
    for _ in range(20):
        constraints = [random_constraint(rng) for _ in range(int(rng.integers(0, 6)))]
        expected = [sum(satisfies(r, c) for c in constraints if not c.hard) for r in rows]
        np.testing.assert_array_equal(guard.soft_matches(constraints), np.array(expected, float))


def test_violations_are_exactly_the_hard_constraints_a_row_breaks() -> None:
    rng = np.random.default_rng(3)
    products = random_catalog(rng, 120)
    guard = AttributeGuard(products)
    constraints = [random_constraint(rng) for _ in range(6)]
    mask = guard.hard_mask(constraints)
    for i in range(len(products)):
        broken = guard.violations(i, constraints)
        assert all(c.hard for c in broken)
        assert (not broken) == bool(mask[i])


def test_without_hard_constraints_everything_is_allowed() -> None:
    products = random_catalog(np.random.default_rng(0), 50)
    guard = AttributeGuard(products)
    soft = [Constraint("material", "in", ("platinum",), hard=False)]
    assert guard.hard_mask([]).all() and guard.hard_mask(soft).all()
    assert (guard.soft_matches([]) == 0).all()


def test_a_column_the_catalog_lacks_is_missing_everywhere() -> None:
    guard = AttributeGuard(pd.DataFrame({"material": ["silver", "steel"], "price": [1.0, 2.0]}))
    assert not guard.hard_mask([Constraint("brand", "in", ("Aurèle",))]).any()
    assert guard.hard_mask([Constraint("brand", "not_in", ("Aurèle",))]).all()
    assert not guard.hard_mask([Constraint("weight", "lt", 10.0)]).any()


def test_price_constraints_read_the_list_price_not_the_sale_price() -> None:
    products = pd.DataFrame({"price": [3000.0, 1500.0], "sale_price": [1500.0, np.nan]})
    np.testing.assert_array_equal(AttributeGuard(products).hard_mask([Constraint("price", "lt", 2000.0)]),
                                  [False, True])


def test_the_mask_a_caller_gets_is_its_own() -> None:
    guard = AttributeGuard(pd.DataFrame({"material": ["silver", "steel"]}))
    c = [Constraint("material", "in", ("silver",))]
    first = guard.hard_mask(c)
    first[:] = False
    np.testing.assert_array_equal(guard.hard_mask(c), [True, False])
    assert not guard.mask(c[0]).flags.writeable


def test_an_unpriced_catalog_passes_no_price_constraint() -> None:
    guard = AttributeGuard(pd.DataFrame({"material": ["silver"], "price": [None]}))
    assert not guard.hard_mask([Constraint("price", "gt", 0.0)]).any()
    assert math.isnan(guard._column_numbers("price")[0])


def test_a_parsed_query_filters_the_catalog_end_to_end() -> None:
    products = pd.DataFrame({
        "product_id": ["anchor", "rose", "rose_diamond", "rose_dear", "white", "rose_earrings", "unknown_stone"],
        "subcategory": ["ring", "ring", "ring", "ring", "ring", "earrings", "ring"],
        "material": ["yellow gold", "rose gold", "rose gold", "rose gold", "white gold", "rose gold", "rose gold"],
        "stone_type": ["diamond", "none", "diamond", "none", "none", "none", None],
        "price": [2400.0, 1900.0, 1800.0, 2600.0, 1500.0, 900.0, 1200.0],
    })
    q = parse("like this, but in rose gold, no diamonds, under 2k", Vocabulary.from_products(products),
              anchor=products.iloc[0].to_dict())
    guard = AttributeGuard(products)
    allowed = products.loc[guard.hard_mask(q.constraints), "product_id"].tolist()
    assert allowed == ["rose", "white", "unknown_stone"]
    preferred = products.loc[guard.soft_matches(q.constraints) == 1, "product_id"].tolist()
    assert set(allowed) & set(preferred) == {"rose", "unknown_stone"}
    assert [c.describe() for c in guard.violations(2, q.constraints)] == ["stone: not diamond"]
