import numpy as np

from models.model_fixtures import customers, dataset, products
from vendome.models.itemknn import ItemKNN, top_per_row

TITLES = ["Serpent ring", "Serpent earrings", "Halo ring", "Tourbillon watch", "Pearl necklace", "Cufflinks"]


def _co_bought():
    # clients 0-3 bought the ring with the earrings; the watch (the best seller) and the necklace go together
    events = [(u, 0, "purchase", u) for u in range(4)] + [(u, 1, "purchase", u + 0.1) for u in range(4)]
    events += [(u, 3, "purchase", u) for u in range(3, 9)] + [(u, 4, "purchase", u) for u in range(4, 8)]
    events += [(9, 0, "purchase", 20)]                     # client 9 just bought the ring
    return dataset(products(TITLES), customers(11, gender=["F"] * 11), events)


def test_itemknn_recommends_the_co_bought_item():
    scores = ItemKNN().fit(_co_bought()).score(np.array([9]))[0]
    scores[0] = -np.inf                                    # she owns the ring already
    assert np.argmax(scores) == 1


def test_items_without_evidence_follow_popularity_below_evidence():
    scores = ItemKNN().fit(_co_bought()).score(np.array([9, 10]))
    assert scores[0, 1] > scores[0, 3] > scores[0, 2]     # evidence, then the best seller, then an unsold ring
    assert np.argmax(scores[1]) == 3                       # client 10 has no history: the best seller


def test_neighbors_keeps_only_the_strongest_similarities_per_item():
    sim = ItemKNN(neighbors=1).fit(_co_bought()).similarity_
    assert np.diff(sim.indptr).max() == 1
    assert sim[3].indices.tolist() == [4]                  # the watch's one neighbour is the necklace


def test_top_per_row_keeps_the_k_largest():
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[0.1, 0.5, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0], [0.9, 0.2, 0.4, 0.8]], np.float32))
    kept = top_per_row(m, 2).toarray()
    assert np.array_equal(kept, np.array([[0, 0.5, 0.3, 0], [0, 0, 0, 0], [0.9, 0, 0, 0.8]], np.float32))


def test_itemknn_explains_with_the_co_chosen_history_item():
    reason = ItemKNN().fit(_co_bought()).explain(9, np.array([1]))[0]
    assert reason.code == "co_chosen"
    assert reason.text == "often chosen by clients who also chose the Serpent ring she bought"
