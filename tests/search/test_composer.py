"""The composer: starts as the sum of anchor and words, and learns to replace what the words change."""

from __future__ import annotations

import numpy as np
import pytest

from vendome.search.composer import FiLMComposer, ImageOnly, Sum, TextOnly, make_composer
from vendome.search.index import normalise

LOOK, WORDS = 16, 24


def toy_catalog(seed: int = 0):
    """Pieces = (motif, material): the look holds the motif and the material's colour (a rose-gold ring looks rose),
    the words the material (plus the motif's name); a change asks for another material and keeps the motif, as
    "like this, but in rose gold" does. The anchor's colour pulls the sum towards pieces of the old material."""
    rng = np.random.default_rng(seed)
    motifs, materials = rng.normal(size=(12, LOOK)), rng.normal(size=(6, WORDS))
    colours = 1.5 * rng.normal(size=(6, LOOK))
    motif_words = 0.5 * rng.normal(size=(12, WORDS))
    rows = [(m, a) for m in range(12) for a in range(6)]
    look = normalise(np.array([motifs[m] + colours[a] for m, a in rows]))
    words = normalise(np.array([materials[a] + motif_words[m] for m, a in rows]))
    items = np.hstack([np.sqrt(0.5) * look, np.sqrt(0.5) * words]).astype(np.float32)
    texts = np.hstack([np.zeros((6, LOOK)), normalise(materials)]).astype(np.float32)   # "in <material>"
    changes = [(i, b, rows.index((m, b))) for i, (m, a) in enumerate(rows) for b in range(6) if b != a]
    return items, texts, changes


def recall_at_1(composer, items, texts, changes) -> float:
    anchors = np.array([a for a, _, _ in changes])
    q = composer.compose(items[anchors], texts[[b for _, b, _ in changes]])
    s = q @ items.T
    s[np.arange(len(anchors)), anchors] = -np.inf
    return float(np.mean(s.argmax(1) == np.array([t for _, _, t in changes])))


def test_untrained_film_composes_exactly_as_the_sum():
    items, texts, changes = toy_catalog()
    film = FiLMComposer(progress=False)
    film._build(items.shape[1], LOOK)
    film.eval()
    a, t = items[:5], texts[[0, 1, 2, 3, 4]]
    np.testing.assert_allclose(film.compose(a, t), Sum().compose(a, t), atol=1e-5)


def test_film_learns_the_change_and_beats_every_baseline_on_unseen_anchors():
    items, texts, changes = toy_catalog()
    rng = np.random.default_rng(0)
    held = rng.random(len(items)) < 0.3          # anchors never trained on
    train = [c for c in changes if not held[c[0]]]
    test = [c for c in changes if held[c[0]]]
    film = FiLMComposer(epochs=60, seed=0, progress=False).fit(
        items, LOOK, [a for a, _, _ in train], texts[[b for _, b, _ in train]], [[t] for _, _, t in train])
    scores = {c.name: recall_at_1(c, items, texts, test) for c in (film, Sum(), ImageOnly(), TextOnly())}
    assert scores["film"] > 0.8
    assert scores["film"] > max(scores["sum"], scores["image-only"], scores["text-only"]) + 0.1


def test_validation_keeps_the_best_epoch_so_film_never_ends_below_its_start():
    items, texts, changes = toy_catalog()
    seen = []

    def validate(c):
        score = recall_at_1(c, items, texts, changes[:40])
        seen.append(score)
        return score

    film = FiLMComposer(epochs=8, patience=2, progress=False).fit(
        items, LOOK, [a for a, _, _ in changes], texts[[b for _, b, _ in changes]], [[t] for _, _, t in changes],
        validate=validate)
    assert film.validation_ == seen and len(seen) >= 2
    assert recall_at_1(film, items, texts, changes[:40]) == max(seen)


def test_without_an_anchor_the_words_are_the_query():
    items, texts, _ = toy_catalog()
    film = make_composer("film", progress=False)
    film._build(items.shape[1], LOOK)
    np.testing.assert_allclose(film.compose(None, texts[:2]), normalise(texts[:2]), atol=1e-6)


def test_the_composer_interface_cannot_be_used_without_an_implementation():
    from vendome.search.composer import Composer
    from vendome.search.joint import JointSpace

    for abstract in (Composer, JointSpace):
        with pytest.raises(TypeError, match="abstract"):
            abstract()
