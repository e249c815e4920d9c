import numpy as np
import pandas as pd
import pytest

from models.model_fixtures import clustered_features, customers, dataset, products
from vendome.models.content import AttributeContent, TextContent, VisualContent, attribute_matrix

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


def test_attribute_content_follows_the_collection_and_material_she_buys():
    data = _boutique()
    data.products["collection"] = ["Serpenti"] * 4 + ["Perle"] * 4 + ["Serpenti", "Perle"]
    data.products["material"] = ["yellow gold"] * 4 + ["white gold, pearl"] * 4 + ["yellow gold", "white gold, pearl"]
    model = AttributeContent().fit(data)
    scores = model.score(np.array([0, 1]))
    assert scores[0, 8] > scores[0, [4, 5, 6, 7, 9]].max()   # the new Serpenti pendant, never seen, leads for client 0
    assert scores[1, 9] > scores[1, [0, 1, 2, 3, 8]].max()   # the new Perle brooch for the pearl client
    assert model.explain(0, np.array([8]))[0].code == "shared_attributes"


def test_attribute_matrix_splits_multi_valued_cells_and_skips_constant_columns():
    frame = pd.DataFrame({"material": ["gold, diamond", "gold", "silver"], "brand": ["A", "A", "A"],
                          "category": ["Jewelry > Rings", "Jewelry > Rings", None]})
    m = attribute_matrix(frame, ("material", "brand", "category"))
    assert m.shape == (3, 3 + 2)  # diamond, gold, silver + jewelry, rings; the one-brand column says nothing
    assert m[0].tolist() == [0.5, 0.5, 0.0, 0.5, 0.5] and m[2].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="none of the attribute columns"):
        attribute_matrix(frame, ("brand",))
