"""The honest evaluator (DESIGN §5): split, fit, rank the full eligible catalog through `recommend`, measure.

    report = run_protocol(data, {"popularity": {}, "als": {"factors": 64}}, "temporal", seeds=(0, 1, 2))
    report = evaluate(split, {"als": fitted_als})           # models already fitted on split.train
    write_html(report, "report.html")

Every list is produced by `vendome.recommend.recommend` with the eligibility mask and the exclusions of the
serving rules, so offline numbers measure what the API would serve. A model that fails (to fit or to score) is
recorded with its error and the others go on. With several seeds the report holds means over seeds, their std,
and per-user metrics averaged across seeds, which feed the paired significance tests.

`report["per_user"]` holds numpy arrays (users, and per model per metric) for `significance.compare`;
`report.write_json` leaves it out unless asked.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from vendome.data import splits
from vendome.data.dataset import Dataset
from vendome.data.splits import Split
from vendome.evaluate import beyond
from vendome.evaluate.metrics import KS, hit_matrix, per_user_metrics, summarize
from vendome.evaluate.significance import significance_table
from vendome.models.base import Recommender
from vendome.recommend import Rules, eligible_items, exclusions, recommend
from vendome.rules import Guard, Policy, Request
from vendome.rules.audit import Auditor

log = logging.getLogger(__name__)

DEFINITIONS = {
    "hr@k": "1 if any test target is in the top k",
    "recall@k": "hits in the top k / number of test targets",
    "ndcg@k": "binary-relevance DCG@k / ideal DCG@k over min(|targets|, k)",
    "mrr@k": "1 / rank of the first hit in the top k (0 if none)",
    "map@k": "mean precision at the hit ranks / min(|targets|, k)",
    "coverage@k": "distinct recommended items / eligible catalog items",
    "gini@k": "Gini of slot counts over the eligible catalog (0 equal exposure, 1 one item everywhere)",
    "ild_category@k": "share of item pairs in a list with different categories",
    "ild_brand@k": "share of item pairs in a list with different brands",
    "ild_embedding@k": "mean cosine distance between items of a list (image features, else text)",
    "novelty@k": "mean -log2 of the share of training users who touched the item (add-one smoothed)",
    "price_tier_consistency@k": "share of recommended items within one price tier (category price quartile) "
                                "of a tier the user bought in training; users with training purchases",
    "guardrail_violations": "recommended slots out of stock or already bought, recomputed from catalog and history",
    "slices": "by training interactions of any behavior: cold 0, warm 1-4, heavy >= 5 and in the top 10% of users "
              "with training interactions, regular the rest (disjoint); new_items: test targets never seen in "
              "training, recall and NDCG restricted to them",
    "ranking": "full ranking over the eligible catalog through vendome.recommend.recommend",
}
SCALAR_SKIP = {"slices", "exposure", "guardrails"}


@dataclass
class _Run:
    """One fitted model (one seed) scored on the split."""

    scalars: dict[str, float | None]
    slices: dict
    exposure: dict
    guardrails: dict[str, int]
    per_user: dict[str, np.ndarray]
    eval_seconds: float


@dataclass
class Evaluator:
    """What every model's lists are judged against, computed once per split."""

    split: Split
    rules: Rules = field(default_factory=Rules)
    ks: tuple[int, ...] = KS
    beyond_k: int = 10
    progress: bool = False
    policy: Policy | None = None

    def __post_init__(self) -> None:
        self.ks = tuple(sorted(set(int(k) for k in self.ks)))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"ks must be positive cut-offs, got {self.ks}")
        if self.beyond_k not in self.ks:
            self.beyond_k = min(self.ks, key=lambda k: abs(k - self.beyond_k))
        train = self.split.train
        self.users = np.asarray(self.split.users, dtype=np.int64)
        self.n_targets = np.diff(self.split.test.indptr)[self.users]
        self.eligible = eligible_items(train, self.rules, now=self.split.info.get("cutoff"))
        self.exclude = exclusions(train, self.rules)
        self.tiers = beyond.price_tiers(train.products)
        self.popularity = beyond.item_popularity(train)
        self.category = beyond._attribute(train.products, "category").factorize()[0]
        self.brand = beyond._attribute(train.products, "brand").factorize()[0]
        self.modality = next((m for m in ("image", "text") if m in train.item_features), None)
        # a workspace's guardrail file: the lists are the ones the API would serve on the home page at the cutoff
        self.guard = Guard(self.policy, train) if self.policy is not None else None
        self.request = Request("home", now=self.split.info.get("cutoff"))
        if self.guard is not None:
            self.exclude = None          # the policy's repurchase rule (rebuy categories) replaces the blanket one

    def run(self, model: Recommender) -> _Run:
        """Rank the eligible catalog for every test user through `recommend`, then measure."""
        start = time.perf_counter()
        items, _ = recommend(model, self.users, k=max(self.ks), eligible=self.eligible, exclude=self.exclude,
                             progress=self.progress, guard=self.guard, request=self.request)
        hits = hit_matrix(items, self.split.test, self.users)
        per_user = per_user_metrics(hits, self.n_targets, self.ks)
        scalars: dict[str, float | None] = dict(summarize(per_user))
        train, k = self.split.train, self.beyond_k
        top = items[:, :k]
        scalars[f"coverage@{k}"] = beyond.coverage(top, self.eligible)
        scalars[f"gini@{k}"] = beyond.gini(top, self.eligible)
        scalars[f"ild_category@{k}"] = beyond.nanmean(beyond.intra_list_diversity(top, self.category))
        scalars[f"ild_brand@{k}"] = beyond.nanmean(beyond.intra_list_diversity(top, self.brand))
        scalars[f"ild_embedding@{k}"] = (beyond.nanmean(beyond.embedding_diversity(
            top, train.item_features[self.modality])) if self.modality else None)
        scalars[f"novelty@{k}"] = beyond.novelty(top, self.popularity)
        scalars[f"price_tier_consistency@{k}"] = beyond.nanmean(
            beyond.price_tier_consistency(top, self.users, train, self.tiers))
        guard = beyond.guardrail_violations(items, self.users, train, in_stock_only=self.rules.in_stock_only,
                                            exclude_purchased=self.rules.exclude_purchased and self.guard is None,
                                            now=self.split.info.get("cutoff") if self.rules.launched_only else None)
        if self.policy is not None:                 # every rule of the file, re-derived by the independent auditor
            auditor = Auditor(self.policy, train)
            guard["policy"] = sum(bool(auditor.violations(Request("home", int(u), (), self.request.now),
                                                          [int(i) for i in row if i >= 0]))
                                  for u, row in zip(self.users, top, strict=True))
            guard["total"] += guard["policy"]
        scalars["guardrail_violations"] = guard["total"]
        slices = beyond.slices(items, self.users, self.split.test, train, per_user, self.ks)
        exposure = beyond.exposure(top, self.users, train, self.tiers, self.eligible, per_user, f"ndcg@{k}")
        return _Run(scalars, slices, exposure, guard, per_user, time.perf_counter() - start)

    def aggregate(self, runs: Mapping[Any, _Run]) -> tuple[dict, dict[str, np.ndarray]]:
        """Report entry over seeds (means, std, per-seed NDCG) and per-user metrics averaged across seeds."""
        seq = list(runs.values())
        entry: dict = _mean_nested([r.scalars for r in seq])
        entry["eval_seconds"] = float(np.mean([r.eval_seconds for r in seq]))
        entry["guardrails"] = _mean_nested([r.guardrails for r in seq])
        entry["slices"] = _mean_nested([r.slices for r in seq])
        entry["exposure"] = _mean_nested([r.exposure for r in seq], missing=0.0)  # a share absent is 0
        main = f"ndcg@{self.beyond_k}"
        entry["seeds"] = {str(s): r.scalars[main] for s, r in runs.items()}
        entry["std"] = {m: _std([r.scalars[m] for r in seq]) for m in seq[0].scalars}
        per_user = {m: np.mean([r.per_user[m] for r in seq], axis=0) for m in seq[0].per_user}
        return entry, per_user

    def describe(self) -> dict:
        info = dict(self.split.info)
        info.update(protocol=self.split.protocol, n_test_users=int(len(self.users)),
                    n_test_targets=int(self.split.test.nnz), n_eligible_items=int(self.eligible.sum()))
        return info


