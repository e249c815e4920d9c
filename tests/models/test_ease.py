import numpy as np
import pytest

from vendome.models.ease import EASE, ease_weights


def test_ease_weights_solve_the_constrained_least_squares(blocks):
    x = blocks[0].matrix(binary=True)
    b = ease_weights(x, regularization=3.0, dtype=np.float64)
    g = (x.T @ x).toarray().astype(np.float64) + 3.0 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(b, expected, atol=1e-5)
    assert not np.diag(b).any()                               # an item may not explain itself


def test_ease_float32_inverse_agrees_with_float64(blocks):
    x = blocks[0].matrix(binary=True)
    assert np.allclose(ease_weights(x, 3.0, np.float32), ease_weights(x, 3.0, np.float64), atol=1e-4)


def test_ease_explains_with_the_history_item_that_weighs_most(blocks):
    data, user_block, item_block = blocks
    model = EASE(regularization=5.0).fit(data)
    owned = data.target_matrix()[0].indices
    candidate = next(i for i in np.flatnonzero(item_block == user_block[0]) if i not in owned)
    reason = model.explain(0, np.array([candidate]))[0]
    assert reason.code == "co_chosen" and "Serpent piece" in reason.text and "the client bought" in reason.text


def test_ease_refuses_a_catalog_its_dense_gram_matrix_would_not_fit_with_a_clear_error(blocks):
    data = blocks[0]
    with pytest.raises(ValueError, match=r"dense .* Gram matrix .* max_items=.* use als, bpr or itemknn"):
        EASE(max_items=data.n_items - 1).fit(data)
