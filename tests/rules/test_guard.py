"""Guardrails compiled against a catalog: each rule keeps its pieces out, and lists built under random policies,
placements and clients never break a rule, as checked by the independent auditor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rules.boutique import DIFFUSION, FINE, NOW, boutique, index_of
from vendome.models import make_model
from vendome.recommend import recommend, recommend_lists
from vendome.rules import Guard, PolicyError, Request, parse_policy
from vendome.rules.audit import Auditor

APART = f"""
boundaries:
  attribute: brand
  groups: {{fine: ["{FINE}"], diffusion: ["{DIFFUSION}"]}}
  never_together: [[fine, diffusion]]
"""


@pytest.fixture(scope="module")
def data():
    return boutique()


def col(data, name: str, items) -> list:
    return data.products[name].to_numpy()[np.asarray(items)].tolist()


def test_out_of_stock_and_unlaunched_pieces_are_never_allowed(data):
    guard = Guard(parse_policy(""), data)
    allowed = guard.allowed(None, Request("home", now=NOW))[0]
    assert not allowed[data.products["stock_status"].eq("out_of_stock").to_numpy()].any()
    assert not allowed[data.products["created_date"].eq("2026-09-01").to_numpy()].any()
    later = guard.allowed(None, Request("home", now=pd.Timestamp("2026-10-01", tz="UTC").timestamp()))[0]
    assert later[data.products["created_date"].eq("2026-09-01").to_numpy() & data.products["stock_status"].eq(
        "in_stock").to_numpy()].all()


def test_a_placement_excludes_its_categories(data):
    guard = Guard(parse_policy("placements:\n  email: {exclude: {category: [Fragrance]}}\n"), data)
    cats = data.products["category"].to_numpy()
    assert not guard.allowed(None, Request("email"))[0][cats == "Fragrance"].any()
    assert guard.allowed(None, Request("home"))[0][cats == "Fragrance"].any()


def test_catalog_values_the_catalog_lacks_are_named(data):
    text = "placements:\n  home: {exclude: {category: [Fragance]}}\npromotions:\n" \
           "  - {name: x, match: {collection: [Cruise]}, share: 0.2}\n"
    with pytest.raises(PolicyError) as err:
        Guard(parse_policy(text), data)
    assert len(err.value.problems) == 2
    assert "placements.home.exclude.category: 'Fragance' not in the catalog's category values" in str(err.value)
    assert "promotions.0.match.collection: 'Cruise'" in str(err.value)


def test_what_she_bought_is_excluded_except_what_she_rebuys(data):
    inter = data.interactions
    u = int(inter["user"].iloc[0])
    ring, perfume = index_of(data, "MAI00"), index_of(data, "PAR00")
    extra = pd.DataFrame({"user": [u, u], "item": [ring, perfume], "behavior": ["purchase", "purchase"],
                          "timestamp": [inter["timestamp"].max() + 1] * 2, "weight": [10.0, 10.0]})
    history = data.with_interactions(pd.concat([inter, extra]))
    rebuy = parse_policy("repurchase: {allow: {category: [Fragrance]}}")
    allowed = Guard(rebuy, data, history).allowed(np.array([u]), Request("home"))[0]
    assert not allowed[ring] and allowed[perfume]
    assert not Guard(parse_policy(""), data, history).allowed(np.array([u]), Request("home"))[0][perfume]


def test_the_price_band_follows_her_tiers_in_each_category(data):
    guard = Guard(parse_policy("price_band: {enabled: true, below: 0, above: 1}"), data)
    inter = data.interactions
    for u in range(data.n_users):
        mine = inter[(inter["user"] == u) & inter["behavior"].isin(["purchase", "add_to_wishlist", "add_to_cart"])]
        tiers = guard.tiers[mine["item"].to_numpy()]
        tiers = tiers[tiers >= 0]
        allowed = guard.allowed(np.array([u]), Request("home"))[0]
        shown = guard.tiers[allowed]
        assert shown[shown >= 0].min() >= tiers.min() and shown.max() <= tiers.max() + 1


def test_fine_jewelry_never_sits_beside_the_diffusion_line(data):
    guard = Guard(parse_policy(APART), data)
    brands = data.products["brand"].to_numpy()
    scores = np.where(np.isin(brands, [FINE, DIFFUSION]), 10.0, 0.0) + np.linspace(0, 1, data.n_items)
    req = Request("home", now=NOW)
    items, _, _ = guard.select(scores, guard.allowed(None, req)[0], req, 10)
    shown = set(brands[items])
    assert len(items) == 10 and not {FINE, DIFFUSION} <= shown
    anchor = index_of(data, "RIV00")                          # a diffusion ring's product page
    page = Request("product", anchors=(anchor,), now=NOW)
    items, _, _ = guard.select(scores, guard.allowed(None, page)[0], page, 10)
    assert FINE not in set(brands[items]) and anchor not in items


def test_complete_the_look_leaves_out_what_the_cart_already_holds(data):
    guard = Guard(parse_policy(""), data)
    cart = (index_of(data, "MAI00"), index_of(data, "MAN00"))     # a ring and a dress watch
    allowed = guard.allowed(None, Request("cart", anchors=cart))[0]
    subs = data.products["subcategory"].to_numpy()
    assert not allowed[np.isin(subs, ["ring", "dress watch"])].any()
    assert allowed[subs == "necklace"].any()


def test_seasons_show_their_pieces_only_in_their_window_even_over_new_year(data):
    policy = parse_policy("seasons:\n  - {match: {collection: [Resort]}, start: '11-15', end: '01-31'}\n")
    guard = Guard(policy, data)
    resort = data.products["collection"].eq("Resort").to_numpy() & guard.in_stock
    day = {d: pd.Timestamp(d, tz="UTC").timestamp() for d in ("2026-12-20", "2027-01-10", "2026-06-15")}
    assert guard.piece_mask(Request(now=day["2026-12-20"]))[resort].all()
    assert guard.piece_mask(Request(now=day["2027-01-10"]))[resort].all()
    assert not guard.piece_mask(Request(now=day["2026-06-15"]))[resort].any()


def test_a_list_stays_valid_until_the_next_launch_or_the_next_day_of_a_dated_rule(data):
    launch = pd.Timestamp("2026-09-01", tz="UTC").timestamp()          # the boutique's pieces not yet launched
    guard = Guard(parse_policy(""), data)
    assert guard.stable_until(NOW) == launch
    before, after = guard.piece_mask(Request(now=launch - 1)), guard.piece_mask(Request(now=launch))
    assert (before != after).any() and (guard.piece_mask(Request(now=NOW)) == before).all()
    assert guard.stable_until(launch) == np.inf                        # nothing launches after that
    seasonal = Guard(parse_policy("seasons:\n  - {match: {collection: [Resort]}, start: '11-15', end: '01-31'}\n"),
                     data)
    assert seasonal.stable_until(NOW) == pd.Timestamp("2026-06-16", tz="UTC").timestamp()
    assert seasonal.stable_until(launch + 3600) == pd.Timestamp("2026-09-02", tz="UTC").timestamp()


def test_a_promotion_takes_its_share_of_slots_spread_over_the_list(data):
    policy = parse_policy("promotions:\n  - {name: resort, match: {collection: [Resort]}, share: 0.2}\n")
    guard = Guard(policy, data)
    resort = data.products["collection"].eq("Resort").to_numpy()
    scores = np.where(resort, 0.0, 1.0) + np.linspace(0, 0.1, data.n_items)   # organically last
    req = Request("home")
    items, _, labels = guard.select(scores, guard.allowed(None, req)[0], req, 10)
    assert [k for k, lab in enumerate(labels) if lab == "resort"] == [2, 7]
    assert resort[items].sum() == 2 and all(resort[items[k]] for k in (2, 7))
    email = Request("email")
    items, _, labels = guard.select(scores, guard.allowed(None, email)[0], email, 10)
    assert resort[items].sum() == 0 and not any(labels)       # not an e-mail promotion


def test_diversity_trades_relevance_for_variety(data):
    scores = np.where(data.products["category"].eq("Watches").to_numpy(), 5.0, 0.0) + np.linspace(
        0, 1, data.n_items)
    lists = {}
    for strength in (0.0, 0.7):
        guard = Guard(parse_policy(f"diversity: {{strength: {strength}}}"), data)
        items, _, _ = guard.select(scores, guard.allowed(None, Request())[0], Request(), 8)
        lists[strength] = col(data, "category", items)
    assert len(set(lists[0.0])) == 1 and len(set(lists[0.7])) >= 3


def test_recommend_applies_the_guard_on_the_path_the_evaluator_uses(data):
    model = make_model("pop").fit(data)
    policy = parse_policy(APART + "placements:\n  home: {exclude: {category: [Watches]}}\n")
    guard = Guard(policy, data)
    users = np.arange(data.n_users)
    items, scores = recommend(model, users, 10, guard=guard, request=Request("home", now=NOW))
    auditor = Auditor(policy, data)
    for u in users:
        row = [int(i) for i in items[u] if i >= 0]
        assert len(row) == 10 and not auditor.violations(Request("home", user=int(u), now=NOW), row)
    plain, _ = recommend(model, users, 10)
    assert np.isin(plain, np.flatnonzero(data.products["category"].eq("Watches").to_numpy())).any()


RANDOM_RULES = [
    "", APART, "price_band: {enabled: true, below: 0, above: 0}",
    "repurchase: {allow: {category: [Fragrance]}}",
    "placements:\n  home: {exclude: {brand: [Parfums]}}\n  product: {exclude: {category: [Watches]}}\n",
    "seasons:\n  - {match: {collection: [Resort]}, start: '11-15', end: '01-31'}\n",
    "promotions:\n  - {name: halo, match: {collection: [Halo]}, share: 0.3, placements: [home, product, cart]}\n",
    "diversity: {strength: 0.5}",
    APART + "price_band: {enabled: true}\ndiversity: {strength: 0.3}\npromotions:\n"
            "  - {name: atelier, match: {collection: [Atelier]}, share: 0.2, placements: [home, email, cart]}\n",
]


def test_random_requests_never_break_a_rule(data):
    rng = np.random.default_rng(7)
    model = make_model("itemknn").fit(data)
    failures, n = [], 0
    for text in RANDOM_RULES:
        policy = parse_policy(text)
        guard, auditor = Guard(policy, data), Auditor(policy, data)
        for _ in range(60):
            placement = str(rng.choice(["home", "product", "cart", "email"]))
            u = int(rng.integers(data.n_users))
            anchors = tuple(int(a) for a in rng.choice(data.n_items, {"product": 1, "cart": 2}.get(placement, 0),
                                                       replace=False))
            now = float(pd.Timestamp("2026-01-01", tz="UTC").timestamp() + rng.integers(0, 365) * 86400)
            k = int(rng.integers(1, 16))
            req = Request(placement, u, anchors, now)
            items, _, labels = recommend_lists(model, np.array([u]), k, guard=guard, request=req)
            row = [int(i) for i in items[0] if i >= 0]
            found = auditor.violations(req, row, labels[0][:len(row)])
            failures += [f"{text!r} {req}: {v}" for v in found]
            n += 1
    assert n == 540 and not failures, failures[:5]


def test_the_auditor_catches_lists_served_without_the_guard(data):
    policy = parse_policy(APART + "price_band: {enabled: true, below: 0, above: 0}\n"
                          "placements:\n  home: {exclude: {category: [Fragrance]}}\n")
    auditor = Auditor(policy, data)
    brands, cats = data.products["brand"].to_numpy(), data.products["category"].to_numpy()
    both = [int(np.flatnonzero(brands == FINE)[0]), int(np.flatnonzero(brands == DIFFUSION)[0])]
    assert any("beside" in v for v in auditor.violations(Request("home"), both))
    perfume = int(np.flatnonzero(cats == "Fragrance")[0])
    assert any("excluded from placement home" in v for v in auditor.violations(Request("home"), [perfume]))
    sold_out = int(np.flatnonzero(data.products["stock_status"].eq("out_of_stock").to_numpy())[0])
    assert any("out_of_stock" in v for v in auditor.violations(Request("home"), [sold_out]))
    plain, _ = recommend(make_model("itemknn").fit(data), np.arange(data.n_users), 15)
    broken = sum(bool(auditor.violations(Request("home", user=u), [int(i) for i in plain[u] if i >= 0]))
                 for u in range(data.n_users))
    assert broken >= data.n_users // 2


def test_the_evaluator_scores_the_lists_the_guard_serves(data):
    from vendome.data.splits import split
    from vendome.evaluate.run import evaluate

    sp = split(data, "temporal", test_days=30)
    model = make_model("itemknn").fit(sp.train)
    policy = parse_policy(APART + "placements:\n  home: {exclude: {category: [Watches]}}\n")
    plain = evaluate(sp, {"itemknn": model}, progress=False)
    ruled = evaluate(sp, {"itemknn": model}, progress=False, policy=policy)
    assert ruled["models"]["itemknn"]["guardrail_violations"] == 0
    assert ruled["rules"]["in_stock_only"] and ruled["policy"]["boundaries"]["groups"]["fine"] == [FINE]
    assert plain["models"]["itemknn"]["exposure"] != ruled["models"]["itemknn"]["exposure"]
