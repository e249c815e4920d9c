"""A/B testing: a strict experiments file, assignment that every process agrees on and that follows the weights,
durable exposures, outcomes credited only inside the attribution window, and a report whose numbers are the
textbook formulas', with the sample-ratio check that catches a broken split."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data.pgserver import pg_url, pg_workspace  # noqa: F401  (fixtures)
from helpers import tiny_tables
from vendome.data import store
from vendome.data.ingest import ingest_tables
from vendome.serve.events import EventLog
from vendome.serve.experiments import (
    ExperimentError,
    ExperimentLog,
    active,
    assign,
    check_experiments,
    experiments_path,
    load_experiments,
    outcomes,
    parse_experiments,
    report,
    resampled_means,
    sample_ratio,
    wilson,
)
from vendome.serve.privacy import erase_customer
from vendome.workspace import Workspace

T = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)          # the first exposures; every event below is relative to it
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
PRICE = {"R1": 2400.0, "R2": 3100.0, "N1": 5200.0, "E1": 2800.0, "W1": 41000.0}   # the tiny boutique's prices
CONTROL = [f"h{i:02d}" for i in range(10)]
TREATMENT = [f"h{i:02d}" for i in range(10, 20)]
VISITORS = [f"v{i:02d}" for i in range(10)]
ORDER_CLIENT, CANCELLED_CLIENT, ARCHIVED_CLIENT = "o-completed", "o-cancelled", "o-archive"
CUSTOMERS = ["c1", "c2", "c3", *CONTROL, *TREATMENT, *VISITORS, ORDER_CLIENT, CANCELLED_CLIENT, ARCHIVED_CLIENT]
PRODUCTS = list(PRICE)

EXPERIMENTS = """\
version: 1
experiments:
  - name: home-rerank
    placements: [home, email]
    arms:
      - {name: control, model: hybrid, weight: 1}
      - {name: sasrec, model: sasrec, weight: 1}
    start: 2026-02-01
    end: 2026-02-28
    status: running
    attribution_days: 7
  - name: cart-holdout
    placements: [cart, home]
    arms:
      - {name: control, model: hybrid, weight: 70}
      - {name: als, model: als, weight: 20}
      - {name: ease, model: ease, weight: 10}
    start: 2026-02-01
    salt: cart-2026
