"""A/B tests of recommendation strategies: the experiments file, assignment by hashing, exposures, and the report.

    config = load_experiments(experiments_path(ws), models=trained)   # ExperimentError names each bad line
    exp = active(config, "home")                     # the experiment running on the home page, or None
    arm = assign(exp, customer_id)                   # the same arm for her in every process, for ever
    log.record(exp.name, arm, customer_id, "home", shown)             # durable before the list is returned
    report(ws, exp.name)                             # per arm rates, uplift vs control with 95% intervals, SRM

Assignment is a pure function of (salt, customer id), so no table of assignments is kept and every replica of the
service agrees. Outcomes are not logged separately: they are read from the events the site already sends (the
event log) and from the ingested interactions and orders, within the experiment's attribution window after the
visitor's first exposure. Sample-ratio mismatch is checked on every report, because a broken assignment or a
logging path that drops one arm is the most common A/B bug, and it silently biases every number.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from scipy import stats

from vendome.data import store
from vendome.data.dataset import NON_PURCHASE_STATUSES
from vendome.rules.policy import PLACEMENTS, read_yaml_mapping
from vendome.rules.policy import line_of as _line_of
from vendome.workspace import Workspace

EXPOSURES = "exposures"
CLICK_TYPES = ("click", "view", "add_to_cart")     # engagement with a shown piece that counts as a recommendation click
Z95 = float(stats.norm.ppf(0.975))
SRM_THRESHOLD = 0.001                              # p below this: the split is broken, not unlucky
BOOTSTRAP_RESAMPLES = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DDL = f"""CREATE TABLE IF NOT EXISTS {EXPOSURES} (
    exposure_id VARCHAR, experiment VARCHAR, arm VARCHAR, customer_id VARCHAR, placement VARCHAR,
    product_ids VARCHAR[], shown_at TIMESTAMPTZ)"""          # DuckDB; PostgreSQL's table is a migration
_EXPOSURE_COLUMNS = "exposure_id, experiment, arm, customer_id, placement, product_ids, shown_at"


def experiments_path(ws: Workspace) -> Path:
    return ws.root / "experiments.yaml"


# ------------------------------------------------------------------------------------------------ the file
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(_Strict):
    """One strategy under test: a trained model of the workspace and its share of the traffic (weights are
    relative: 50/50, 1/1 and 0.5/0.5 are the same split)."""

    name: str
    model: str
    weight: float = Field(gt=0.0, allow_inf_nan=False)

    @field_validator("name", "model")
    @classmethod
    def _identifier(cls, v: str) -> str:
        return _check_name(v)


class Experiment(_Strict):
    """An A/B test on some placements. The first arm is the control every other arm is compared with.

    start / end: a day (YYYY-MM-DD, UTC; `end` is the last day it runs) or a date-time (naive means UTC; `end` is
    the instant it stops). No end: it runs until its status is set to stopped. Changing the weights or the salt of
    a running experiment moves visitors between arms (the report warns of visitors shown several arms): start a
    new experiment instead. Experiments sharing a salt split alike (arm for arm, by weight); give each its own
    unless that is the point.
    """

    name: str
    placements: list[Literal["home", "email", "product", "cart"]] = Field(min_length=1)
    arms: list[Arm]
    start: datetime
    end: datetime | None = None
    status: Literal["running", "stopped"] = "running"
    attribution_days: int = Field(7, ge=1, le=90)
    salt: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: object) -> object:
        return _instant(v, end=False)

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, v: object) -> object:
        return _instant(v, end=True)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @field_validator("placements")
    @classmethod
    def _distinct_placements(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"a placement is listed twice: {v}")
        return v

    @field_validator("arms", mode="before")
    @classmethod
    def _two_arms(cls, v: object) -> object:
        if isinstance(v, list) and len(v) < 2:    # before the arms' own checks, so both are reported at once
            raise ValueError(f"an experiment needs at least two arms (the control first, then a variant), "
                             f"got {len(v)}")
        return v

    @field_validator("arms")
    @classmethod
    def _distinct_arms(cls, v: list[Arm]) -> list[Arm]:
        names = [a.name for a in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"arm names must be unique within an experiment; repeated: {', '.join(twice)}")
        return v

    @model_validator(mode="after")
    def _dates(self) -> Experiment:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end:%Y-%m-%d %H:%M} UTC is not after start {self.start:%Y-%m-%d %H:%M} UTC")
        return self

    @property
    def control(self) -> Arm:
        return self.arms[0]

    @property
    def hash_key(self) -> str:
        """What customer ids are hashed with: the salt, else the name (so two experiments split independently)."""
        return self.salt if self.salt is not None else self.name

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"experiment {self.name!r} has no arm {name!r} (arms: {', '.join(a.name for a in self.arms)})")

    def is_running(self, now: datetime) -> bool:
        return self.status == "running" and self.start <= now and (self.end is None or now < self.end)


class ExperimentConfig(_Strict):
    """The whole experiments file: `version: 1` and a list of experiments (order matters, see `active`)."""

    version: Literal[1] = 1
    experiments: list[Experiment] = Field(default_factory=list)
    _root: yaml.Node | None = PrivateAttr(None)     # the parsed YAML, so later checks can name lines too

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        have = ", ".join(e.name for e in self.experiments) or "none"
        raise KeyError(f"no experiment {name!r} in the experiments file (have: {have})")


class ExperimentError(ValueError):
    """Every problem of an experiments file, each with its line, field and what was expected."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the experiments file:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("expected a name of 1 to 64 letters, digits, '_', '.' or '-' (starting with a letter or "
                         f"digit), got {v!r}")
    return v


