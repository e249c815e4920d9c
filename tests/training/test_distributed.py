"""Data-parallel training: two processes under torchrun take the optimizer steps one process takes.

Each case runs a real `torchrun --nproc_per_node 2` on CPU (gloo) and compares with one process on the same global
batch. Tolerance: validation NDCG@10 equal to 1e-9 at every epoch, epoch losses to 1e-5 relative, weights to 1e-5
and scores to 1e-4 absolute (the two runs sum the same numbers in another order; measured: about 1e-7 and 1e-6).
One weight is left to the scores: the attention key bias, whose gradient is exactly zero in theory (softmax ignores
a shift shared by all keys), so Adam turns rounding noise into steps of a few 1e-4 in either run, which cannot move
a score. Stochastic parts (dropout, ID dropout, random swap picks) are off: their draws are per rank, so with them
on the runs are equal in distribution only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from models.model_fixtures import launch_boutique
from training.journeys import cycle_boutique
from vendome.artifacts import load_model
from vendome.cli import app
from vendome.data.ingest import ingest_tables
from vendome.models import make_model
from vendome.models.base import Recommender
from vendome.pipeline import train
from vendome.training.distributed import launch, shard
from vendome.training.sequences import NextItemBatches, Sequences
from vendome.workspace import Workspace

NET = {"hidden": 16, "heads": 2, "layers": 1, "dropout": 0.0, "max_len": 10, "lr": 0.01}
# 61 journeys in batches of 15: the last global batch holds one row, so the second rank gets an empty shard
SASREC = NET | {"batch_size": 15, "epochs": 4, "patience": 10}
CAMMSR = NET | {"batch_size": 15, "epochs": 3, "modalities": "text", "feature_dim": 8, "lambda_cat": 0.5,
                "swap_rate": 1.0, "lambda_swap": 0.2, "id_dropout": 0.0}   # one swap view, always swapped
FACTORS = {"factors": 8, "batch_size": 63, "epochs": 3, "lr": 0.05}       # 63 triplets: shards of 32 and 31
KEY_BIAS = "encoder.blocks.0.qkv.bias"


def journeys():
    return cycle_boutique(n_users=61)


def categorised_launches():
    """The launch boutique with each look its own category, so CAMMSR's category head trains too."""
    data = launch_boutique()
    data.products["category"] = [f"look {t.split()[1]}" for t in data.products["title"]]
    return data


CASES = {"sasrec": (journeys, SASREC), "cammsr": (categorised_launches, CAMMSR),
         "mbmf": (launch_boutique, FACTORS), "mblightgcn": (launch_boutique, FACTORS)}


def weights(model) -> dict[str, np.ndarray]:
    if hasattr(model, "net_"):
        return {k: v.detach().float().numpy() for k, v in model.net_.state_dict().items()}
    return {"user_reps_": model.user_reps_, "item_reps_": model.item_reps_}


def curve(model):
    """The training curve (the multi-behavior models keep it in `training_`, `history_` being the clients')."""
    return model.training_ if hasattr(model, "training_") else model.history_


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_train_what_one_process_trains(name, tmp_path):
    make_data, params = CASES[name]
    data = make_data()
    one = make_model(name, **params).fit(data)
    report = launch(data, name, 2, params=params, out=tmp_path / "model.pkl")
    two = Recommender.load(tmp_path / "model.pkl")
    assert report["nproc"] == 2
    a, b = curve(one), curve(two)
    assert [e for e, _ in b.metrics] == [e for e, _ in a.metrics] == list(range(params["epochs"]))
    np.testing.assert_allclose([m for _, m in b.metrics], [m for _, m in a.metrics], rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.losses, a.losses, rtol=1e-5)
    assert b.losses[-1] < b.losses[0]                                # it trained, on both sides
    wa, wb = weights(one), weights(two)
    for key in wa:
        if key != KEY_BIAS:
            np.testing.assert_allclose(wb[key], wa[key], rtol=0, atol=1e-5, err_msg=key)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(two.score(users), one.score(users), rtol=0, atol=1e-4)