"""


def boutique() -> dict[str, pd.DataFrame]:
    """The tiny boutique with the visitors as clients, and history the store already holds when the test starts:
    an ingested purchase, a completed order of two rings, and a cancelled one."""
    tables = tiny_tables()
    extra = pd.DataFrame({"customer_id": CUSTOMERS[3:], "gender": None})
    tables["customers"] = pd.concat([tables["customers"], extra], ignore_index=True).assign(
        registration_date="2025-06-01", location_country="FR", last_active_date="2026-01-10")
    ingested = pd.DataFrame({"interaction_id": ["a1", "a2"], "customer_id": [ARCHIVED_CLIENT, CANCELLED_CLIENT],
                             "product_id": ["E1", "N1"], "interaction_type": ["purchase", "purchase"],
                             "timestamp": [T + HOUR, T + DAY]})
    tables["interactions"] = pd.concat([tables["interactions"], ingested], ignore_index=True)
    tables["orders"] = pd.DataFrame({"order_id": ["ord-1", "ord-2"], "customer_id": [ORDER_CLIENT, CANCELLED_CLIENT],
                                     "order_date": ["2026-02-12", "2026-02-11"],
                                     "order_status": ["completed", "cancelled"], "total_amount": [4800.0, 5200.0]})
    tables["order_items"] = pd.DataFrame({"order_item_id": ["l1", "l2"], "order_id": ["ord-1", "ord-2"],
                                          "product_id": ["R1", "N1"], "quantity": [2, 1],
                                          "unit_price": [2400.0, 5200.0]})
    return tables


@pytest.fixture(params=["duckdb", "postgres"])
def ws(request, tmp_path: Path):
    """The same exposures and attribution from both stores: the DuckDB file and a PostgreSQL schema."""
    ws = Workspace(tmp_path / "ws") if request.param == "duckdb" else \
        pg_workspace(tmp_path / "ws", request.getfixturevalue("pg_url"))
    ingest_tables(boutique(), ws, source="test")
    experiments_path(ws).write_text(EXPERIMENTS)
    yield ws
    store.writer(ws).close()


@pytest.fixture
def exposures(ws: Workspace) -> ExperimentLog:
    return ExperimentLog(ws)


@pytest.fixture
def events(ws: Workspace) -> EventLog:
    return EventLog(ws, customers=CUSTOMERS, products=PRODUCTS)


@pytest.fixture
def config():
    return parse_experiments(EXPERIMENTS)


def event(customer: str, product: str, kind: str, at: datetime) -> dict:
    return {"customer_id": customer, "product_id": product, "interaction_type": kind, "timestamp": at}


def outcome_of(ws: Workspace, config, customer: str, now: datetime = T + 30 * DAY) -> dict:
    rows = outcomes(ws, config.experiment("home-rerank"), now)
    return rows.set_index("customer_id").loc[customer].to_dict()


# ------------------------------------------------------------------------------------------------ the file
def problems_of(text: str) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        parse_experiments(text)
    return caught.value.problems


def test_the_example_file_parses_and_its_models_are_checked(config):
    example = load_experiments(Path(__file__).parents[2] / "docs" / "experiments.example.yaml")
    assert [e.name for e in example.experiments] == ["home-sasrec-vs-hybrid", "cart-als-holdout"]
    home = config.experiment("home-rerank")
    assert (home.control.name, home.attribution_days, home.salt) == ("control", 7, None)
    assert home.end == datetime(2026, 3, 1, tzinfo=UTC)           # the end day is the last day it runs
    assert config.experiment("cart-holdout").attribution_days == 7  # the default window


def test_a_missing_file_holds_no_experiments(tmp_path: Path):
    assert load_experiments(tmp_path / "experiments.yaml").experiments == []


def test_an_unknown_key_is_an_error_naming_its_line_and_field():
    text = EXPERIMENTS.replace("    attribution_days: 7\n", "    attribution_day: 7\n")
    [problem] = problems_of(text)
    assert problem.startswith("line 11: experiments.0 (home-rerank).attribution_day: unknown setting")


def test_a_weight_must_be_positive():
    text = EXPERIMENTS.replace("{name: sasrec, model: sasrec, weight: 1}", "{name: sasrec, model: sasrec, weight: 0}")
    [problem] = problems_of(text)
    assert problem.startswith("line 7: experiments.0 (home-rerank).arms.1.weight: Input should be greater than 0")


def test_an_experiment_needs_two_arms():
    text = EXPERIMENTS.replace("      - {name: sasrec, model: sasrec, weight: 1}\n", "")
    [problem] = problems_of(text)
    assert problem.startswith("line 5: experiments.0 (home-rerank).arms: an experiment needs at least two arms")


def test_experiment_names_and_arm_names_are_unique():
    [dup] = problems_of(EXPERIMENTS.replace("name: cart-holdout", "name: home-rerank"))
    assert dup.startswith("line 12: experiments.1 (home-rerank).name: experiment names must be unique")
    [arms] = problems_of(EXPERIMENTS.replace("{name: als,", "{name: control,"))
    assert "arm names must be unique" in arms and "repeated: control" in arms


def test_an_impossible_day_is_reported_with_its_line_not_raised_by_yaml():
    [problem] = problems_of(EXPERIMENTS.replace("end: 2026-02-28", "end: 2026-02-30"))
    assert problem.startswith("line 9: experiments.0 (home-rerank).end:") and "'2026-02-30'" in problem


def test_an_arm_whose_model_is_not_trained_is_refused_with_its_line(config):
    check_experiments(config, ["hybrid", "sasrec", "als", "ease"])
    with pytest.raises(ExperimentError) as caught:
        check_experiments(config, ["hybrid", "als", "ease"])
    [problem] = caught.value.problems
    assert problem.startswith("line 7: experiments.0 (home-rerank).arms.1.model: no trained model 'sasrec'")
    assert "trained: als, ease, hybrid" in problem


# ------------------------------------------------------------------------------------------------ assignment
ASSIGN_IN_A_NEW_PROCESS = """
import json, sys
from vendome.serve.experiments import assign, parse_experiments
config = parse_experiments(sys.stdin.read())
print(json.dumps({e.name: [assign(e, f"client-{i}") for i in range(1000)] for e in config.experiments}))
"""


def test_a_new_process_assigns_every_customer_the_same_arm(config):
    here = {e.name: [assign(e, f"client-{i}") for i in range(1000)] for e in config.experiments}
    child = subprocess.run([sys.executable, "-c", ASSIGN_IN_A_NEW_PROCESS], input=EXPERIMENTS, text=True,
                           capture_output=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True)
    assert json.loads(child.stdout) == here
    assert [assign(config.experiment("home-rerank"), f"client-{i}") for i in reversed(range(1000))] == \
        here["home-rerank"][::-1]                                   # the order of the calls does not matter


def test_arms_receive_their_weights_of_traffic(config):
    experiment = config.experiment("cart-holdout")
    arms = pd.Series([assign(experiment, f"client-{i}") for i in range(20_000)])
    shares = arms.value_counts(normalize=True)
    for arm, weight in (("control", 0.7), ("als", 0.2), ("ease", 0.1)):
        assert abs(shares[arm] - weight) < 0.02, (arm, shares[arm])


def test_a_new_salt_reshuffles_only_its_experiment(config):
    resalted = parse_experiments(EXPERIMENTS.replace("salt: cart-2026", "salt: cart-2026-b"))
    ids = [f"client-{i}" for i in range(2000)]

    def arms(cfg, name: str) -> np.ndarray:
        return np.array([assign(cfg.experiment(name), c) for c in ids])

    assert np.array_equal(arms(config, "home-rerank"), arms(resalted, "home-rerank"))
    moved = np.mean(arms(config, "cart-holdout") != arms(resalted, "cart-holdout"))
    assert 0.4 < moved < 0.6              # an independent draw: 1 - (0.7² + 0.2² + 0.1²) = 46% change arm


def test_experiments_split_independently_of_each_other(config):
    ids = [f"client-{i}" for i in range(4000)]
    home = np.array([assign(config.experiment("home-rerank"), c) == "control" for c in ids])
    cart = np.array([assign(config.experiment("cart-holdout"), c) == "control" for c in ids])
    assert abs(cart[home].mean() - cart[~home].mean()) < 0.05     # her home arm says nothing of her cart arm


def test_the_first_running_experiment_covering_a_placement_wins(config):
    assert active(config, "home", T).name == "home-rerank"          # listed first, both cover home
    assert active(config, "cart", T).name == "cart-holdout"
    assert active(config, "product", T) is None
    assert active(config, "home", datetime(2026, 2, 28, 23, 59, tzinfo=UTC)).name == "home-rerank"
    assert active(config, "home", datetime(2026, 3, 1, tzinfo=UTC)).name == "cart-holdout"   # home-rerank ended
    assert active(config, "cart", datetime(2026, 1, 31, tzinfo=UTC)) is None                 # not started
    stopped = parse_experiments(EXPERIMENTS.replace("status: running", "status: stopped"))
    assert active(stopped, "home", T).name == "cart-holdout"


# ------------------------------------------------------------------------------------------------ exposures
def test_an_exposure_is_in_the_store_for_a_new_process(ws: Workspace, exposures: ExperimentLog):
    exposure_id = exposures.record("home-rerank", "sasrec", "v01", "home", ["R1", "N1"], shown_at=T)
    exposures.record("home-rerank", "sasrec", "v01", "email", "E1, R2", shown_at=T + HOUR)   # comma-joined
    exposures.close()
    reader = subprocess.run([sys.executable, "-c", f"""
