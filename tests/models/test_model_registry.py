import subprocess
import sys

import numpy as np
import pytest

from models.model_fixtures import launch_boutique
from vendome.models import MODELS, PLUGINS, make_model, model_class
from vendome.models.base import Recommender

SMALL = {"als": {"factors": 4, "regularization": 1.0}, "bpr": {"factors": 4, "iterations": 20},
         "ease": {"regularization": 5.0},
         "sasrec": {"epochs": 2, "hidden": 8, "layers": 1, "validate": False},
         "cammsr": {"epochs": 2, "hidden": 8, "layers": 1, "validate": False},
         "mbmf": {"factors": 4, "epochs": 3, "batch_size": 32, "validate": False},
         "mblightgcn": {"factors": 4, "epochs": 3, "batch_size": 32, "validate": False},
         "mclmr": {"factors": 4, "epochs": 3, "batch_size": 32, "validate": False, "k_users": 3, "k_items": 3},
         "lmmrec": {"factors": 4, "epochs": 3, "batch_size": 32, "validate": False, "profile": "labels"},
         "hybrid": {"samples": 8, "refine_steps": 2,
                    "component_params": {"collaborative": {"factors": 4, "regularization": 1.0}}}}


@pytest.fixture(scope="module")
def boutique():
    return launch_boutique(cold_clients=2)


def test_every_registered_name_resolves_to_its_class():
    assert set(MODELS) == {"pop", "pop-recent", "pop-segment", "content-visual", "content-text", "content-attributes",
                           "itemknn", "als",
                           "bpr", "ease", "hybrid", "sasrec", "cammsr", "mbmf", "mblightgcn", "mclmr", "lmmrec"}
    for name in MODELS:
        cls = model_class(name)
        assert issubclass(cls, Recommender)
        for full in [f"{name}:{base}" for base in PLUGINS[name]] if name in PLUGINS else [name]:
            assert model_class(full) is cls and make_model(full).name == full


def test_unknown_model_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown model 'lightgcn'; valid names: pop, pop-recent, .*hybrid"):
        make_model("lightgcn")


def test_unknown_parameter_lists_the_valid_parameters():
    with pytest.raises(ValueError, match="'als' has no parameter\\(s\\) factor; valid parameters: factors, "
                                         "regularization, alpha, iterations, seed, threads, show_progress"):
        make_model("als", factor=8)


def test_importing_the_registry_does_not_import_model_libraries():
    code = "import sys, vendome.models; print(any(m.split('.')[0] in ('implicit', 'torch') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", list(MODELS))
def test_scores_are_finite_float32_for_active_and_cold_clients(name, boutique):
    model = make_model(name, **SMALL.get(name, {})).fit(boutique)
    users = np.array([0, 1, boutique.n_users - 1])                 # the last client has no history
    scores = model.score(users)
    assert scores.shape == (3, boutique.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores).all() and scores[2].std() > 0       # the cold client gets a real ranking
    reasons = model.explain(0, np.array([30, 2]))
    assert len(reasons) == 2 and all(r.code and r.text for r in reasons)


@pytest.mark.parametrize("name", list(MODELS))
def test_save_and_load_give_identical_scores(name, boutique, tmp_path):
    model = make_model(name, **SMALL.get(name, {})).fit(boutique)
    users = np.arange(boutique.n_users)
    path = model.save(tmp_path / f"{name}.pkl")
    loaded = Recommender.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.score(users), model.score(users))


def test_scoring_users_outside_the_fitted_data_is_a_clear_error(boutique):
    model = make_model("pop").fit(boutique)
    with pytest.raises(IndexError, match="outside the fitted dataset"):
        model.score(np.array([boutique.n_users]))
