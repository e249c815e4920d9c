"""The composed-search engine on the small demo boutique: constraints hold, the change is applied, it persists."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vendome.pipeline import training_data
from vendome.search.constraints import satisfies
from vendome.search.engine import ComposedSearch, search_engine
from vendome.workspace import Workspace


@pytest.fixture(scope="module")
def ws(boutique_ws, tmp_path_factory) -> Workspace:
    dst = tmp_path_factory.mktemp("search") / "ws"
    shutil.copytree(boutique_ws, dst)
    return Workspace(dst)


@pytest.fixture(scope="module")
def data(ws):
    return training_data(ws, progress=False)


@pytest.fixture(scope="module")
def engine(ws, data) -> ComposedSearch:
    return search_engine(ws, data=data, progress=False, epochs=8)


def a_ring(engine: ComposedSearch, stone: str = "diamond") -> str:
    p = engine.products_
    rows = p[(p["subcategory"] == "ring") & (p["stone_type"] == stone)]
    return str(rows["product_id"].iloc[0])


def test_every_result_satisfies_every_hard_constraint(engine):
    anchor = a_ring(engine)
    price = float(engine.product(anchor)["price"])
    text = f"like this, but in rose gold, no diamonds, under {int(price * 1.5):,}"
    out = engine.search(text, anchor=anchor, k=20)
    hard = [c for c in engine.parse(text, anchor).constraints if c.hard]
    kinds = {(c.attribute, c.op) for c in hard}
    assert {("stone_type", "not_in"), ("price", "lt"), ("subcategory", "in")} <= kinds
    assert out["results"], "the boutique holds other rings"
    for r in out["results"]:
        record = engine.records_[engine.item_of(r["product_id"])]
        assert all(satisfies(record, c) for c in hard), (r, record)
        assert r["product_id"] != anchor


def test_the_change_asked_for_comes_first(engine):
    anchor = a_ring(engine)
    out = engine.search("like this, but in rose gold", anchor=anchor, k=5)
    materials = [engine.product(r["product_id"])["material"] for r in out["results"]]
    assert materials[0] == "rose gold"
    assert "rose gold as asked" in out["results"][0]["reason"]


def test_words_alone_search_the_whole_catalog(engine):
    out = engine.search("a necklace in white gold with sapphires", k=5)
    subs = {engine.product(r["product_id"])["subcategory"] for r in out["results"]}
    assert subs == {"necklace"}


def test_excluded_pieces_never_come_back(engine):
    anchor = a_ring(engine)
    first = engine.search("like this, but in yellow gold", anchor=anchor, k=5)["results"]
    again = engine.search("like this, but in yellow gold", anchor=anchor, k=5,
                          exclude=[r["product_id"] for r in first])["results"]
    assert not {r["product_id"] for r in first} & {r["product_id"] for r in again}


def test_a_house_mask_and_a_clients_affinity_are_applied(engine):
    anchor = a_ring(engine)
    allowed = np.ones(len(engine.ids_), bool)
    top = engine.search("in white gold", anchor=anchor, k=3)["results"][0]["product_id"]
    allowed[engine.item_of(top)] = False
    assert top not in [r["product_id"] for r in engine.search("in white gold", anchor=anchor, k=10,
                                                              allowed=allowed)["results"]]
    affinity = np.zeros(len(engine.ids_))
    plain = engine.search("a ring", k=10)["results"]
    favourite = plain[-1]["product_id"]
    affinity[engine.item_of(favourite)] = 1.0
    ranked = [r["product_id"] for r in engine.search("a ring", k=10, affinity=affinity)["results"]]
    assert ranked.index(favourite) < 9


def test_bad_requests_are_refused_with_the_reason(engine):
    with pytest.raises(KeyError, match="NOPE"):
        engine.search("in rose gold", anchor="NOPE")
    with pytest.raises(ValueError, match="words .* or an anchor"):
        engine.search("")


def test_the_workspace_engine_is_saved_and_loaded_back_identical(ws, data, engine):
    meta = json.loads((ws.root / "search" / "meta.json").read_text())
    assert meta["n_items"] == data.n_items and meta["composer"] == "film"
    again = search_engine(ws, data=data, progress=False)
    anchor = a_ring(engine)
    a = engine.search("like this, but in platinum, under 50k", anchor=anchor, k=10)
    b = again.search("like this, but in platinum, under 50k", anchor=anchor, k=10)
    assert [r["product_id"] for r in a["results"]] == [r["product_id"] for r in b["results"]]
    np.testing.assert_allclose([r["score"] for r in a["results"]], [r["score"] for r in b["results"]], atol=1e-4)


def test_another_catalog_is_refused_by_load_and_refitted_by_the_workspace(ws, data, engine):
    smaller = data.with_interactions(data.interactions)
    smaller.products = data.products.assign(price=data.products["price"] * 2)
    with pytest.raises(ValueError, match="another catalog"):
        ComposedSearch.load(ws.root / "search", smaller)


def test_reindex_serves_a_grown_catalog_without_training(engine, data):
    grown = engine.__class__.__new__(engine.__class__)
    grown.__dict__.update(engine.__dict__)
    grown.reindex(data)
    anchor = a_ring(engine)
    ids = [r["product_id"] for r in grown.search("in rose gold", anchor=anchor, k=5)["results"]]
    assert ids == [r["product_id"] for r in engine.search("in rose gold", anchor=anchor, k=5)["results"]]


def test_a_local_clip_checkpoint_replaces_the_learned_adapter(ws, data, tiny_clip, tmp_path):
    """The same engine over a CLIP-family model's own towers: the catalog and the query words are embedded by it."""
    clip_ws = Workspace(tmp_path / "clip_ws")
    shutil.copytree(ws.root, clip_ws.root)
    shutil.rmtree(clip_ws.root / "search")
    engine = search_engine(clip_ws, data=data, clip=str(tiny_clip), progress=False, epochs=2)
    assert engine.space == str(tiny_clip) and engine.space_.text_dim_ == 16
    assert json.loads((clip_ws.root / "search" / "meta.json").read_text())["space"] == str(tiny_clip)
    anchor = a_ring(engine)
    out = engine.search("like this, but no diamonds", anchor=anchor, k=5)
    assert out["results"]
    assert all(engine.product(r["product_id"])["stone_type"] != "diamond" for r in out["results"])
    assert search_engine(clip_ws, data=data, progress=False).space == str(tiny_clip)    # kept, not refitted