import json
from vendome.data import store
from vendome.workspace import Workspace
df = store.read_dataframe(Workspace({str(ws.root)!r}, database_url={ws.database_url or ""!r}), "exposures")
df = df.sort_values("shown_at")
print(json.dumps([[r.exposure_id, r.experiment, r.arm, r.customer_id, r.placement, [str(p) for p in r.product_ids],
                   r.shown_at.timestamp()] for r in df.itertuples()]))
"""], capture_output=True, text=True, timeout=60, check=True)
    first, second = json.loads(reader.stdout)
    assert first == [exposure_id, "home-rerank", "sasrec", "v01", "home", ["R1", "N1"], T.timestamp()]
    assert second[4:6] == ["email", ["E1", "R2"]]


def test_a_malformed_exposure_is_refused_and_nothing_is_written(exposures: ExperimentLog):
    with pytest.raises(ValueError, match="unknown placement 'kitchen'"):
        exposures.record("home-rerank", "sasrec", "v01", "kitchen", ["R1"])
    with pytest.raises(ValueError, match="customer_id must be a non-empty id"):
        exposures.record("home-rerank", "sasrec", "", "home", ["R1"])
    assert len(exposures.exposures()) == 0


def test_erasure_removes_her_exposures(ws: Workspace, exposures: ExperimentLog):
    exposures.record("home-rerank", "sasrec", "v01", "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "control", "v02", "home", ["R1"], shown_at=T)
    erase_customer(ws, "v01")
    assert exposures.exposures()["customer_id"].tolist() == ["v02"]


# ------------------------------------------------------------------------------------------------ attribution
def test_a_purchase_counts_only_inside_the_window_after_the_first_exposure(ws, exposures, events, config):
    for c in ("v01", "v02", "v03"):
        exposures.record("home-rerank", "sasrec", c, "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "sasrec", "v03", "home", ["R1"], shown_at=T + 5 * DAY)  # no new window
    events.append([event("v01", "E1", "purchase", T - HOUR),               # before she saw the experiment
                   event("v02", "E1", "purchase", T + 6 * DAY),             # inside the 7 days
                   event("v03", "E1", "purchase", T + 7 * DAY + HOUR)])     # after the first exposure's window
    assert outcome_of(ws, config, "v01")["converted"] is False
    assert outcome_of(ws, config, "v02")["converted"] is True
    assert outcome_of(ws, config, "v03")["converted"] is False
    assert outcome_of(ws, config, "v02", now=T + 5 * DAY)["converted"] is False   # not yet happened at `now`


def test_a_recommendation_click_is_on_a_piece_shown_to_her_before_the_click(ws, exposures, events, config):
    exposures.record("home-rerank", "sasrec", "v01", "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "sasrec", "v02", "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "sasrec", "v02", "home", ["N1"], shown_at=T + 2 * DAY)
    exposures.record("other-test", "b", "v03", "home", ["N1"], shown_at=T)   # shown, but in another experiment
    exposures.record("home-rerank", "sasrec", "v03", "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "sasrec", "v04", "home", ["R2"], shown_at=T)
    events.append([event("v01", "N1", "click", T + HOUR),                 # a piece she was never shown
                   event("v02", "N1", "view", T + DAY),                    # shown to her only the day after
                   event("v03", "N1", "add_to_cart", T + HOUR),
                   event("v04", "R2", "add_to_wishlist", T + HOUR)])       # not a click, a view or a cart
    assert [outcome_of(ws, config, c)["clicked"] for c in ("v01", "v02", "v03", "v04")] == [False] * 4
    events.append([event("v02", "N1", "add_to_cart", T + 3 * DAY), event("v04", "R2", "click", T + HOUR)])
    assert outcome_of(ws, config, "v02")["clicked"] is True
    assert outcome_of(ws, config, "v04")["clicked"] is True


def test_revenue_prices_pieces_from_the_catalog_and_separates_recommended_ones(ws, exposures, events, config):
    exposures.record("home-rerank", "sasrec", "v01", "home", ["R1", "N1"], shown_at=T)
    events.append([event("v01", "N1", "purchase", T + DAY), event("v01", "R2", "purchase", T + DAY),
                   event("v01", "W1", "purchase", T - DAY)])                # before: not hers to credit
    row = outcome_of(ws, config, "v01")
    assert row["revenue"] == PRICE["N1"] + PRICE["R2"]
    assert row["recommended_revenue"] == PRICE["N1"]


def test_orders_and_ingested_interactions_count_once_and_cancelled_orders_never(ws, exposures, events, config):
    for c in (ORDER_CLIENT, CANCELLED_CLIENT, ARCHIVED_CLIENT):
        exposures.record("home-rerank", "control", c, "home", ["R1"], shown_at=T)
    events.append([event(ORDER_CLIENT, "R1", "purchase", T + 2 * DAY)])   # the same rings, also sent by the site
    order = outcome_of(ws, config, ORDER_CLIENT)
    assert order["converted"] and order["revenue"] == order["recommended_revenue"] == 2 * PRICE["R1"]
    assert outcome_of(ws, config, CANCELLED_CLIENT)["converted"] is False
    archived = outcome_of(ws, config, ARCHIVED_CLIENT)
    assert archived["converted"] and archived["revenue"] == PRICE["E1"] and archived["recommended_revenue"] == 0


# ------------------------------------------------------------------------------------------------ the report
@pytest.fixture
def ten_and_ten(ws: Workspace, exposures: ExperimentLog, events: EventLog) -> Workspace:
    """Control 2/10 converted and 1/10 clicked; treatment 5/10 converted and 3/10 clicked."""
    for c in CONTROL:
        exposures.record("home-rerank", "control", c, "home", ["R1", "E1"], shown_at=T)
    for c in TREATMENT:
        exposures.record("home-rerank", "sasrec", c, "home", ["R2", "N1"], shown_at=T)
    events.append([event("h00", "R1", "click", T + HOUR), event("h00", "R1", "purchase", T + DAY),
                   event("h01", "N1", "purchase", T + DAY),                              # not recommended to her
                   *[event(c, "R2", "click", T + HOUR) for c in TREATMENT[:3]],
                   *[event(c, "R2", "purchase", T + DAY) for c in TREATMENT[:5]]])
    return ws


def newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval, with each Wilson bound solved as a root of (p - π)² = z² π (1 - π) / n."""
    z = stats.norm.ppf(0.975)

    def wilson_roots(x: int, n: int) -> tuple[float, float]:
        p = x / n
        roots = np.roots([1 + z * z / n, -(2 * p + z * z / n), p * p])
        return float(min(roots)), float(max(roots))

    (l1, u1), (l2, u2) = wilson_roots(x1, n1), wilson_roots(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    return p2 - p1 - math.hypot(p2 - l2, u1 - p1), p2 - p1 + math.hypot(u2 - p2, p1 - l1)


def test_the_report_gives_each_arms_rates_and_revenue(ten_and_ten: Workspace):
    out = report(ten_and_ten, "home-rerank", now=T + 10 * DAY)
    control, treatment = out["arms"]
    assert (control["arm"], control["model"], treatment["arm"], treatment["model"]) == \
        ("control", "hybrid", "sasrec", "sasrec")
    assert (control["visitors"], control["conversion_rate"], control["click_through"]) == (10, 0.2, 0.1)
    assert (treatment["visitors"], treatment["conversion_rate"], treatment["click_through"]) == (10, 0.5, 0.3)
    assert control["revenue_per_visitor"] == pytest.approx((PRICE["R1"] + PRICE["N1"]) / 10)
    assert control["recommended_revenue_per_visitor"] == pytest.approx(PRICE["R1"] / 10)
    assert treatment["revenue_per_visitor"] == treatment["recommended_revenue_per_visitor"] == \
        pytest.approx(5 * PRICE["R2"] / 10)
    assert control["open_windows"] == treatment["open_windows"] == 0
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_the_conversion_uplift_is_newcombes_interval_and_the_pooled_z_test(ten_and_ten: Workspace):
    uplift = report(ten_and_ten, "home-rerank", now=T + 10 * DAY)["arms"][1]["vs_control"]["conversion_rate"]
    assert uplift["difference"] == pytest.approx(0.3)
    assert uplift["ci95"] == pytest.approx(newcombe(2, 10, 5, 10), abs=1e-9)
    # by hand: Wilson 2/10 = (0.0567, 0.5098), 5/10 = (0.2366, 0.7634);
    # 0.3 - √((0.5 - 0.2366)² + (0.5098 - 0.2)²) = -0.1067 and 0.3 + √((0.7634 - 0.5)² + (0.2 - 0.0567)²) = 0.5999
    assert uplift["ci95"] == pytest.approx([-0.1067, 0.5999], abs=1e-4)
    chi2, p, _, _ = stats.chi2_contingency([[2, 8], [5, 5]], correction=False)
    assert uplift["p_value"] == pytest.approx(p)
    assert uplift["relative"] == pytest.approx(1.5)                          # 0.5 / 0.2 - 1
    se = math.sqrt(1 / 5 - 1 / 10 + 1 / 2 - 1 / 10)                          # Katz: log risk ratio
    assert uplift["relative_ci95"] == pytest.approx(
        [math.exp(math.log(2.5) - 1.959964 * se) - 1, math.exp(math.log(2.5) + 1.959964 * se) - 1], rel=1e-5)


def test_a_wilson_interval_matches_its_published_value():
    assert wilson(2, 10) == pytest.approx((0.0567, 0.5098), abs=1e-4)


def test_the_revenue_interval_is_a_bootstrap_that_gives_the_same_answer_every_time(ten_and_ten: Workspace):
    first = report(ten_and_ten, "home-rerank", now=T + 10 * DAY)["arms"][1]["vs_control"]["revenue_per_visitor"]
    again = report(ten_and_ten, "home-rerank", now=T + 10 * DAY)["arms"][1]["vs_control"]["revenue_per_visitor"]
    other = report(ten_and_ten, "home-rerank", now=T + 10 * DAY, seed=1)["arms"][1]["vs_control"]
    assert first == again
    assert other["revenue_per_visitor"]["ci95"] != first["ci95"]
    assert first["difference"] == pytest.approx(1550.0 - 760.0)
    low, high = first["ci95"]
    assert low < first["difference"] < high and low < 0        # 10 visitors a side: not yet a proven gain
    assert 0.05 < first["p_value"] <= 1


def test_the_zero_skipping_bootstrap_has_the_plain_bootstraps_distribution():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(400) < 0.05, rng.choice(list(PRICE.values()), 400), 0.0)
    means = resampled_means(values, 20_000, np.random.default_rng(1), chunk=5_000)   # several chunks
    assert means.mean() == pytest.approx(values.mean(), rel=0.01)
    assert means.std() == pytest.approx(values.std() / math.sqrt(len(values)), rel=0.03)


