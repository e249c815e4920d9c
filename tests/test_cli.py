"""The command line end to end on the small demo boutique: generate, ingest, train, recommend, evaluate, serve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from vendome.cli import app
from vendome.workspace import Workspace

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def boutique(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    export, ws = root / "export", root / "ws"
    run("generate", export, "--size", "small", "--seed", "3")
    run("ingest", export, "--workspace", ws)
    run("train", "hybrid", "--workspace", ws, "--threads", "2")
    return export, ws


def test_generate_writes_the_six_contract_files_images_and_truth(boutique):
    export, _ = boutique
    for name in ("products", "customers", "orders", "order_items", "interactions"):
        assert (export / f"{name}.csv").exists()
    assert any((export / "images").glob("*.png")) and (export / "truth.json").exists()


def test_a_corrupted_export_is_refused_with_every_problem_and_the_workspace_untouched(boutique, tmp_path):
    export, ws = boutique
    bad = tmp_path / "bad"
    shutil.copytree(export, bad, ignore=shutil.ignore_patterns("images", "truth*"))
    products = (bad / "products.csv").read_text().splitlines()
    header = products[0].split(",")
    row = products[1].split(",")
    row[header.index("price")] = "-5"
    products[1] = ",".join(row)
    (bad / "products.csv").write_text("\n".join(products) + "\n")
    before = Workspace(ws).db.read_bytes()
    result = runner.invoke(app, ["ingest", str(bad), "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "price" in result.output and "products.csv" in result.output and "image_url" in result.output
    assert Workspace(ws).db.read_bytes() == before


def test_recommend_prints_in_stock_unbought_products_with_reasons(boutique):
    export, ws = boutique
    import pandas as pd

    buys = pd.read_csv(export / "interactions.csv")
    buyer = buys.loc[buys["interaction_type"] == "purchase", "customer_id"].value_counts().index[0]
    out = json.loads(run("recommend", buyer, "--workspace", ws, "-k", "5", "--json"))
    assert out["model"] == "hybrid" and len(out["items"]) == 5
    bought = set(buys.loc[(buys["customer_id"] == buyer) & (buys["interaction_type"] == "purchase"), "product_id"])
    stock = pd.read_csv(export / "products.csv").set_index("product_id")["stock_status"]
    for item in out["items"]:
        assert item["product_id"] not in bought
        assert stock[item["product_id"]] not in ("out_of_stock", "discontinued")
        assert item["reason"]["code"] and item["reason"]["text"]


def test_recommend_for_an_unknown_customer_is_a_clear_error(boutique):
    _, ws = boutique
    result = runner.invoke(app, ["recommend", "nobody", "--workspace", str(ws)])
    assert result.exit_code == 1 and "unknown customer" in result.output


def test_search_works_on_a_freshly_ingested_workspace_and_keeps_every_hard_constraint(boutique, tmp_path):
    import pandas as pd

    export, _ = boutique
    ws = tmp_path / "fresh"
    run("ingest", export, "--workspace", ws)            # no features, no model, no search engine yet
    products = pd.read_csv(export / "products.csv").set_index("product_id")
    ring = products[(products["subcategory"] == "ring") & (products["stone_type"] == "diamond")].index[0]
    out = json.loads(run("search", "like this, but in rose gold, no diamonds, under 40k", "--anchor", ring,
                         "--workspace", ws, "-k", "5", "--json"))
    assert set(out) >= {"results", "constraints"} and 0 < len(out["results"]) <= 5
    assert {(c["attribute"], c["op"]) for c in out["constraints"] if c["hard"]} >= {
        ("stone_type", "not_in"), ("price", "lt"), ("subcategory", "in")}
    for r in out["results"]:
        piece = products.loc[r["product_id"]]
        assert piece["subcategory"] == "ring" and piece["stone_type"] != "diamond" and piece["price"] < 40_000
        assert r["reason"] and isinstance(r["score"], float)
    assert (ws / "search" / "engine.pkl").exists()        # fitted once, loaded by the next search
    text = run("search", "a necklace in white gold", "--workspace", ws, "-k", "3")
    assert "constraints:" in text and "necklace" in text.lower()
    bad = runner.invoke(app, ["search", "in rose gold", "--anchor", "NOPE", "--workspace", str(ws)])
    assert bad.exit_code == 1 and "unknown product_id" in bad.output


def test_evaluate_writes_the_json_contract_and_an_html_report(boutique, tmp_path):
    _, ws = boutique
    out = run("evaluate", "--workspace", ws, "--models", "pop,als", "--protocol", "temporal",
              "--json", tmp_path / "r.json", "--html", tmp_path / "r.html")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["protocol"] == "temporal" and set(report["models"]) == {"pop", "als"}
    for k in (5, 10, 20):
        for metric in ("hr", "ndcg", "recall", "mrr"):
            assert 0.0 <= report["models"]["als"][f"{metric}@{k}"] <= 1.0
    assert "<img" in (tmp_path / "r.html").read_text() and "als" in out


def test_the_api_serves_recommendations_and_similar_products(boutique):
    _, ws = boutique
    from vendome.serve.app import create_app

    client = TestClient(create_app(Workspace(ws)))
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "hybrid"
    import pandas as pd

    cid = pd.read_csv(Path(ws).parent / "export" / "customers.csv")["customer_id"].iloc[0]
    r = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 3, "placement": "home"})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert client.get("/v1/customers/nobody/recommendations").status_code == 404
    pid = r.json()["items"][0]["product_id"]
    sim = client.get(f"/v1/products/{pid}/similar", params={"k": 4}).json()
    assert len(sim["items"]) == 4 and pid not in {i["product_id"] for i in sim["items"]}


def test_the_mclmr_plug_in_trains_and_serves_from_the_command_line(boutique):
    export, ws = boutique
    import pandas as pd

    out = run("train", "mclmr:mbmf", "--workspace", ws, "--epochs", "3", "--set", "factors=8", "--set", "k_users=4",
              "--set", "k_items=4")
    assert "MCLMR(base='mbmf'" in out
    events = pd.read_csv(export / "interactions.csv")
    carted = events.loc[events["interaction_type"] == "add_to_cart", "customer_id"].value_counts().index[0]
    result = json.loads(run("recommend", carted, "--workspace", ws, "--model", "mclmr:mbmf", "-k", "5", "--json"))
    assert result["model"] == "mclmr:mbmf" and len(result["items"]) == 5
    texts = [item["reason"]["text"] for item in result["items"]]
    assert all("led by" in t and "adjusted for habits and popularity" in t for t in texts), texts
    assert all(item["reason"]["code"] == "behaviors" for item in result["items"])
