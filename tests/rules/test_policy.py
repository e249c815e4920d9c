"""The guardrail file: strict schema, errors that name line and field, and a bad file never replaces a good one."""

from __future__ import annotations

from pathlib import Path

import pytest

from vendome.rules import DEFAULT_RULES, Policy, PolicyError, load_policy, parse_policy, save_policy

GOOD = """\
version: 1
boundaries:
  attribute: brand
  groups: {fine: [Maison Haute Joaillerie], diffusion: [Rive]}
  never_together: [[fine, diffusion]]
promotions:
  - {name: resort, match: {collection: [Resort]}, share: 0.2, placements: [home, email]}
"""


def test_the_shipped_default_is_the_evaluators_rules():
    policy = load_policy()
    assert policy.in_stock_only and policy.launched_only and policy.repurchase.exclude_purchased
    assert policy.placement("cart").complementary and not policy.placement("home").complementary
    assert not policy.promotions and not policy.boundaries.groups and policy.diversity.strength == 0
    assert load_policy(DEFAULT_RULES) == policy


def test_a_good_file_parses():
    policy = parse_policy(GOOD)
    assert policy.boundaries.never_together == [("fine", "diffusion")]
    assert policy.promotions[0].share == 0.2 and policy.promotions[0].placements == ["home", "email"]


def test_a_typo_in_a_key_is_an_error_with_its_line_and_field():
    text = "version: 1\nplacements:\n  home:\n    exclud: {category: [Watches]}\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "rules.yaml")
    assert "rules.yaml" in str(err.value)
    assert "line 4: placements.home.exclud: unknown setting" in str(err.value)


def test_every_problem_is_reported_at_once_with_the_value_and_expectation():
    text = "version: 1\nprice_band:\n  below: 7\ndiversity:\n  strength: lots\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text)
    problems = err.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("line 3: price_band.below:") and "got 7" in problems[0]
    assert problems[1].startswith("line 5: diversity.strength:") and "'lots'" in problems[1]


def test_boundaries_must_name_declared_groups():
    text = "boundaries:\n  groups: {fine: [A]}\n  never_together: [[fine, outlet]]\n"
    with pytest.raises(PolicyError, match="'outlet', which is not under groups"):
        parse_policy(text)


def test_a_season_needs_real_days_of_one_kind():
    with pytest.raises(PolicyError, match="not a calendar day: '02-30'"):
        parse_policy("seasons:\n  - {match: {category: [Shoes]}, start: '02-30', end: '03-10'}\n")
    with pytest.raises(PolicyError, match="both be MM-DD or both"):
        parse_policy("seasons:\n  - {match: {category: [Shoes]}, start: '10-01', end: '2027-03-10'}\n")


def test_broken_yaml_names_its_line():
    with pytest.raises(PolicyError, match="line 2, column"):
        parse_policy("version: 1\nin_stock_only: yes: no\n")


def test_an_unknown_placement_is_refused():
    with pytest.raises(ValueError, match="unknown placement 'checkout'"):
        Policy().placement("checkout")


def test_save_replaces_the_file_only_with_a_valid_policy(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    save_policy(path, GOOD)
    assert load_policy(path).promotions[0].name == "resort"
    with pytest.raises(PolicyError):
        save_policy(path, GOOD.replace("share: 0.2", "share: 2"))
    assert path.read_text() == GOOD

    def refuse(policy: Policy) -> None:
        raise PolicyError("catalog", ["collection 'Resort' is not in the catalog"])

    with pytest.raises(PolicyError, match="not in the catalog"):
        save_policy(path, GOOD.replace("0.2", "0.3"), check=refuse)
    assert path.read_text() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.yaml"]   # no temporary file left behind


def test_the_documented_example_is_a_valid_file():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "RULES.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(example, "docs/RULES.md")
    assert policy.price_band.enabled and policy.promotions[0].name == "resort launch"
    assert policy.seasons[0].start == "10-01" and policy.placement("email").exclude.category == ["Watches"]


def test_an_impossible_promotion_date_is_reported_with_its_line():
    text = "promotions:\n  - {name: x, match: {collection: [A]}, share: 0.2,\n     start: 2026-02-30}\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text)
    assert err.value.problems[0].startswith("line 3: promotions.0.start:") and "2026-02-30" in err.value.problems[0]