def test_sample_ratio_mismatch_flags_a_900_100_split_of_a_50_50_experiment():
    broken = sample_ratio([900, 100], [1, 1])
    assert broken["mismatch"] and broken["p_value"] < 1e-100 and broken["chi2"] == pytest.approx(640.0)
    assert not sample_ratio([510, 490], [1, 1])["mismatch"]
    assert not sample_ratio([700, 200, 100], [70, 20, 10])["mismatch"]


def test_the_report_warns_of_a_broken_split_and_of_visitors_who_switched_arms(ws, exposures):
    for i in range(18):
        exposures.record("home-rerank", "control", f"h{i:02d}", "home", ["R1"], shown_at=T)
    for c in ("h18", "h19"):
        exposures.record("home-rerank", "sasrec", c, "home", ["R1"], shown_at=T)
    exposures.record("home-rerank", "control", "h19", "home", ["R1"], shown_at=T + HOUR)   # her second arm
    out = report(ws, "home-rerank", now=T + DAY)
    assert out["sample_ratio"]["observed"] == {"control": 18, "sasrec": 2}
    assert out["sample_ratio"]["mismatch"] and out["sample_ratio"]["p_value"] < 0.001
    assert [a["visitors"] for a in out["arms"]] == [18, 2] and out["arms"][1]["open_windows"] == 2
    assert any(w.startswith("sample-ratio mismatch") for w in out["warnings"])
    assert any(w.startswith("1 visitor(s) were shown more than one arm") for w in out["warnings"])


def test_a_report_before_any_exposure_has_no_numbers_but_is_well_formed(ws: Workspace):
    out = report(ws, "cart-holdout", now=T)
    assert [a["visitors"] for a in out["arms"]] == [0, 0, 0]
    assert out["arms"][1]["vs_control"]["conversion_rate"]["ci95"] is None
    assert out["sample_ratio"]["p_value"] is None and not out["sample_ratio"]["mismatch"]
    json.dumps(out, allow_nan=False)
    with pytest.raises(KeyError, match="no experiment 'nope'"):
        report(ws, "nope")
