"""Model versions: every fit is a new version, later in sort order than the ones before it, so a roll-back takes
the previous fit, even for fits within one second."""

from __future__ import annotations

from vendome.artifacts import active_version, load_model, save_model, versions
from vendome.models import make_model
from vendome.workspace import Workspace


def test_versions_saved_within_one_second_stay_in_the_order_they_were_fitted(tmp_path, blocks):
    ws = Workspace(tmp_path / "ws").ensure()
    model = make_model("pop").fit(blocks[0])
    saved = [save_model(ws, model).name for _ in range(25)]
    assert versions(ws, "pop") == saved                               # sorted by name = in the order fitted
    assert active_version(ws, "pop") == saved[-1] and load_model(ws, "pop")[1]["version"] == saved[-1]
    assert len(set(saved)) == 25
