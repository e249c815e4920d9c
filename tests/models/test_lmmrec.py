"""LMMRec: motivation profiles from notes, reviews and copy; what the plug-in learns from them; switches; reasons."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from models.model_fixtures import T0, customers, dataset, products
from vendome.data.dataset import Dataset
from vendome.models import make_model
from vendome.models.lmmrec import LMMRecNet, MotivationProfiles
from vendome.models.multibehavior import BehaviorGraphs
from vendome.motivations.rules import RuleExtractor

FAST = {"factors": 8, "epochs": 40, "batch_size": 64, "lr": 0.05, "validate": False, "profile": "labels"}
METALS = ("rose gold", "yellow gold")


def two_metals(n_veterans: int = 32, n_new: int = 12, seed: int = 0) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Half the pieces are rose gold, half yellow gold, as their copy says. Every client has a note naming her metal;
    veterans view five pieces of it and buy two, newcomers have viewed a single piece, of either metal. Returns the
    dataset, each piece's metal and each client's."""
    rng = np.random.default_rng(seed)
    n_items = 16
    metal = np.arange(n_items) % 2
    prods = products([f"{METALS[m].title()} ring {i}" for i, m in enumerate(metal)])
    prods["description"] = [f"An 18k {METALS[m]} ring with a polished band." for m in metal]
    n = n_veterans + n_new
    mine = np.arange(n) % 2
    events = []
    for u in range(n):
        pieces = rng.permutation(np.flatnonzero(metal == mine[u]))
        if u < n_veterans:
            events += [(u, int(i), "view", float(d)) for d, i in enumerate(pieces[:5])]
            events += [(u, int(i), "purchase", 6.0 + d) for d, i in enumerate(pieces[:2])]
        else:
            events.append((u, int(rng.integers(n_items)), "view", 1.0))
    data = dataset(prods, customers(n), events, name="two metals")
    notes = pd.DataFrame({"user": np.arange(n, dtype=np.int32), "item": np.full(n, -1, np.int32), "kind": "note",
                          "text": [f"Only wears {METALS[m]}." for m in mine],
                          "timestamp": np.zeros(n, np.int64)})
    return data.with_texts(notes), metal, mine


@pytest.fixture(scope="module")
def boutique():
    return two_metals()


def metal_share(model, data: Dataset, metal: np.ndarray, mine: np.ndarray, users: np.ndarray) -> float:
    scores = model.score(users)
    seen = data.matrix().toarray()[users] > 0
    scores[seen] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :3]
    return float(np.mean(metal[top] == mine[users][:, None]))


def test_profiles_read_her_notes_and_the_pieces_copy(boutique):
    data, metal, mine = boutique
    profiles = MotivationProfiles.extract(data, RuleExtractor())
    assert profiles.users[0] == Counter({("+", "rose gold"): 1})
    assert profiles.users[1] == Counter({("+", "yellow gold"): 1})
    assert ("+", METALS[metal[3]]) in profiles.items[3]
    assert MotivationProfiles.sentence(Counter({("+", "gift"): 2, ("-", "diamonds"): 1})) == \
        "loves: gift; avoids: diamonds"
    x, has = MotivationProfiles.vectors(profiles.users, "labels")
    assert has.all() and x.shape == (len(mine), 2 * 23) and (x > 0).sum(1).tolist() == [1] * len(mine)


def test_her_notes_steer_the_newcomers_where_their_clicks_cannot(boutique):
    data, metal, mine = boutique
    new = np.arange(32, 44)
    base = make_model("mbmf", seed=0, **{k: v for k, v in FAST.items() if k != "profile"}).fit(data)
    plug = make_model("lmmrec:mbmf", seed=0, **FAST).fit(data)
    assert plug.name == "lmmrec:mbmf"
    with_notes, without = metal_share(plug, data, metal, mine, new), metal_share(base, data, metal, mine, new)
    assert with_notes >= 0.7 and with_notes > without + 0.2, (with_notes, without)