def test_hard_constraints_hold_on_every_result_of_many_random_queries(engine):
    """Negations, price ranges and the subcategory lock over 150 random anchors and phrasings: the words are read
    as written, and no result breaks any hard constraint (checked row by row with the reference semantics)."""
    rng = np.random.default_rng(7)
    p = engine.products_
    stones = sorted(set(p["stone_type"]) - {"none"})
    materials = sorted(set(p["material"]))
    checked = 0
    for _ in range(150):
        a = int(rng.integers(len(p)))
        stone, material = stones[rng.integers(len(stones))], materials[rng.integers(len(materials))]
        limit = int(rng.choice([500, 1000, 2500, 5000, 20000, 100000]))
        lo, hi = sorted(rng.choice([800, 1500, 3000, 6000, 12000], size=2, replace=False))
        wording, expect = [
            (f"like this, but no {stone}s", ("stone_type", "not_in", stone)),
            (f"the same, not in {material}", ("material", "not_in", material)),
            (f"like this but under {limit:,}", ("price", "lt", float(limit))),
            (f"in rose gold, between {lo:,} and {hi:,} euros", ("price", "between", (float(lo), float(hi)))),
            (f"around {limit // 1000}k, without {stone}s", ("stone_type", "not_in", stone)),
        ][int(rng.integers(5))]
        out = engine.search(wording, anchor=engine.ids_[a], k=10)
        hard = [c for c in engine.parse(wording, engine.ids_[a]).constraints if c.hard]
        attribute, op, value = expect
        assert any(c.attribute == attribute and c.op == op and (
            value in c.value if op == "not_in" else c.value == value) for c in hard), (wording, hard)
        assert any(c.attribute == "subcategory" for c in hard)
        for r in out["results"]:
            record = engine.records_[engine.item_of(r["product_id"])]
            for c in hard:
                assert satisfies(record, c), (wording, c, record)
                checked += 1
    assert checked > 1000


def test_a_saved_engine_of_another_format_is_refused(ws, data, engine, tmp_path):
    folder = tmp_path / "old"
    engine.save(folder)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(ValueError, match="format 1"):
        ComposedSearch.load(folder, data)