def test_an_uneven_last_batch_leaves_one_rank_an_empty_shard():
    """The precondition of the sasrec case: 61 windows, batches of 15."""
    seqs, _, _ = Sequences.from_dataset(journeys()).hold_out_last(min_length=3)
    last = list(NextItemBatches(seqs, 10, SASREC["batch_size"]).epoch(0))
    sizes = sorted(len(b[0]) for b in last)
    assert sizes[0] == 1
    assert [len(shard(b, r, 2)[0]) for b in last if len(b[0]) == 1 for r in (0, 1)] == [1, 0]


def test_shards_cover_each_global_batch_once_in_nested_batches():
    rows = torch.arange(7)
    batch = [(rows, rows * 10), (rows + 100, rows)]                 # a multi-behavior batch: per behavior a tuple
    parts = [shard(batch, r, 3) for r in range(3)]
    assert all(isinstance(p, list) and isinstance(p[0], tuple) for p in parts)
    for b in range(2):
        seen = torch.cat([p[b][0] for p in parts])
        assert sorted(seen.tolist()) == sorted(batch[b][0].tolist())
    with pytest.raises(TypeError, match="cannot shard"):
        shard({"rows": rows}, 0, 2)


def tiny_workspace(root) -> Workspace:
    """The cycle boutique ingested into a workspace, as a user's export would be."""
    data = journeys()
    inter = data.interactions
    tables = {"products": data.products, "customers": data.customers, "interactions": pd.DataFrame({
        "interaction_id": [f"E{k}" for k in range(len(inter))],
        "customer_id": data.customers["customer_id"].to_numpy()[inter["user"].to_numpy()],
        "product_id": data.products["product_id"].to_numpy()[inter["item"].to_numpy()],
        "interaction_type": inter["behavior"],
        "timestamp": pd.to_datetime(inter["timestamp"], unit="s", utc=True)})}
    ws = Workspace(root).ensure()
    ingest_tables(tables, ws, source="cycle", now="2027-01-01")
    return ws


def test_the_cli_resumes_a_one_process_checkpoint_in_two_processes_and_stores_a_loadable_artifact(tmp_path):
    """`vendome train sasrec --nproc 2` continues a one-process run stopped after 2 of 4 epochs (the checkpoint is
    the same file in one process or two) and stores what a straight 4-epoch run in one process would."""
    ws = tiny_workspace(tmp_path / "ws")
    straight, _, _ = train(ws, "sasrec", SASREC)
    checkpoints = str(tmp_path / "checkpoints")
    train(ws, "sasrec", SASREC | {"checkpoint_dir": checkpoints}, epochs=2)
    sets = [f"--set={k}={v}" for k, v in (SASREC | {"checkpoint_dir": checkpoints}).items()]
    out = CliRunner().invoke(app, ["train", "sasrec", "-w", str(ws.root), "--nproc", "2", "--threads", "2",
                                   "--epochs", "4", *sets])
    assert out.exit_code == 0, out.output
    model, meta = load_model(ws, "sasrec")
    assert meta["nproc"] == 2 and str(ws.root) in out.output
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 3   # rank 0 wrote it
    np.testing.assert_allclose([m for _, m in model.history_.metrics],
                               [m for _, m in straight.history_.metrics], rtol=0, atol=1e-9)
    users = np.arange(model.n_users_)
    np.testing.assert_allclose(model.score(users), straight.score(users), rtol=0, atol=1e-4)


@pytest.mark.parametrize("args, message", [(["pop", "--nproc", "2"], "cannot train on 2 processes"),
                                           (["mclmr:mbmf", "--nproc", "2"], "neural models"),
                                           (["sasrec", "--nproc", "0"], "at least 1")])
def test_a_model_that_cannot_train_in_parallel_is_a_clear_error(args, message, tmp_path):
    out = CliRunner().invoke(app, ["train", *args, "-w", str(tmp_path / "nowhere")])
    assert out.exit_code == 1 and message in out.output