def test_noise_corrupts_that_share_of_the_motivations(boutique):
    data, _, _ = boutique
    clean = MotivationProfiles.extract(data, RuleExtractor())
    noisy = MotivationProfiles.extract(data, RuleExtractor(), noise=1.0, seed=0)
    changed = np.mean([clean.users[u] != noisy.users[u] for u in range(data.n_users)])
    assert changed > 0.9
    half = MotivationProfiles.extract(data, RuleExtractor(), noise=0.5, seed=0)
    assert 0.3 < np.mean([clean.users[u] != half.users[u] for u in range(data.n_users)]) < 0.7


def test_switches_drop_their_terms(boutique):
    data, _, _ = boutique
    model = make_model("lmmrec:mbmf", seed=0, **{**FAST, "epochs": 1, "fuse": False, "lambda_mcs": 0.0,
                                                  "lambda_itcm": 0.0}).fit(data)
    assert model.base_model().name == "mbmf"
    net = model.build(BehaviorGraphs.from_dataset(data))
    assert isinstance(net, LMMRecNet) and not net.fuse
    users, _ = net.reps()
    base_users, _ = net.base.reps()
    assert all((a == b).all() for a, b in zip(users, base_users, strict=True))
    with pytest.raises(ValueError, match="profile must be one of"):
        make_model("lmmrec:mbmf", **{**FAST, "profile": "emoji"}).fit(data)


def test_the_text_profile_path_and_the_lightgcn_base_train(boutique):
    data, metal, mine = boutique
    model = make_model("lmmrec:mblightgcn", seed=0, **{**FAST, "profile": "text"}).fit(data)
    assert model.user_x_.shape == (data.n_users, 384) and model.name == "lmmrec:mblightgcn"
    assert metal_share(model, data, metal, mine, np.arange(32)) > 0.8


def test_reasons_name_the_motivations_she_shares_with_the_piece_and_forget_erases_them(boutique):
    data, metal, mine = boutique
    model = make_model("lmmrec:mbmf", seed=0, **FAST).fit(data)
    piece = int(np.flatnonzero(metal == mine[0])[-1])
    (reason,) = model.explain(0, np.array([piece]))
    assert "matches what she told us she loves: rose gold" in reason.text
    assert reason.signals["motivation_rose_gold"] == 1.0
    model.forget(np.array([0]))
    assert model.profiles_.users[0] == Counter()
    assert "loves" not in model.explain(0, np.array([piece]))[0].text


def test_intent_reads_her_notes_of_the_days_before_and_what_each_piece_is():
    from vendome.models.lmmrec import notes_before, piece_kinds

    data, _, _ = two_metals(n_veterans=4, n_new=0)
    data.products["subcategory"], data.products["material"] = "ring", "rose gold"
    end = int(data.interactions["timestamp"].max())
    notes = pd.DataFrame({"user": np.array([0, 0, 1, 2], np.int32), "item": np.full(4, -1, np.int32),
                          "kind": ["note", "note", "note", "review"],
                          "text": ["Coming back for a ring in rose gold.", "Only wears rose gold.",
                                   "Looking for earrings in platinum.", "Coming back for a ring."],
                          "timestamp": np.array([end - 86_400, end - 40 * 86_400, end + 5, end])})
    data = data.with_texts(notes)
    said = notes_before(data, np.arange(4), np.full(4, end), days=21)
    assert said[0] == "Coming back for a ring in rose gold."          # the 40-day-old note is left out
    assert said[1] == ""                                               # written after the moment scored
    assert said[2] == "" and said[3] == ""                             # a review is not an associate's note
    assert piece_kinds(data)[0] == "ring in rose gold"