def _instant(v: object, end: bool) -> object:
    """A YAML day becomes its first instant (start) or the first instant after it (end: the day is included)."""
    if isinstance(v, str) and _DAY.match(v.strip()):
        try:
            v = date.fromisoformat(v.strip())
        except ValueError:
            return v                               # pydantic reports the bad day
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime.combine(v + timedelta(days=1 if end else 0), time(), UTC)
    return v




def parse_experiments(text: str, source: str = "<experiments>") -> ExperimentConfig:
    """The experiments in a YAML text, or an ExperimentError naming each problem's line and field."""
    root, raw, problem = read_yaml_mapping(text, "a mapping with `experiments:` (a list)")
    if problem:
        raise ExperimentError(source, [problem])
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-")))]
            value = f", got {err['input']!r}" if "input" in err and not isinstance(err["input"], dict | list) else ""
            problems.append(f"line {_line_of(root, path)}: {_field(raw, path)}: {_plain(err['msg'])}{value}")
        raise ExperimentError(source, problems) from None
    names = [e.name for e in config.experiments]
    problems = [f"line {_line_of(root, ['experiments', i, 'name'])}: {_field(raw, ['experiments', i, 'name'])}: "
                f"experiment names must be unique; {n!r} is already used above"
                for i, n in enumerate(names) if n in names[:i]]
    if problems:
        raise ExperimentError(source, problems)
    config._root = root
    return config


