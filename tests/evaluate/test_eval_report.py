"""Reports: the JSON a machine reads back, the HTML page a person opens, the terminal table the demo prints."""

from __future__ import annotations

import json
import re

import pytest

from evaluate.eval_fixtures import Broken, Popularity, RandomScores
from vendome.evaluate.report import comparison_rows, format_table, write_html, write_json
from vendome.evaluate.run import evaluate


@pytest.fixture(scope="module")
def report(boutique_split):
    train = boutique_split.train
    broken = Broken()
    models = {"popularity": Popularity().fit(train), "random": [RandomScores(seed=s).fit(train) for s in (0, 1, 2)],
              "<b>broken</b>": broken}
    return evaluate(boutique_split, models, progress=False, pairs=[("random", "popularity")])


def test_json_round_trips_without_the_per_user_arrays(report, tmp_path):
    path = write_json(report, tmp_path / "reports" / "eval.json")
    back = json.loads(path.read_text())
    assert "per_user" not in back
    assert back["models"]["popularity"]["ndcg@10"] == pytest.approx(report["models"]["popularity"]["ndcg@10"])
    assert back["models"]["<b>broken</b>"]["error"] == "RuntimeError: scoring failed"
    assert back["significance"]["best"] in {"popularity", "random"}
    full = json.loads(write_json(report, tmp_path / "full.json", per_user=True).read_text())
    assert len(full["per_user"]["models"]["random"]["ndcg@10"]) == len(report["per_user"]["users"])


@pytest.fixture(scope="module")
def html(report, tmp_path_factory) -> str:
    return write_html(report, tmp_path_factory.mktemp("reports") / "eval.html").read_text()


def test_html_is_self_contained_with_table_charts_and_significance(html):
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 5 and all(len(i) > 1000 for i in images)
    assert "<table>" in html and "NDCG@10" in html and "Significance" in html
    assert 'class="best"' in html
    assert "boutique" in html and "test users" in html
    assert not re.search(r'(src|href)="https?://', html)  # nothing fetched from elsewhere


def test_html_escapes_names_from_the_data(html):
    assert "<b>broken</b>" not in html
    assert "&lt;b&gt;broken&lt;/b&gt;" in html


def test_best_value_per_column_is_bold(report, html):
    best = max(("popularity", "random"), key=lambda n: report["models"][n]["hr@10"])
    value = f"{report['models'][best]['hr@10']:.4f}"
    row = re.search(rf"<td>{best}</td>\s*(.*?)</tr>", html, re.S).group(1)
    assert re.search(rf'<td class="best">{value}', row)


def test_terminal_table_lists_models_metrics_failures_and_verdicts(report):
    text = format_table(report)
    assert "ndcg@10" in text.splitlines()[1]
    assert f"{report['models']['popularity']['ndcg@10']:.4f}" in text
    assert "<b>broken</b>: FAILED RuntimeError: scoring failed" in text
    assert "random" in text and ("p=" in text)


def test_a_column_where_every_model_ties_has_no_bold_value():
    models = {n: {"hr@10": v, "guardrail_violations": 0, "ild_brand@10": 0.0} for n, v in (("a", 0.1), ("b", 0.2))}
    headers, rows = comparison_rows({"models": models, "beyond_k": 10})
    ild = headers.index("ILD brand")
    assert [r["cells"][0]["best"] for r in rows] == [False, True]
    assert not any(r["cells"][ild]["best"] for r in rows)