def intent_shop(n_clients: int = 60, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """Rings and bracelets that clicks cannot tell apart (every client viewed one of each, the same two pieces for
    all), and each client's last purchase, a ring or a bracelet, announced by a note a few days before it. Returns
    the dataset and what each client bought last."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["ring", "bracelet"] * 6)
    prods = products([f"{k.title()} {i}" for i, k in enumerate(kinds)])
    prods["subcategory"], prods["material"] = kinds, "rose gold"
    events, last, notes = [], [], []
    for u in range(n_clients):
        events += [(u, 0, "view", 1.0), (u, 1, "view", 2.0), (u, int(rng.integers(2, 12)), "purchase", 3.0)]
        pick = int(rng.choice(np.flatnonzero(kinds == ("ring" if u % 2 else "bracelet"))[1:]))
        events.append((u, pick, "purchase", 30.0))
        last.append(pick)
        notes.append((u, f"Coming back for a {kinds[pick]} in rose gold.", int(T0.timestamp()) + 27 * 86_400))
    data = dataset(prods, customers(n_clients), events, name="intent shop")
    texts = pd.DataFrame({"user": np.array([n[0] for n in notes], np.int32), "item": np.full(len(notes), -1, np.int32),
                          "kind": "note", "text": [n[1] for n in notes],
                          "timestamp": np.array([n[2] for n in notes], np.int64)})
    return data.with_texts(texts), np.array(last)


def test_the_intent_weight_is_chosen_on_held_out_purchases_and_steers_the_kind():
    data, last = intent_shop()
    kinds = data.products["subcategory"].to_numpy()
    settings = {**FAST, "profile": "text", "validate": True, "max_validation_users": None, "epochs": 20}
    with_intent = make_model("lmmrec:mbmf", intent_days=7, **settings).fit(data)
    assert with_intent.intent_choice_["weight"] > 0 and with_intent.intent_choice_["noted"] >= 0.8 * len(last)
    scores = with_intent.score(np.arange(len(last)))
    scores[data.matrix().toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :3]
    said = np.array(["ring" if u % 2 else "bracelet" for u in range(len(last))])
    assert np.mean(kinds[top] == said[:, None]) > 0.9                # her note of a few days ago names the kind
    without = make_model("lmmrec:mbmf", intent_days=0, **settings).fit(data)
    assert not hasattr(without, "intent_choice_") and without.intents_ is None
    shuffled = make_model("lmmrec:mbmf", intent_days=7, noise=1.0, **settings).fit(data)   # others' notes
    scores = shuffled.score(np.arange(len(last)))
    scores[data.matrix().toarray() > 0] = -np.inf
    assert np.mean(kinds[np.argsort(-scores, axis=1)[:, :3]] == said[:, None]) < 0.8


def test_the_demo_notes_what_a_client_is_coming_back_for_before_she_buys_it(tmp_path):
    from vendome.data.demo import generate

    generate(tmp_path, size="small", seed=3)
    notes = pd.read_csv(tmp_path / "client_notes.csv")
    orders = pd.read_csv(tmp_path / "orders.csv", parse_dates=["order_date"])
    lines = pd.read_csv(tmp_path / "order_items.csv").drop_duplicates("order_id")
    pieces = pd.read_csv(tmp_path / "products.csv")[["product_id", "subcategory", "material"]]
    bought = orders.merge(lines, on="order_id").merge(pieces, on="product_id")
    intent = notes[notes["text"].str.contains("Coming back for|Will return to see|Looking for")]
    assert len(intent) > 50
    for note in intent.itertuples():            # each names the piece of one of her orders 1 to 14 days later
        after = (bought["order_date"] - pd.Timestamp(note.timestamp)).dt.total_seconds() / 86_400
        hers = bought[(bought["customer_id"] == note.customer_id) & (after >= 1) & (after <= 14)]
        assert any(f"{r.subcategory} in {r.material}" in note.text for r in hers.itertuples()), note.text


def test_the_intent_term_alone_over_the_plain_base_tables():
    """fuse off and no alignment: the base's own tables (parameters) with the intent columns; nothing else."""
    data, last = intent_shop()
    settings = {**FAST, "profile": "text", "validate": True, "max_validation_users": None, "epochs": 10}
    model = make_model("lmmrec:mbmf", intent_days=7, fuse=False, lambda_mcs=0, lambda_itcm=0, **settings).fit(data)
    assert model.intent_choice_["weight"] > 0
    assert model.score(np.arange(len(last))).shape == (len(last), data.n_items)
