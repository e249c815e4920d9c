import numpy as np
import pytest

from models.model_fixtures import clustered_features, customers, dataset, products
from vendome.models.content import TextContent, VisualContent

# Items 0-3 are serpent-shaped gold pieces, 4-7 are pearl pieces; item 8 is a new serpent pendant, item 9 a new
# pearl brooch: neither has a single interaction yet.
TITLES = ["Serpent ring", "Serpent bracelet", "Serpent earrings", "Serpent cuff", "Pearl ring", "Pearl necklace",
          "Pearl earrings", "Pearl drops", "Serpent pendant", "Pearl brooch"]
CLUSTER = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1])


def _boutique():
    events = [(0, 0, "add_to_wishlist", 1), (0, 1, "purchase", 2),      # client 0 loves serpents
              (1, 4, "purchase", 3), (1, 5, "view", 4),                # client 1 loves pearls
              (2, 5, "purchase", 5), (3, 5, "purchase", 6), (3, 6, "purchase", 6)]
    data = dataset(products(TITLES), customers(5, gender=["F"] * 5), events)
    data.item_features["image"] = clustered_features(CLUSTER, seed=1)
    data.item_features["text"] = clustered_features(CLUSTER, seed=2)
    return data


def test_visual_content_ranks_a_new_look_alike_above_unrelated_items():
    model = VisualContent().fit(_boutique())
    scores = model.score(np.array([0]))[0]
    assert scores[8] > scores[[4, 5, 6, 7, 9]].max()     # the new serpent pendant beats every pearl piece


def test_text_content_reads_the_text_embeddings():
    data = _boutique()
    # descriptions tell another story than pictures: the brooch's text reads like the serpents', the pendant's not
    data.item_features["text"] = clustered_features(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0]), seed=3)
    scores = TextContent().fit(data).score(np.array([0]))[0]
    assert scores[9] > scores[8]                           # in the text space the brooch is the look-alike


def test_clients_without_history_get_the_best_sellers():
    model = VisualContent().fit(_boutique())
    scores = model.score(np.array([4]))[0]
    assert np.argmax(scores) == 5 and np.isfinite(scores).all()


def test_recent_history_outweighs_old_history_with_a_half_life():
    events = [(0, 0, "purchase", 0), (0, 4, "purchase", 200)]           # serpents long ago, pearls last week
    data = dataset(products(TITLES), customers(1), events)
    data.item_features["image"] = clustered_features(CLUSTER, seed=1)
    scores = VisualContent(half_life_days=14).fit(data).score(np.array([0]))[0]
    assert scores[9] > scores[8]


def test_visual_explanation_names_the_history_item_and_what_she_did():
    model = VisualContent().fit(_boutique())
    reason = model.explain(0, np.array([8]))[0]
    assert reason.code == "similar_look"
    assert reason.text in ("similar in look to the Serpent ring she wishlisted",
                           "similar in look to the Serpent bracelet she bought")
    assert reason.signals["image_similarity"] > 0.5


def test_missing_image_features_is_a_clear_error():
    data = _boutique()
    del data.item_features["image"]
    with pytest.raises(ValueError, match="no 'image' item features"):
        VisualContent().fit(data)


def test_a_component_shared_by_the_catalog_does_not_drown_the_taste():
    # encoders put most products in one narrow cone: here a strong shared direction on every piece but the new
    # serpent pendant (shot in another studio); only what tells products apart should count
    data = _boutique()
    shared = np.zeros(16, dtype=np.float32)
    shared[0] = 8.0
    strength = np.ones(len(CLUSTER), dtype=np.float32)
    strength[8] = 0.0
    data.item_features["image"] = clustered_features(CLUSTER, seed=1) + strength[:, None] * shared
    scores = VisualContent().fit(data).score(np.array([0]))[0]
    assert scores[8] > scores[[4, 5, 6, 7, 9]].max()      # the look wins once the shared part is removed
    raw = VisualContent(center=False).fit(data).score(np.array([0]))[0]
    assert raw[8] < raw[[4, 5, 6, 7, 9]].max()            # what the uncentred cosine would have recommended