def load_experiments(path: str | Path, models: Iterable[str] | None = None) -> ExperimentConfig:
    """The experiments in `path` (none when the file does not exist); with `models`, also `check_experiments`."""
    path = Path(path)
    config = parse_experiments(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else ExperimentConfig()
    if models is not None:
        check_experiments(config, models, source=str(path))
    return config


def check_experiments(config: ExperimentConfig, models: Iterable[str], source: str = "<experiments>") -> None:
    """ExperimentError unless every arm's model is one of `models` (the workspace's trained model names): an
    arm without a model would fail on its first visitor, so the file is refused before it is served."""
    known = sorted({str(m) for m in models})
    problems = []
    for i, e in enumerate(config.experiments):
        for j, a in enumerate(e.arms):
            if a.model not in known:
                path = ["experiments", i, "arms", j, "model"]
                problems.append(f"line {_line_of(config._root, path)}: experiments.{i} ({e.name}).arms.{j}.model: "
                                f"no trained model {a.model!r} in the workspace "
                                f"(trained: {', '.join(known) or 'none'})")
    if problems:
        raise ExperimentError(source, problems)


def _field(raw: dict, path: list) -> str:
    """The dotted field path, with the experiment's name beside its index: `experiments.1 (home-sasrec).arms`."""
    parts = [str(p) for p in path]
    if len(path) >= 2 and path[0] == "experiments" and isinstance(path[1], int):
        items = raw.get("experiments")
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            parts[1] = f"{path[1]} ({item['name']})"
    return ".".join(parts) or "(top level)"


def _plain(msg: str) -> str:
    return msg.removeprefix("Value error, ").replace(
        "Extra inputs are not permitted", "unknown setting (a typo? see docs/experiments.example.yaml)")


# ------------------------------------------------------------------------------------------------ assignment
def bucket(experiment: Experiment, customer_id: str) -> float:
    """The customer's point in [0, 1): the first 53 bits of sha256("<salt or name>:<customer id>") over 2**53,
    so any system (SQL, a mailing tool) can recompute it exactly."""
    digest = hashlib.sha256(f"{experiment.hash_key}:{customer_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def assign(experiment: Experiment, customer_id: str) -> str:
    """The arm of a customer: her bucket cut by the cumulative weights. Deterministic (no state, no order, no
    process), independent between experiments of different salts or names."""
    point = bucket(experiment, str(customer_id)) * sum(a.weight for a in experiment.arms)
    edge = 0.0
    for a in experiment.arms:
        edge += a.weight
        if point < edge:
            return a.name
    return experiment.arms[-1].name                # float rounding at the very top of the last arm


def active(experiments: ExperimentConfig | Sequence[Experiment], placement: str,
           now: datetime | None = None) -> Experiment | None:
    """The experiment to run on `placement` at `now` (default: the wall clock), or None. When several running
    experiments cover the placement, the first in the file wins, so a visitor is in at most one experiment per
    placement and the others see no traffic there until it ends."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; valid: {', '.join(PLACEMENTS)}")
    now = _aware(now)
    items = experiments.experiments if isinstance(experiments, ExperimentConfig) else experiments
    return next((e for e in items if placement in e.placements and e.is_running(now)), None)


# ------------------------------------------------------------------------------------------------ exposures
class ExperimentLog(store.LoggedTable):
    """Durable log of exposures (what an arm showed to whom, where, when) in the store's `exposures` table.

    `record` commits one transaction per exposure through the process's one `store.writer(ws)` connection and
    returns after the commit (DuckDB fdatasyncs its WAL), as the event log does: an exposure the service returned
    a list for is never lost. Every display is an exposure (a cached list shown again too); the report counts a
    visitor once, from her first.
    """

    ddl = _DDL

    def record(self, experiment: str, arm: str, customer_id: str, placement: str,
               product_ids: Sequence[str] | str, shown_at: datetime | None = None) -> str:
        """Store one exposure; returns its id. `product_ids`: the list shown, in order (or a comma-joined string)."""
        for field, value in (("experiment", experiment), ("arm", arm), ("customer_id", customer_id)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"exposure {field} must be a non-empty id (text), got {value!r}")
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}; valid: {', '.join(PLACEMENTS)}")
        if isinstance(product_ids, str):
            product_ids = [p.strip() for p in product_ids.split(",") if p.strip()]
        shown = [str(p) for p in product_ids]
        exposure_id = f"ex_{uuid.uuid4().hex}"
        with self._writer.transaction() as con:
            if not self._ready:
                store.create_table(con, _DDL)
            con.execute(f"INSERT INTO {EXPOSURES} ({_EXPOSURE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [exposure_id, experiment, arm, customer_id, placement, shown, _aware(shown_at)])
        self._ready = True
        return exposure_id

    def exposures(self, experiment: str | None = None) -> pd.DataFrame:
        """The logged exposures (of one experiment), in the order they were shown."""
        self._ensure()
        where, params = ("WHERE experiment = ?", [experiment]) if experiment is not None else ("", [])
        return self._writer.query(f"SELECT {_EXPOSURE_COLUMNS} FROM {EXPOSURES} {where} "
                                  f"ORDER BY shown_at, {self._writer.row_order}", params)



def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.now(UTC)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# ------------------------------------------------------------------------------------------------ attribution
def outcomes(ws: Workspace | str | Path, experiment: Experiment, now: datetime | None = None) -> pd.DataFrame:
    """One row per visitor of the experiment: arm (of her first exposure), first_at, arms_seen, clicked,
    converted, revenue, recommended_revenue.

    Only events in [first exposure, first exposure + attribution_days) and not after `now` count, so nothing a
    visitor did before she saw the experiment is credited to it. Sources: the event log, the ingested
    interactions, and completed order lines (each line's quantity of pieces at the order's date; a date without
    a time is midnight UTC, so a same-day order counts only if the exposure was that midnight). A click-stream
    purchase that matches an order line of the same customer and product counts once, as in `Dataset`.
    Recommendation clicks and recommended revenue need the piece to have been shown to her in this experiment at
    or before the event. Revenue prices each piece at its `products.price`.
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    writer = store.writer(ws)
    columns = ["customer_id", "arm", "first_at", "arms_seen", "clicked", "converted", "revenue",
               "recommended_revenue"]
    if not store.has_table(ws, EXPOSURES):
        return pd.DataFrame(columns=columns)
    present = {t for t in (store.EVENT_LOG, "interactions", "orders", "order_items", "products")
               if store.has_table(ws, t)}
    clickstream = [f"SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(product_id AS VARCHAR) AS product_id, "
                   f"CAST(interaction_type AS VARCHAR) AS interaction_type, CAST(timestamp AS TIMESTAMPTZ) AS ts "
                   f"FROM {t} WHERE CAST(customer_id AS VARCHAR) IN (SELECT customer_id FROM visitors)"
                   for t in (store.EVENT_LOG, "interactions") if t in present]
    if not clickstream:
        clickstream = ["SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::TIMESTAMPTZ WHERE false"]
    has_orders = {"orders", "order_items"} <= present
    lines = ("SELECT CAST(o.customer_id AS VARCHAR) AS customer_id, CAST(li.product_id AS VARCHAR) AS product_id, "
             "CAST(li.quantity AS FLOAT8) AS quantity, CAST(o.order_date AS TIMESTAMPTZ) AS ts, "
             "lower(CAST(o.order_status AS VARCHAR)) AS status FROM order_items li "
             "JOIN orders o ON CAST(o.order_id AS VARCHAR) = CAST(li.order_id AS VARCHAR) "
             "WHERE CAST(o.customer_id AS VARCHAR) IN (SELECT customer_id FROM visitors)" if has_orders else
             "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::FLOAT8, NULL::TIMESTAMPTZ, NULL::VARCHAR WHERE false")
    prices = ("SELECT CAST(product_id AS VARCHAR) AS product_id, CAST(price AS FLOAT8) AS price FROM products"
              if "products" in present else "SELECT NULL::VARCHAR AS product_id, NULL::FLOAT8 AS price WHERE false")
    cancelled = ", ".join(f"'{s}'" for s in sorted(NON_PURCHASE_STATUSES))
    clicks = ", ".join(f"'{t}'" for t in CLICK_TYPES)
    # SQL that DuckDB and PostgreSQL both speak (FLOAT8, array_agg(... ORDER BY)[1], aliased subqueries), so the
    # report reads the same tables on either store
    sql = f"""
    WITH p AS (SELECT ?::VARCHAR AS name, ?::TIMESTAMPTZ AS now, ?::INTEGER AS days),
    exp AS (SELECT customer_id, arm, product_ids, shown_at FROM {EXPOSURES}
            WHERE experiment = (SELECT name FROM p) AND shown_at <= (SELECT now FROM p)),
    visitors AS (SELECT customer_id, (array_agg(arm ORDER BY shown_at))[1] AS arm, min(shown_at) AS first_at,
                        count(DISTINCT arm) AS arms_seen,
                        min(shown_at) + (SELECT days FROM p) * INTERVAL '1 day' AS until
                 FROM exp GROUP BY customer_id),
    shown AS (SELECT customer_id, product_id, min(shown_at) AS shown_at
              FROM (SELECT customer_id, unnest(product_ids) AS product_id, shown_at FROM exp) AS flat
              GROUP BY customer_id, product_id),
    stream(customer_id, product_id, interaction_type, ts) AS (
        SELECT DISTINCT * FROM ({" UNION ALL ".join(clickstream)}) AS events),
    lines(customer_id, product_id, quantity, ts, status) AS ({lines}),
    prices AS ({prices}),
    inwindow AS (SELECT s.* FROM stream s JOIN visitors v USING (customer_id)
                 WHERE s.ts >= v.first_at AND s.ts < v.until AND s.ts <= (SELECT now FROM p)),
    clickers AS (SELECT DISTINCT e.customer_id FROM inwindow e
                 JOIN shown USING (customer_id, product_id)
                 WHERE e.interaction_type IN ({clicks}) AND e.ts >= shown.shown_at),
    purchases AS (
        SELECT e.customer_id, e.product_id, 1.0 AS quantity, e.ts FROM inwindow e
        WHERE e.interaction_type = 'purchase'
          AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.customer_id = e.customer_id AND l.product_id = e.product_id)
        UNION ALL
        SELECT l.customer_id, l.product_id, l.quantity, l.ts FROM lines l JOIN visitors v USING (customer_id)
        WHERE l.status NOT IN ({cancelled}) AND l.quantity > 0
          AND l.ts >= v.first_at AND l.ts < v.until AND l.ts <= (SELECT now FROM p)),
    bought AS (
        SELECT b.customer_id, sum(b.quantity * coalesce(pr.price, 0)) AS revenue,
               sum(CASE WHEN sh.shown_at IS NOT NULL AND sh.shown_at <= b.ts
                        THEN b.quantity * coalesce(pr.price, 0) ELSE 0 END) AS recommended_revenue
        FROM purchases b LEFT JOIN prices pr USING (product_id)
        LEFT JOIN shown sh ON sh.customer_id = b.customer_id AND sh.product_id = b.product_id
        GROUP BY b.customer_id)
    SELECT v.customer_id, v.arm, v.first_at, v.arms_seen,
           c.customer_id IS NOT NULL AS clicked, b.customer_id IS NOT NULL AS converted,
           coalesce(b.revenue, 0.0) AS revenue, coalesce(b.recommended_revenue, 0.0) AS recommended_revenue
    FROM visitors v LEFT JOIN clickers c USING (customer_id) LEFT JOIN bought b USING (customer_id)
    ORDER BY v.customer_id"""
    return writer.query(sql, [experiment.name, _aware(now), experiment.attribution_days])[columns]


# ------------------------------------------------------------------------------------------------ the report
METHODS = {
    "proportions": "difference of proportions with Newcombe's hybrid score interval (method 10: Wilson intervals "
                   "of each arm combined), which keeps its coverage at the low rates and small arms of luxury "
                   "traffic where the Wald interval is too narrow; relative uplift: Katz log risk-ratio interval; "
                   "p-value: two-sided pooled two-proportion z-test (equivalently, Pearson chi-square)",
    "revenue": "percentile bootstrap over visitors (each arm resampled with replacement, fixed seed): revenue per "
               "visitor is mostly zeros and a few purchases of very different prices, a shape Welch's t interval "
               "assumes away at these sample sizes, and the bootstrap gives the relative uplift's interval without "
               "a delta method; p-value: two-sided bootstrap p, 2 x the share of resampled differences on the "
               "other side of 0, with the +1 correction (no lower than 2 / (resamples + 1))",
    "sample_ratio": f"chi-square goodness of fit of visitors per arm against the weights; mismatch when "
                    f"p < {SRM_THRESHOLD}",
    "attribution": "events in [first exposure, first exposure + attribution_days) and not after as_of; a "
                   "recommendation click is a click, view or add_to_cart on a piece shown to her in the experiment "
                   "at or before the event",
}


def report(ws: Workspace | str | Path, experiment_name: str, now: datetime | None = None, *,
           experiments: ExperimentConfig | None = None, seed: int = 0,
           resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Per arm: visitors, conversion rate, click-through on recommendations, revenue per visitor (all and from
    recommended pieces); for each arm after the first, absolute and relative uplift against the control with 95%
    intervals and p-values; the sample-ratio check. JSON-able (undefined numbers are None). `experiments`
    defaults to the workspace's file; KeyError for an experiment it does not hold.

    Intervals are per comparison at 95%, not adjusted for several variants. Visitors whose window is still open
    count with what they did so far (both arms alike, so the comparison stays fair; `open_windows` says how many).
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    config = experiments if experiments is not None else load_experiments(experiments_path(ws))
    experiment = config.experiment(experiment_name)
    now = _aware(now)
    visits = outcomes(ws, experiment, now)
    arm_names = [a.name for a in experiment.arms]
    warnings = []
    unknown = visits[~visits["arm"].isin(arm_names)]
    if len(unknown):
        warnings.append(f"{len(unknown)} visitor(s) were first exposed under arms the file no longer has "
                        f"({', '.join(sorted(set(unknown['arm'])))}); they are left out")
        visits = visits[visits["arm"].isin(arm_names)]
    switched = int((visits["arms_seen"] > 1).sum())
    if switched:
        warnings.append(f"{switched} visitor(s) were shown more than one arm (weights or salt changed while it ran, "
                        "or an exposure logged outside assign); each counts in the arm of her first exposure")
    window = timedelta(days=experiment.attribution_days)
    by_arm = {name: visits[visits["arm"] == name] for name in arm_names}
    total_weight = sum(a.weight for a in experiment.arms)

    arms = []
    for a in experiment.arms:
        v = by_arm[a.name]
        n = len(v)
        entry = {"arm": a.name, "model": a.model, "weight": a.weight / total_weight, "visitors": n,
                 "open_windows": int((pd.to_datetime(v["first_at"], utc=True) + window > now).sum()),
                 "conversions": int(v["converted"].sum()), "conversion_rate": _ratio(v["converted"].sum(), n),
                 "clickers": int(v["clicked"].sum()), "click_through": _ratio(v["clicked"].sum(), n),
                 "revenue": float(v["revenue"].sum()), "revenue_per_visitor": _ratio(v["revenue"].sum(), n),
                 "recommended_revenue": float(v["recommended_revenue"].sum()),
                 "recommended_revenue_per_visitor": _ratio(v["recommended_revenue"].sum(), n)}
        arms.append(entry)

    control = by_arm[experiment.control.name]
    for k, entry in enumerate(arms[1:], start=1):
        v = by_arm[entry["arm"]]
        rng = np.random.default_rng([seed, k])
        entry["vs_control"] = {
            "conversion_rate": compare_proportions(int(control["converted"].sum()), len(control),
                                                   int(v["converted"].sum()), len(v)),
            "click_through": compare_proportions(int(control["clicked"].sum()), len(control),
                                                 int(v["clicked"].sum()), len(v)),
            "revenue_per_visitor": compare_means(control["revenue"].to_numpy(float), v["revenue"].to_numpy(float),
                                                 rng, resamples),
            "recommended_revenue_per_visitor": compare_means(control["recommended_revenue"].to_numpy(float),
                                                             v["recommended_revenue"].to_numpy(float), rng,
                                                             resamples),
        }

    srm = sample_ratio([len(by_arm[a.name]) for a in experiment.arms], [a.weight for a in experiment.arms])
    srm["observed"] = dict(zip(arm_names, srm.pop("observed"), strict=True))
    srm["expected"] = dict(zip(arm_names, srm.pop("expected"), strict=True))
    if srm["mismatch"]:
        warnings.append(f"sample-ratio mismatch (p = {srm['p_value']:.2g}): visitors per arm do not follow the "
                        "weights; find the cause (assignment, exposure logging, caching) before reading any uplift")
    return {"experiment": experiment.name, "status": experiment.status, "placements": list(experiment.placements),
            "start": experiment.start.isoformat(),
            "end": None if experiment.end is None else experiment.end.isoformat(),
            "attribution_days": experiment.attribution_days, "as_of": now.isoformat(),
            "control": experiment.control.name, "visitors": int(len(visits)), "arms": arms, "sample_ratio": srm,
            "warnings": warnings, "methods": {**METHODS, "bootstrap": {"resamples": resamples, "seed": seed}}}


def compare_proportions(x_control: int, n_control: int, x_arm: int, n_arm: int, z: float = Z95) -> dict:
    """Arm minus control for a rate: difference with Newcombe's hybrid score interval, relative uplift
    (arm / control - 1) with the Katz log interval, and the pooled z-test's two-sided p-value."""
    out = {"control": _ratio(x_control, n_control), "arm": _ratio(x_arm, n_arm), "difference": None, "ci95": None,
           "relative": None, "relative_ci95": None, "p_value": None}
    if n_control == 0 or n_arm == 0:
        return out
    p1, p2 = x_control / n_control, x_arm / n_arm
    l1, u1 = wilson(x_control, n_control, z)
    l2, u2 = wilson(x_arm, n_arm, z)
    d = p2 - p1
    out["difference"] = d
    out["ci95"] = [d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)]
    pooled = (x_control + x_arm) / (n_control + n_arm)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_arm))
    out["p_value"] = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(d) / se))
    if x_control > 0:
        out["relative"] = p2 / p1 - 1
        if x_arm > 0:
            log_se = math.sqrt(1 / x_arm - 1 / n_arm + 1 / x_control - 1 / n_control)
            out["relative_ci95"] = [math.exp(math.log(p2 / p1) + s * z * log_se) - 1 for s in (-1, 1)]
    return out


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion x / n."""
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def compare_means(control: np.ndarray, arm: np.ndarray, rng: np.random.Generator,
                  resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Arm minus control for a per-visitor mean (revenue): percentile bootstrap intervals of the difference and of
    the relative uplift (arm / control - 1), and the bootstrap's two-sided p-value."""
    out = {"control": _mean(control), "arm": _mean(arm), "difference": None, "ci95": None, "relative": None,
           "relative_ci95": None, "p_value": None}
    if not len(control) or not len(arm):
        return out
    out["difference"] = out["arm"] - out["control"]
    mc, ma = resampled_means(control, resamples, rng), resampled_means(arm, resamples, rng)
    diff = ma - mc
    out["ci95"] = [float(q) for q in np.percentile(diff, [2.5, 97.5])]
    beyond = min(int((diff <= 0).sum()), int((diff >= 0).sum()))
    out["p_value"] = min(1.0, 2 * (beyond + 1) / (resamples + 1))
    if out["control"] > 0:
        out["relative"] = out["arm"] / out["control"] - 1
        ok = mc > 0
        if ok.any():
            out["relative_ci95"] = [float(q) for q in np.percentile(ma[ok] / mc[ok] - 1, [2.5, 97.5])]
    return out


def resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator, chunk: int = 1 << 21) -> np.ndarray:
    """Means of `resamples` bootstrap resamples (n draws with replacement) of `values`.

    Drawn exactly, but without touching the zeros: of n draws, Binomial(n, k / n) land on the k non-zero values,
    each uniformly; so a resample costs its few purchases, not the n visitors (10,000 visitors x 2,000 resamples
    would be 20 million draws per arm)."""
    values = np.asarray(values, np.float64)
    n = len(values)
    nonzero = values[values != 0]
    k = len(nonzero)
    if k == 0:
        return np.zeros(resamples)
    hits = rng.binomial(n, k / n, size=resamples)
    sums = np.empty(resamples)
    ends = np.cumsum(hits)
    lo = 0
    while lo < resamples:
        start = ends[lo - 1] if lo else 0
        hi = min(resamples, max(lo + 1, int(np.searchsorted(ends, start + chunk, side="right"))))
        counts = hits[lo:hi]
        draws = nonzero[rng.integers(0, k, int(counts.sum()))]
        sums[lo:hi] = np.bincount(np.repeat(np.arange(hi - lo), counts), weights=draws, minlength=hi - lo)
        lo = hi
    return sums / n


def sample_ratio(observed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD) -> dict:
    """Chi-square test of visitors per arm against the weights: a tiny p-value means the split is broken."""
    observed = np.asarray(observed, np.float64)
    total = observed.sum()
    expected = total * np.asarray(weights, np.float64) / float(np.sum(weights))
    out = {"observed": [int(o) for o in observed], "expected": [float(e) for e in expected], "chi2": None,
           "df": len(observed) - 1, "p_value": None, "threshold": threshold, "mismatch": False}
    if total > 0:
        chi2, p = stats.chisquare(observed, expected)
        out["chi2"], out["p_value"] = float(chi2), float(p)
        out["mismatch"] = bool(p < threshold)
    return out


def _ratio(num: float, den: int) -> float | None:
    return float(num) / den if den else None


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
