import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.model_fixtures import customers, dataset, products
from training.journeys import cycle_boutique
from vendome.data.dataset import Dataset
from vendome.models.base import Recommender
from vendome.models.cammsr import CAMMSR, DyT, category_labels, centred_features, nearest_neighbours
from vendome.training.sequences import NextItemBatches, Sequences

FAST = {"hidden": 16, "heads": 1, "layers": 1, "dropout": 0.1, "max_len": 10, "batch_size": 32, "lr": 0.01,
        "validate": False}
SEEN, READ = 0, 1  # jewelry is chosen by its look, watches by their description


def two_sense_boutique(n_users: int = 160, looks: int = 4, per_look: int = 8, length: int = 6,
                       seed: int = 0) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Each client browses one look. A ring's look shows in its image, its text is boilerplate; a watch's shows in
    its text, its image is boilerplate (a round dial). Returns the Dataset, each item's category and look."""
    rng = np.random.default_rng(seed)
    n, dim = 2 * looks * per_look, 16
    category = np.repeat([SEEN, READ], looks * per_look)
    look = np.repeat(np.arange(2 * looks), per_look)
    telling = rng.normal(size=(2 * looks, dim))[look] + 0.3 * rng.normal(size=(n, dim))
    boilerplate = rng.normal(size=(2, dim))[category] + rng.normal(size=(n, dim))
    events = []
    for u in range(n_users):
        mine = np.flatnonzero(look == rng.integers(2 * looks))
        for step, i in enumerate(rng.choice(mine, length, replace=False)):
            events.append((u, int(i), "view", step + rng.uniform(0, 0.5)))
    names = np.where(category == SEEN, "ring", "watch")
    prods = products([f"{name} {i}" for i, name in enumerate(names)],
                     categories=["Jewelry" if c == SEEN else "Watches" for c in category])
    data = dataset(prods, customers(n_users), events, name="two senses")
    data.item_features["image"] = np.where((category == SEEN)[:, None], telling, boilerplate).astype(np.float32)
    data.item_features["text"] = np.where((category == READ)[:, None], telling, boilerplate).astype(np.float32)
    return data, category, look