# ---------------------------------------------------------------------------------------------- entry points
def evaluate(split: Split, models: Mapping[str, Recommender | Sequence[Recommender] | Mapping[Any, Recommender]],
             *, rules: Rules | None = None, ks: tuple[int, ...] = KS, progress: bool = True,
             seeds: Sequence[Any] | None = None, pairs: Sequence[tuple[str, ...]] | None = None,
             beyond_k: int = 10, dataset: dict | None = None, policy: Policy | None = None) -> dict:
    """Evaluate models already fitted on `split.train`; returns the report dict.

    A model value may be one Recommender, a list of the same model fitted with different seeds (labelled by
    `seeds`, default 0..n-1), or a dict seed -> Recommender. `pairs` names extra (a, b) or (a, b, metric)
    comparisons for the significance section. `dataset` replaces the dataset summary (run_protocol passes
    the full data's). `policy`: a guardrail file applied on top of `rules`, as the service applies it.
    """
    ev = Evaluator(split, rules or Rules(), ks, beyond_k, progress, policy)
    entries: dict[str, dict] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    n_seeds: dict[str, int] = {}
    for name, value in models.items():
        fitted = _seeded(value, seeds)
        params = _params(next(iter(fitted.values())))
        runs: dict[Any, _Run] = {}
        for seed, model in fitted.items():
            try:
                runs[seed] = ev.run(model)
            except Exception as exc:  # one broken model must not sink the comparison
                log.warning("evaluating %s (seed %s) failed: %s", name, seed, exc,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                entries[name] = {"error": f"{type(exc).__name__}: {exc}", "params": _jsonable(params)}
                break
        else:
            entries[name], per_user[name] = ev.aggregate(runs)
            entries[name].update(params=_jsonable(params), fit_seconds=None)  # fitted elsewhere: time unknown
            if "seed" in params:  # deterministic models need no seeds behind a claim
                n_seeds[name] = len(runs)
    return _report(ev, entries, per_user, n_seeds, pairs, dataset)


def run_protocol(data: Dataset, specs: Mapping[str, dict], protocol: str = "temporal", *,
                 seeds: Sequence[int] = (0,), test_days: float = 30, rules: Rules | None = None,
                 fit_kwargs: Mapping[str, dict] | None = None, progress: bool = True, ks: tuple[int, ...] = KS,
                 pairs: Sequence[tuple[str, ...]] | None = None,
                 make: Callable[..., Recommender] | None = None, policy: Policy | None = None) -> dict:
    """Split `data`, make, fit (timed) and evaluate every model of `specs`, and build the report.

    specs: report name -> hyper-parameters for `make_model`; the registry name defaults to the report name and can
    be given as the key "model" (e.g. {"als_128": {"model": "als", "factors": 128}}). Stochastic models (those
    with a `seed` parameter) are fitted once per seed, deterministic ones once. A model with a `validation`
    parameter (the hybrid) tunes on "loo" under the loo or given protocol and on "temporal" otherwise, unless the
    spec sets it. fit_kwargs: report name -> extra keyword arguments for that model's `fit`.
    `make` replaces `vendome.models.make_model` (the registry) when given.
    """
    if make is None:
        from vendome.models import make_model as make
    if not seeds:
        raise ValueError("run_protocol needs at least one seed")
    sp = splits.split(data, protocol, test_days=test_days)
    ev = Evaluator(sp, rules or Rules(), ks, progress=progress, policy=policy)
    validation = "loo" if protocol in ("loo", "given") else "temporal"
    entries: dict[str, dict] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    n_seeds: dict[str, int] = {}
    for name, spec in specs.items():
        params = dict(spec or {})
        registry_name = params.pop("model", name)
        runs: dict[Any, _Run] = {}
        fit_seconds: list[float] = []
        model: Recommender | None = None
        try:
            for seed in seeds:
                model = make(registry_name, **params)
                own = model.get_params()
                if "validation" in own and "validation" not in params:
                    model.set_params(validation=validation)
                stochastic = "seed" in own
                if stochastic:
                    model.set_params(seed=seed)
                start = time.perf_counter()
                model.fit(sp.train, **(fit_kwargs or {}).get(name, {}))
                fit_seconds.append(time.perf_counter() - start)
                runs[seed if stochastic else "deterministic"] = ev.run(model)
                if progress:
                    label = f"seed {seed}" if stochastic else "deterministic"
                    print(f"  [{len(entries) + 1}/{len(specs)}] {name} ({label}): fitted in {fit_seconds[-1]:.1f} s, "
                          f"evaluated in {time.perf_counter() - start - fit_seconds[-1]:.1f} s",
                          file=sys.stderr, flush=True)
                if not stochastic:
                    break
        except Exception as exc:  # record and go on: e.g. an image model on a catalog without images
            log.warning("model %s failed: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            entries[name] = {"error": f"{type(exc).__name__}: {exc}", "model": registry_name,
                             "params": _jsonable(model.get_params() if model is not None else params)}
            continue
        entry, per_user[name] = ev.aggregate(runs)
        entry.update(model=registry_name, params=_jsonable(model.get_params()),
                     fit_seconds=float(np.mean(fit_seconds)), deterministic=list(runs) == ["deterministic"])
        entries[name] = entry
        if not entry["deterministic"]:  # a deterministic model gives the same lists under every seed
            n_seeds[name] = len(runs)
    dataset = data.describe()
    return _report(ev, entries, per_user, n_seeds, pairs, dataset, seeds=list(seeds))


# ---------------------------------------------------------------------------------------------- helpers
def _report(ev: Evaluator, entries: dict, per_user: dict, n_seeds: dict, pairs, dataset: dict | None,
            seeds: list | None = None) -> dict:
    summary = {n: e for n, e in entries.items() if "error" not in e}
    main = f"ndcg@{ev.beyond_k}"
    described = dict(dataset) if dataset is not None else ev.split.train.describe()
    described["split"] = ev.describe()
    return {
        "protocol": ev.split.protocol,
        "dataset": described,
        "rules": asdict(ev.rules),
        "policy": ev.policy.model_dump(mode="json") if ev.policy is not None else None,
        "ks": list(ev.ks),
        "beyond_k": ev.beyond_k,
        "seeds": seeds,
        "definitions": DEFINITIONS,
        "models": entries,
        "significance": significance_table(per_user, summary, metric=main, pairs=list(pairs or []),
                                           n_seeds=n_seeds),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "per_user": {"users": ev.users, "models": per_user},
    }


def _seeded(value, seeds: Sequence[Any] | None) -> dict[Any, Recommender]:
    if isinstance(value, Recommender):
        return {seeds[0] if seeds else 0: value}
    if isinstance(value, Mapping):
        return dict(value)
    value = list(value)
    labels = list(seeds) if seeds is not None else list(range(len(value)))
    if len(labels) != len(value):
        raise ValueError(f"{len(value)} fitted models but {len(labels)} seed labels")
    return dict(zip(labels, value, strict=True))


def _params(model: Recommender) -> dict:
    try:
        return model.get_params()
    except Exception as exc:  # a half-built model still deserves a report line
        return {"unavailable": str(exc)}


def _jsonable(value: Any) -> Any:
    """Parameters as JSON values (numbers, strings, lists, dicts); anything else by its repr."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _std(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def _mean_nested(items: list, missing: float | None = None) -> Any:
    """Average numeric leaves of nested dicts across seeds.

    A key absent from some dicts counts as `missing` there (0.0 for shares); with None it is averaged over the
    dicts that have it.
    """
    first = next((v for v in items if v is not None), None)
    if isinstance(first, dict):
        dicts = [d for d in items if isinstance(d, dict)]
        keys = list(dict.fromkeys(k for d in dicts for k in d))
        out = {}
        for k in keys:
            values = [d.get(k, missing) for d in dicts if k in d or missing is not None]
            out[k] = _mean_nested(values, missing)
        return out
    if isinstance(first, bool | str) or first is None:
        return first
    if isinstance(first, int | float | np.number):
        vals = [float(v) for v in items if v is not None]
        mean = float(np.mean(vals)) if vals else None
        if isinstance(first, int | np.integer) and all(v == vals[0] for v in vals):
            return int(vals[0])
        return mean
    return first