def first_batch(data: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return next(NextItemBatches(Sequences.from_dataset(data), max_len=10, batch_size=1000).epoch(0))


def untrained(data: Dataset, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    return CAMMSR(**{**FAST, **params}).build(data)


@pytest.fixture(scope="module")
def boutique():
    return two_sense_boutique()


@pytest.fixture(scope="module")
def fitted(boutique):
    data, category, _ = boutique
    return data, category, CAMMSR(epochs=20, modalities="image,text", **FAST).fit(data)


def client_category(model: CAMMSR, category: np.ndarray) -> np.ndarray:
    return np.array([category[s[0]] for s in model.sequences_.items])


# ------------------------------------------------------------------------------------------------ the gate
def test_the_gate_gives_the_visual_expert_the_category_chosen_by_its_look(fitted):
    data, category, model = fitted
    shares = model.gate_weights().drop(columns="item").groupby(category).mean()
    assert list(shares.columns) == ["id", "textual", "visual", "synergy"]
    assert shares.loc[SEEN, "visual"] > shares.loc[READ, "visual"] + 0.3
    assert shares.loc[READ, "textual"] > shares.loc[SEEN, "textual"] + 0.3


def test_each_client_gets_the_shares_of_what_she_browses(fitted):
    data, category, model = fitted
    users = np.arange(data.n_users)
    shares = model.gate_weights(users=users).drop(columns="user").groupby(client_category(model, category)).mean()
    assert shares.loc[SEEN, "visual"] > shares.loc[READ, "visual"] + 0.3
    assert np.allclose(shares.sum(axis=1), 1.0, atol=1e-5)


def test_the_gate_reads_the_client_context_only_when_asked(boutique):
    data, _, _ = boutique
    items, contexts = torch.arange(1, 6), torch.randn(2, 16)
    with torch.no_grad():
        with_context = untrained(data).gate_in_context(items, contexts)
        without = untrained(data, gate_context=False).gate_in_context(items, contexts)
    assert not torch.allclose(with_context[0], with_context[1])
    assert torch.equal(without[0], without[1])


def test_explanation_names_the_leading_expert_and_the_step_it_follows(fitted):
    data, category, model = fitted
    clients = client_category(model, category)
    ring_lover, watch_lover = np.flatnonzero(clients == SEEN)[0], np.flatnonzero(clients == READ)[0]
    ring = model.sequences_.items[ring_lover][-1]
    watch = model.sequences_.items[watch_lover][-1]
    (for_her,) = model.explain(int(ring_lover), np.array([ring]))
    assert for_her.code == "expert_mix" and "its look (visual" in for_her.text and "ring" in for_her.text
    assert sum(v for k, v in for_her.signals.items() if k.startswith("gate_")) == pytest.approx(1.0, abs=1e-5)
    assert for_her.signals["gate_visual"] > 0.5
    (for_him,) = model.explain(int(watch_lover), np.array([watch]))
    assert "its description (textual" in for_him.text


def two_eyed_clients(n_users: int = 300, kinds: int = 6, copies: int = 20, length: int = 6, seed: int = 0
                     ) -> tuple[Dataset, np.ndarray]:
    """One category of rings, each with a motif (drawn in its image only) and a technique (told in its copy only).
    Half the clients keep to one motif across techniques (led by the eye), half to one technique across motifs.
    With 720 rings seen about twice each, the IDs say little: the gate must read how her journey coheres."""
    rng = np.random.default_rng(seed)
    motif = np.repeat(np.arange(kinds), kinds * copies)
    technique = np.tile(np.repeat(np.arange(kinds), copies), kinds)
    n, dim = len(motif), 16
    eye = np.arange(n_users) % 2 == 0
    events = []
    for u in range(n_users):
        mine = np.flatnonzero((motif if eye[u] else technique) == rng.integers(kinds))
        for step, i in enumerate(rng.choice(mine, length, replace=False)):
            events.append((u, int(i), "view", step + rng.uniform(0, 0.5)))
    data = dataset(products([f"ring {i}" for i in range(n)], categories=["Jewelry"] * n), customers(n_users),
                   events, name="two eyes")
    data.item_features["image"] = (rng.normal(size=(kinds, dim))[motif] + 0.3 * rng.normal(size=(n, dim))
                                   ).astype(np.float32)
    data.item_features["text"] = (rng.normal(size=(kinds, dim))[technique] + 0.3 * rng.normal(size=(n, dim))
                                  ).astype(np.float32)
    return data, eye


@pytest.fixture(scope="module")
def two_eyed():
    data, eye = two_eyed_clients()
    return data, eye, CAMMSR(epochs=20, modalities="image,text", client_gate=True, **FAST).fit(data)


def test_the_gate_tells_a_client_led_by_the_eye_from_one_led_by_the_copy(two_eyed):
    data, eye, model = two_eyed
    users = np.arange(data.n_users)
    own = model.client_weights(users).drop(columns="user").groupby(eye).mean()      # her weighting of the experts
    assert own.loc[True, "visual"] > own.loc[False, "visual"] + 0.3, own
    assert own.loc[False, "textual"] > own.loc[True, "textual"] + 0.3, own
    steps = model.gate_weights(users=users).drop(columns="user").groupby(eye).mean()  # her journey as fused
    assert steps.loc[True, "visual"] > steps.loc[False, "visual"] + 0.25, steps
    # a ring recommended next is carried by its look for her, by its copy for him
    ring = np.array([0])
    for_her = model.gate_weights(users=np.flatnonzero(eye)[:20], items=ring)
    for_him = model.gate_weights(users=np.flatnonzero(~eye)[:20], items=ring)
    assert for_her["visual"].mean() > for_him["visual"].mean() + 0.2
    assert for_him["textual"].mean() > for_her["textual"].mean() + 0.2


def test_the_client_gate_scores_as_a_softmax_over_experts_per_client_and_piece(two_eyed):
    data, _, _ = two_eyed
    net = untrained(data, modalities="image,text", client_gate=True).eval()
    states = torch.randn(3, net.state_width)
    with torch.no_grad():
        assert torch.allclose(net.rank(states), states[:, :16] @ net.item_table().T, atol=1e-5)  # uniform pi
        torch.nn.init.normal_(net.w_b.weight)
        alpha, g = net.mixture()
        v = net.catalog_views()
        pi = torch.softmax(net.w_b(states), -1)
        pair = torch.softmax(alpha.log()[None] + pi.log()[:, None], -1)                          # (U, I, M)
        brute = torch.einsum("uim,imd,ud->ui", pair, v.h[1:], states[:, :16])
        assert torch.allclose(net.rank(states), brute, atol=1e-4)
    plain = CAMMSR(epochs=1, modalities="image,text", **FAST).fit(data)                  # off by default
    assert plain.net_.state_width == 16
    with pytest.raises(ValueError, match="without client_gate"):
        plain.client_weights(np.arange(3))


def test_the_routing_term_is_the_likelihood_of_a_mixture_of_the_experts_own_softmaxes(two_eyed):
    data, _, _ = two_eyed
    net = untrained(data, modalities="image,text", client_gate=True, lambda_route=0.5).train()
    torch.nn.init.normal_(net.w_b.weight)
    targets = torch.from_numpy(np.flatnonzero(net.bucket[1:].numpy() > 0)[[0, 3, 7, 7, 100]])
    states = torch.randn(5, net.state_width)
    weights = torch.tensor([1.0, 1.0, 0.5, 2.0, 1.0])
    h = net.catalog_views().h[1:]
    pi = torch.softmax(net.w_b(states), -1)
    known = (net.bucket[1:] > 0)[:, None]                  # pieces without events are no negatives
    mixed = torch.stack([(pi[n, :, None] * torch.softmax((h @ states[n, :16]).where(known, -torch.inf), 0).T
                          ).sum(0)[t]
                         for n, t in enumerate(targets)])                                  # sum_m pi_m p_m(t)
    brute = -(weights * mixed.log()).sum() / weights.sum()
    assert torch.allclose(net.route_loss(states, h, targets, weights), brute, atol=1e-5)
    batch = first_batch(data)
    assert "route" in net.losses(batch)
    assert "route" not in untrained(data, modalities="image,text", client_gate=True).train().losses(batch)
    with pytest.raises(ValueError, match="set client_gate=True"):
        CAMMSR(lambda_route=0.5, **FAST).fit(data)


def test_routing_sends_each_client_to_the_expert_that_explains_her(two_eyed):
    data, eye, _ = two_eyed
    model = CAMMSR(epochs=20, modalities="image,text", client_gate=True, lambda_route=1.0, **FAST).fit(data)
    own = model.client_weights(np.arange(data.n_users)).drop(columns="user").groupby(eye).mean()
    assert own.loc[True, "visual"] > 0.8 and own.loc[False, "textual"] > 0.8, own


def test_the_next_piece_attribute_task_is_bce_against_its_attribute_multi_hot(boutique):
    data, _, _ = boutique
    net = untrained(data, lambda_next=0.5).train()
    assert "next" in net.losses(first_batch(data))
    assert "next" not in untrained(data).train().losses(first_batch(data))
    token = net.tokens["attributes"]
    multi_hot = torch.zeros(len(token.index), token.values.num_embeddings)
    multi_hot.scatter_(1, token.index, (token.weight > 0).float())
    targets = torch.tensor([1, 2, 5, 5])
    states = torch.randn(4, 16)
    brute = F.binary_cross_entropy_with_logits(net.next_head(states), multi_hot[targets, 1:])
    assert torch.allclose(net.next_attribute_loss(states, targets), brute, atol=1e-6)
    assert (multi_hot[targets, 1:].sum(1) >= 1).all()         # every piece has an attribute value


def test_side_attention_adds_causal_score_terms_from_the_side_tokens(boutique):
    data, _, _ = boutique
    net = untrained(data, side_attention=True).eval()
    assert net.cfg.side_views == ("text", "image", "attributes")
    for block in net.encoder.blocks:         # at nanoGPT's init the terms are ~1e-4: make them count
        for w in block.side_qk:
            torch.nn.init.normal_(w.weight)
    items, gaps = first_batch(data)[:2]
    with torch.no_grad():
        states = net.encode(items, gaps)
        side = net.side_tokens(items)
        h = net.embed(items)[0]
        assert torch.allclose(states, net.encoder(h, items, gaps, side), atol=1e-6)
        assert not torch.allclose(states, net.encoder(h, items, gaps, None), atol=1e-4)   # the terms count
        later = [t.clone() for t in side]
        for t in later:                      # a different last step must not change what came before it
            t[:, -1] = torch.randn_like(t[:, -1])
        moved = net.encoder(h, items, gaps, later)
        assert torch.allclose(moved[:, :-1], states[:, :-1], atol=1e-5)
        assert not torch.allclose(moved[:, -1], states[:, -1], atol=1e-4)
        for block in net.encoder.blocks:     # zero side terms: plain attention again
            for w in block.side_qk:
                torch.nn.init.zeros_(w.weight)
                torch.nn.init.zeros_(w.bias)
        assert torch.allclose(net.encoder(h, items, gaps, side), net.encoder(h, items, gaps, None), atol=1e-6)
    assert untrained(data).cfg.side_views == ()


def test_coherence_signals_say_how_alike_her_earlier_steps_look_and_read(boutique):
    data, _, look = boutique
    net = untrained(data, modalities="image,text")
    same_look = np.flatnonzero(look == 0)[:4]                    # rings of one look: alike in image only
    items = torch.from_numpy(np.concatenate([[0, 0], same_look + 1]))[None]
    with torch.no_grad():
        r = net.signals(items)[0]                                # (L, 2V): text (r, cos), image (r, cos)
        unit = net.unit_image[items[0]]
    assert net.coherent == ("text", "image")
    assert torch.equal(r[:3], torch.zeros(3, 4))                 # padding and her first step: nothing before
    assert r[3, 2] == pytest.approx(1.0, abs=1e-5)               # one earlier step is perfectly coherent
    mean = unit[2:4].mean(0)
    assert r[4, 2] == pytest.approx(mean.norm().item(), abs=1e-5)
    assert r[4, 3] == pytest.approx((unit[4] @ mean / mean.norm()).item(), abs=1e-5)
    assert (r[4:, 2] > r[4:, 0]).all()                           # two steps on: her looks cohere, her copies less
    assert untrained(data, coherence=False).signals(items) is None
    assert untrained(data, gate_context=False).signals(items) is None


# ------------------------------------------------------------------------------------------------ the losses
def test_the_category_head_learns_the_category_from_the_gate_state(fitted):
    data, _, model = fitted
    batch = first_batch(data)
    before = untrained(data, modalities="image,text").eval()
    with torch.no_grad():
        start, end = before.losses(batch)["cat"], model.net_.eval().losses(batch)["cat"]
    assert end < 0.5 * start


def test_every_switch_changes_the_loss_terms(boutique):
    data, _, _ = boutique
    batch = first_batch(data)

    def terms(**params) -> set[str]:
        return set(untrained(data, **params).train().losses(batch))

    assert terms() == {"rec", "cat", "swap"}
    assert terms(swap=False) == terms(lambda_swap=0.0) == terms(swap_rate=0.0) == {"rec", "cat"}
    assert terms(category_guidance=False) == terms(lambda_cat=0.0) == {"rec", "swap"}
    net = untrained(data, lambda_cat=0.3, lambda_swap=0.2)
    torch.manual_seed(1)
    total = net.loss(batch)
    torch.manual_seed(1)
    parts = net.losses(batch)
    assert total.item() == pytest.approx((parts["rec"] + 0.3 * parts["cat"] + 0.2 * parts["swap"]).item(), rel=1e-5)


def test_expert_switches_choose_the_mixture(boutique):
    data, _, _ = boutique
    for params, experts in [({}, ["id", "textual", "visual", "synergy", "attributes"]),
                            ({"synergy": False}, ["id", "textual", "visual", "attributes"]),
                            ({"experts": "id,visual"}, ["id", "visual"]),
                            ({"single_expert": True}, ["single"])]:
        net = untrained(data, **params)
        assert list(net.experts) == experts
        assert net.catalog()[1].shape == (data.n_items, len(experts))
    with pytest.raises(ValueError, match="experts visual not available"):
        untrained(cycle_boutique(n_users=5), experts="id,visual")


def test_dyt_replaces_every_layer_norm_of_the_encoder(boutique):
    data, _, _ = boutique
    net = untrained(data, norm="dyt")
    enc = net.encoder
    norms = [enc.ln_in, enc.ln_out, *(m for b in enc.blocks for m in (b.ln1, b.ln2))]
    assert all(isinstance(m, DyT) and m.alpha.item() == 0.5 for m in norms)
    assert torch.isfinite(net.loss(first_batch(data)))


# ------------------------------------------------------------------------------------------------ the swap
def test_swap_neighbours_share_the_category_and_the_look_the_view_shows(boutique):
    data, category, look = boutique
    image, missing = centred_features(data.features("image"), None, None)
    nbr = nearest_neighbours(image, missing, category)
    rings = np.flatnonzero(category == SEEN)
    assert (category[nbr] == category).all() and (nbr != np.arange(data.n_items)).all()
    assert (look[nbr[rings]] == look[rings]).mean() > 0.9          # a ring's image neighbour is a ring of its look


def test_the_swap_replaces_one_content_view_and_keeps_the_id(boutique):
    data, _, _ = boutique
    items = first_batch(data)[0]
    net = untrained(data, swap_rate=1.0)
    assert net.cfg.swap_views == ("text", "image")                 # not the attributes, which the data also has
    src = net.swap_sources(items)
    real = items > 0
    changed = (src["text"] != items).int() + (src["image"] != items).int()
    assert torch.equal(src["id"], items)
    assert (changed[real] == 1).all() and (changed[~real] == 0).all()


# ------------------------------------------------------------------------------------------------ data shapes
def test_id_only_data_still_learns_which_piece_comes_next():
    data = cycle_boutique()
    model = CAMMSR(epochs=40, **{**FAST, "dropout": 0.0}).fit(data)
    assert model.experts_ == ("id",) and model.modalities_ == ("id",)
    users = np.arange(data.n_users)
    last = np.array([model.sequences_.items[u][-1] for u in users])
    assert np.mean(np.argmax(model.score(users), axis=1) == (last + 1) % data.n_items) > 0.9
    (reason,) = model.explain(0, np.array([(last[0] + 1) % data.n_items]))
    assert reason.text.startswith("close to the piece") and "%" not in reason.text
    assert set(reason.signals) == {"gate_id", "anchor_similarity", "steps_ago"} and reason.signals["gate_id"] == 1.0


def test_without_features_the_categories_still_guide(boutique):
    data, _, _ = boutique
    net = untrained(data, modalities="none")
    assert list(net.tokens) == ["id"] and list(net.experts) == ["id"]
    assert set(net.train().losses(first_batch(data))) == {"rec", "cat"}


def test_amazon_attribute_ids_each_become_an_attribute_value():
    data = cycle_boutique(n_items=6, n_users=10)
    data.products["attributes"] = ["3 17 42", "3 17", "5", "5 42", "", "17"]
    model = CAMMSR(modalities="attributes", **FAST)
    net = model.build(data)
    assert model.experts_ == ("id", "attributes") and net.cfg.swap_views == ("attributes",)
    token = net.tokens["attributes"]
    assert (token.weight[1:] > 0).sum(1).tolist() == [3, 2, 1, 2, 0, 1]          # row 0 is padding
    assert token.missing[1:].tolist() == [False, False, False, False, True, False]


def test_a_piece_without_an_image_is_read_through_the_missing_flag(boutique):
    data, _, _ = boutique
    data = Dataset(data.products, data.customers, data.interactions, item_features={
        **data.item_features, "image_missing": np.arange(data.n_items) == 0})
    token = untrained(data).tokens["image"]
    with torch.no_grad():
        token.flag.fill_(1.0)
        e = token(torch.tensor([1, 2]))                                             # items 0 (no image) and 1
    assert torch.equal(e[0], token.flag) and not torch.equal(e[1], token.flag)


def test_category_paths_give_multi_hot_tokens_and_a_single_column_gives_leaves():
    import pandas as pd

    paths = pd.DataFrame({"category": ["Clothing > Dresses", "Clothing > Coats", "Shoes", "unknown"]})
    labels, multi, groups = category_labels(paths, ("category",))
    assert multi and labels.shape == (4, 4)                    # clothing, clothing > coats, clothing > dresses, shoes
    assert labels.sum(1).tolist() == [2, 2, 1, 0]
    leaves, multi, _ = category_labels(pd.DataFrame({"category": ["a", "b", "", "a"]}), ("category",))
    assert not multi and leaves.tolist() == [0, 1, -1, 0]
    assert category_labels(pd.DataFrame({"category": ["a", "a"]}), ("category",))[0] is None


# ------------------------------------------------------------------------------------------------ persistence
def test_saved_model_scores_and_gates_the_same(fitted, tmp_path):
    data, _, model = fitted
    again = Recommender.load(model.save(tmp_path / "cammsr.pkl"))
    users = np.arange(data.n_users)
    assert np.array_equal(again.score(users), model.score(users))
    assert again.gate_weights().equals(model.gate_weights())


def test_serving_reuses_the_catalog_table_until_training_resumes(fitted):
    _, _, model = fitted
    net = model.net_
    with torch.no_grad():
        assert net.served is not None and torch.equal(net.item_table(), net.catalog()[0])
    net.train()
    assert net.served is None
    net.serve()


# ------------------------------------------------------------------------------------------------ new pieces
def launch_ranks(id_dropout: float, maturity: bool, new_as_negatives: bool = False) -> np.ndarray:
    """Each look's last piece gets no event at all (a launch); the rank of her look's launch among every piece she
    has not seen, for each client."""
    data, _, look = two_sense_boutique(per_look=8, length=5)
    launches = np.array([np.flatnonzero(look == g)[-1] for g in range(look.max() + 1)])
    inter = data.interactions
    data = data.with_interactions(inter[~inter["item"].isin(launches)])
    model = CAMMSR(epochs=25, modalities="image,text", id_dropout=id_dropout, maturity=maturity,
                   new_as_negatives=new_as_negatives, **FAST).fit(data)
    users = np.flatnonzero([len(s) > 0 for s in model.sequences_.items])
    scores = model.score(users)
    ranks = []
    for row, u in enumerate(users):
        s = scores[row].copy()
        s[model.sequences_.items[u]] = -np.inf
        mine = launches[look[model.sequences_.items[u][0]]]
        ranks.append(int((s > s[mine]).sum()))
    return np.array(ranks)


def test_a_launch_is_scored_from_its_look_and_copy_when_ids_are_hidden_in_training():
    with_dropout = launch_ranks(id_dropout=0.3, maturity=True)
    without = launch_ranks(id_dropout=0.0, maturity=False)
    # her look has 7 pieces and a launch; the launch should come before the other looks' pieces
    assert np.mean(with_dropout < 10) > 0.8
    assert with_dropout.mean() < without.mean()


def test_a_launch_kept_as_a_training_negative_is_learnt_as_never_recommended():
    left_out = launch_ranks(id_dropout=0.3, maturity=True)
    kept = launch_ranks(id_dropout=0.3, maturity=True, new_as_negatives=True)
    assert kept.mean() > 1.5 * left_out.mean(), (kept.mean(), left_out.mean())


def test_a_new_piece_is_explained_as_new(boutique):
    data, _, look = boutique
    new = np.flatnonzero(look == 0)[-1]
    inter = data.interactions
    model = CAMMSR(epochs=2, modalities="image,text", **FAST).fit(
        data.with_interactions(inter[inter["item"] != new]))
    user = int(np.flatnonzero([len(s) > 0 for s in model.sequences_.items])[0])
    (reason,) = model.explain(user, np.array([new]))
    assert reason.text.startswith("a new piece, read from") and reason.signals["new_piece"] == 1.0
