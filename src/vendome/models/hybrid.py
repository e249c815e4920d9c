"""The weighted hybrid (the classic jewelry engine's strategy 4), with its weights tuned on validation.

    score(u, i) = sum_m w_m * norm_u(s_m(u, :))[i],   w on the simplex (w_m >= 0, sum_m w_m = 1)

Components: visual content, collaborative (ALS unless `collaborative` names another registry model), popularity
in the client's demographic segment, recent popularity, structured-attribute content (collection, material,
stone, tier, ...), and optionally text content. A component that cannot run on the data (no images, no
attribute columns) is dropped and the others are tuned without it.

Per-user normalisation before blending, because the raw scales have nothing in common (cosines in [-1, 1],
segment shares around 1e-3, ALS dot products, purchase counts):
- "zscore" (default): (s - mean_u) / std_u over the catalog. Cheap (no sort) and it keeps the shape of each
  component's belief: a component that singles out three items gives them large z, one with a flat opinion gives
  everything about 0, so it barely moves the blend for that client. That is the behaviour we want from a blend.
- "rank": catalog percentile. Robust to heavy tails but it erases confidence (a flat component still spreads its
  items evenly over [0, 1]) and costs a sort per row; kept as an option and for ablations.

Two blenders, both learned on validation data that `fit` carves out of its own training data (so it never sees the
caller's test); fixed `weights` skip learning:
- "stacked" (default): component weights that depend on the item's context (age, popularity, recency) plus the
  context itself as evidence, a logistic regression on several past validation windows; see `stacking.py`. On the
  demo boutique it is the blend that beats ALS; the simplex weights below do not transfer from one month to the next.
- "linear": one weight per component on the simplex.

The linear blender fits the components on the validation-train part, searches the simplex for the weights
that maximise mean NDCG@k on validation users through the serving rules (`top_k`, purchases excluded, out-of-stock
masked), then refits the components on all of the data. The search scores each validation user's candidate pool
(the union of every component's top `candidates` items), evaluates the simplex vertices first, so the blend is
never worse on validation than the best component alone, then Dirichlet samples, then local moves of weight
between pairs of components with a shrinking step.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from vendome.data.dataset import Dataset
from vendome.data.splits import split
from vendome.evaluate.metrics import per_user_metrics
from vendome.models.base import Reason, Recommender
from vendome.models.stacking import CONTEXT_REASONS, SHARE_COLUMNS, ContextFeatures, Pool, StackedBlender
from vendome.models.stacking import ITEM_FEATURES as ITEM_CONTEXT
from vendome.recommend import Rules, eligible_items, exclusions, top_k

LABELS = {"visual": "content-visual", "demographic": "pop-segment", "recent": "pop-recent", "text": "content-text",
          "attributes": "content-attributes"}
NORMALIZATIONS = ("zscore", "rank")
VALIDATIONS = ("temporal", "loo")
BLENDERS = ("stacked", "linear")
DAY = 86_400
AUTO_COLLABORATIVE = ("als", "ease", "itemknn")
MEMO_USERS = 16          # component scores kept for the last call of at most this many clients (serving)


class Hybrid(Recommender):
    """Weighted blend of per-user-normalised component scores; weights tuned on a validation split by default.

    weights:            None to learn, or a dict label -> weight (a fixed linear blend, e.g. for ablations;
                        renormalised to sum 1).
    blender:            "stacked" (context-dependent weights, several validation windows) or "linear" (simplex).
    windows:            validation windows of the stacked blender (temporal: consecutive `validation_days` periods
                        back from the end of the data; loo: always one).
    collaborative:      registry name of the collaborative component ("als", "bpr", "ease", "itemknn"), or "auto":
                        the best of AUTO_COLLABORATIVE on the validation split alone (EASE wins on sparse review
                        data such as Amazon, ALS on click streams such as the demo boutique).
    use_text:           add text content as a component.
    use_attributes:     add structured-attribute content (`content-attributes`) as a component.
    component_params:   label -> parameters of that component, e.g. {"collaborative": {"factors": 32}}.
    validation:         "temporal" or "loo"; validation_days: the temporal validation window.
    k, candidates:      NDCG cut-off; per-component candidate pool size for the search.
    samples, refine_steps: Dirichlet samples and local refinement rounds; seed drives both and the components.
    max_validation_users: subsample of validation users (seeded) to bound tuning time.
    """

    name = "hybrid"

    def __init__(self, weights: dict[str, float] | None = None, blender: str = "stacked", windows: int = 5,
                 collaborative: str = "auto", use_text: bool = False,
                 use_attributes: bool = True, component_params: dict[str, dict[str, Any]] | None = None,
                 normalization: str = "zscore",
                 validation: str = "temporal", validation_days: float = 30.0, k: int = 10, candidates: int = 100,
                 samples: int = 200, refine_steps: int = 30, max_validation_users: int | None = 5000,
                 seed: int = 0, threads: int = 1) -> None:
        self.weights = weights
        self.blender = blender
        self.windows = windows
        self.collaborative = collaborative
        self.use_text = use_text
        self.use_attributes = use_attributes
        self.component_params = component_params
        self.normalization = normalization
        self.validation = validation
        self.validation_days = validation_days
        self.k = k
        self.candidates = candidates
        self.samples = samples
        self.refine_steps = refine_steps
        self.max_validation_users = max_validation_users
        self.seed = seed
        self.threads = threads

    # -------------------------------------------------------------------------------------------- fitting
    def component_specs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """label -> (registry name, parameters), with the hybrid's seed and threads passed on where accepted."""
        from vendome.models import model_class

        collaborative = getattr(self, "collaborative_", None) or self.collaborative
        if collaborative == "auto":
            collaborative = AUTO_COLLABORATIVE[0]
        names = {"visual": LABELS["visual"], "collaborative": collaborative,
                 "demographic": LABELS["demographic"], "recent": LABELS["recent"]}
        if self.use_text:
            names["text"] = LABELS["text"]
        if self.use_attributes:
            names["attributes"] = LABELS["attributes"]
        extra = dict(self.component_params or {})
        unknown = sorted(set(extra) - set(names))
        if unknown:
            raise ValueError(f"hybrid: component_params names unknown component(s) {', '.join(unknown)}; "
                             f"components: {', '.join(names)}")
        if self.collaborative == self.name:
            raise ValueError("hybrid: the collaborative component cannot be the hybrid itself")
        specs = {}
        for label, model_name in names.items():
            params = dict(extra.get(label, {}))
            accepted = model_class(model_name)._param_names()
            if label == "collaborative" and self.collaborative == "auto":  # the params of whichever model won
                params = {k: v for k, v in params.items() if k in accepted}
            for shared in ("seed", "threads"):
                if shared in accepted:
                    params.setdefault(shared, getattr(self, shared))
            specs[label] = (model_name, params)
        return specs

    def fit(self, data: Dataset) -> Self:
        self._memo = None
        if self.validation not in VALIDATIONS:  # "given" would tune on the format's own test split
            raise ValueError(f"hybrid: validation must be one of {', '.join(VALIDATIONS)}, got {self.validation!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"hybrid: normalization must be one of {', '.join(NORMALIZATIONS)}, "
                             f"got {self.normalization!r}")
        if self.blender not in BLENDERS:
            raise ValueError(f"hybrid: blender must be one of {', '.join(BLENDERS)}, got {self.blender!r}")
        self.collaborative_, prefit = None, {}
        if self.collaborative == "auto":
            self.collaborative_, prefit = self._choose_collaborative(data)
        specs = self.component_specs()
        self.stack_ = None
        if self.weights is None and self.blender == "stacked":
            return self._fit_stacked(data, specs, prefit)
        if self.weights is not None:
            weights = self._fixed_weights(specs)
            self.tuning_ = {"mode": "fixed", "dropped": {}}
        else:
            weights = self._tune(data, specs, prefit)
        active = {label: specs[label] for label, w in weights.items() if w > 0}
        self.components_, dropped = _fit_components(data, active)
        if dropped:  # a component that cannot run on all of the data: the others are renormalised
            self.tuning_.setdefault("dropped", {}).update(dropped)
        kept = {label: weights[label] for label in self.components_}
        if not kept:
            raise ValueError(f"hybrid: no component could be fitted ({self.tuning_['dropped']})")
        total = sum(kept.values())
        self.weights_ = {label: float(w / total) for label, w in kept.items()}
        self.n_users_ = data.n_users
        self.n_items_ = data.n_items
        return self

    def _fit_stacked(self, data: Dataset, specs: dict[str, tuple[str, dict]], prefit: dict[str, Recommender]) -> Self:
        """Learn the stacked blender on the validation windows, then refit the components and context on all data."""
        pools, windows, dropped = [], [], {}
        labels = list(specs)
        for w, (train, vsplit, now) in enumerate(self._windows(data)):
            todo = {k: v for k, v in specs.items() if k in labels and not (w == 0 and k in prefit)}
            fitted, lost = _fit_components(train, todo)
            if w == 0:
                fitted.update({k: m for k, m in prefit.items() if k in labels})
            dropped.update(lost)
            labels = [label for label in labels if label in fitted]
            if not labels:
                raise ValueError(f"hybrid: no component could be fitted ({dropped})")
            models = [fitted[label] for label in labels]
            users = vsplit.users
            if self.max_validation_users and len(users) > self.max_validation_users:
                users = np.sort(np.random.default_rng(self.seed + w).choice(users, self.max_validation_users,
                                                                            replace=False))
            eligible = eligible_items(data, Rules(), now=now)
            exclude = exclusions(train, Rules())

            def blocked(batch, exclude=exclude, eligible=eligible):
                return (np.asarray(exclude[batch].todense()) > 0) | ~eligible[None, :]

            def z_scores(batch, models=models):
                return [normalize(m.score(batch), self.normalization) for m in models]

            pool = Pool.build(z_scores, ContextFeatures.fit(train, now=now), users, vsplit.test, blocked=blocked,
                              size=self.candidates)
            pools.append((labels, pool))
            windows.append({"cutoff": int(now), "n_users": int(len(users)), "n_targets": int(pool.n_targets.sum()),
                            "candidates_per_user": round(len(pool.hits) / max(len(users), 1), 1)})
        if not pools:
            raise ValueError(f"hybrid: the {self.validation!r} validation split of {data.name!r} has no user with a "
                             "target event to validate on; use validation='loo', a longer validation_days, or "
                             "fixed weights")
        pools = [Pool(p.z[:, [ran.index(label) for label in labels]], p.context, p.hits, p.group, p.n_targets)
                 for ran, p in pools]  # keep the components that ran on every window, in one order
        stack = StackedBlender(k=self.k, seed=self.seed).fit(pools)
        self.components_, lost = _fit_components(data, {label: specs[label] for label in labels})
        if lost:
            raise ValueError(f"hybrid: component(s) {', '.join(lost)} ran on the validation windows but not on all "
                             f"of the data ({lost})")
        self.stack_, self.labels_ = stack, labels
        self.context_ = ContextFeatures.fit(data)
        self.attribute_values_ = {col: data.products[col].fillna("").astype(str).to_numpy()
                                  for col in SHARE_COLUMNS if col in data.products}
        eff = stack.effective_weights(self.context_.item).mean(axis=1)
        self.weights_ = {label: float(eff[m]) for m, label in enumerate(labels)}
        single = {label: float(np.concatenate([p.ndcg(p.z[:, m], self.k) for p in pools]).mean())
                  for m, label in enumerate(labels)}
        names = self.context_.names
        self.tuning_ = {
            "mode": "stacked", "metric": f"ndcg@{self.k}", "normalization": self.normalization,
            "validation": {"protocol": self.validation, "windows": windows, "cutoff": windows[0]["cutoff"]},
            "single": single, "blend": stack.cv_ndcg_[stack.C_], "C": stack.C_,
            "cv_ndcg": {str(c): v for c, v in stack.cv_ndcg_.items()},
            "coefficients": {
                "component": {label: float(stack.w_[m]) for m, label in enumerate(labels)},
                "component_x_item": {label: dict(zip(ITEM_CONTEXT, map(float, stack.v_[m]), strict=True))
                                     for m, label in enumerate(labels)},
                "context": dict(zip(names, map(float, stack.c_), strict=True)),
            },
            "mean_effective_weights": self.weights_, "dropped": dropped, "seed": self.seed,
            "collaborative": specs["collaborative"][0],
            "collaborative_candidates": getattr(self, "collaborative_scores_", None),
        }
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        return self

    def _windows(self, data: Dataset):
        """(train, validation split, cutoff) of each validation window, most recent first."""
        if self.validation == "loo":
            vsplit = split(data, "loo")
            if len(vsplit.users):
                yield vsplit.train, vsplit, float(vsplit.train.interactions["timestamp"].max())
            return
        inter = data.interactions
        end = int(inter["timestamp"].max())
        for w in range(max(self.windows, 1)):
            base = data if w == 0 else data.with_interactions(
                inter[inter["timestamp"].to_numpy() < end - w * self.validation_days * DAY])
            cutoff = int(end - (w + 1) * self.validation_days * DAY)
            if len(base.interactions) == 0 or (base.interactions["timestamp"] < cutoff).sum() == 0:
                return
            vsplit = split(base, "temporal", cutoff=cutoff)
            if len(vsplit.users) == 0:
                continue
            yield vsplit.train, vsplit, float(cutoff)

    def _choose_collaborative(self, data: Dataset) -> tuple[str, dict[str, Recommender]]:
        """The collaborative model with the best validation NDCG on its own, and that model fitted on the
        validation-train part (so the weight search does not fit it again)."""
        vsplit = split(data, self.validation, test_days=self.validation_days)
        if len(vsplit.users) == 0:
            return AUTO_COLLABORATIVE[0], {}
        from vendome.models import model_class

        given = dict((self.component_params or {}).get("collaborative", {}))
        specs = {}
        for name in AUTO_COLLABORATIVE:
            accepted = model_class(name)._param_names()
            params = {k: v for k, v in given.items() if k in accepted}
            params.update({k: getattr(self, k) for k in ("seed", "threads") if k in accepted})
            specs[name] = (name, params)
        fitted, _ = _fit_components(vsplit.train, specs)
        names = list(fitted)
        pool, _, _ = self._validation_pool(data, vsplit, [fitted[n] for n in names])
        self.collaborative_scores_ = {n: pool.ndcg(np.eye(len(names))[m], self.k) for m, n in enumerate(names)}
        best = max(self.collaborative_scores_, key=self.collaborative_scores_.get)
        return best, {"collaborative": fitted[best]}

    def _validation_pool(self, data: Dataset, vsplit, models: list[Recommender]):
        """Candidate pool of the validation users (a seeded subsample past `max_validation_users`), scored the way
        the serving path ranks (purchases excluded, out-of-stock masked); returns (pool, users, rng)."""
        rng = np.random.default_rng(self.seed)
        users = vsplit.users
        if self.max_validation_users and len(users) > self.max_validation_users:
            users = np.sort(rng.choice(users, self.max_validation_users, replace=False))
        eligible = eligible_items(data, Rules(), now=vsplit.info.get("cutoff"))
        pool = CandidatePool.build(models, users, vsplit.test, exclude=exclusions(vsplit.train, Rules()),
                                   eligible=eligible, normalization=self.normalization,
                                   size=self.candidates)
        return pool, users, rng

    def _fixed_weights(self, specs: dict[str, tuple[str, dict]]) -> dict[str, float]:
        unknown = sorted(set(self.weights) - set(specs))
        if unknown:
            raise ValueError(f"hybrid: weights name unknown component(s) {', '.join(unknown)}; "
                             f"components: {', '.join(specs)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"hybrid: weights must be >= 0 with a positive sum, got {self.weights}")
        return {label: float(self.weights.get(label, 0.0)) for label in specs}

    def _tune(self, data: Dataset, specs: dict[str, tuple[str, dict]],
              prefit: dict[str, Recommender] | None = None) -> dict[str, float]:
        vsplit = split(data, self.validation, test_days=self.validation_days)
        if len(vsplit.users) == 0:
            raise ValueError(f"hybrid: the {self.validation!r} validation split of {data.name!r} has no user with a "
                             f"target event to validate on ({vsplit.info}); use validation='loo', a longer "
                             "validation_days, or fixed weights")
        prefit = prefit or {}
        fitted, dropped = _fit_components(vsplit.train, {k: v for k, v in specs.items() if k not in prefit})
        fitted = {label: prefit.get(label) or fitted.get(label) for label in specs
                  if label in prefit or label in fitted}
        if not fitted:
            raise ValueError(f"hybrid: no component could be fitted ({dropped})")
        labels = list(fitted)
        pool, users, rng = self._validation_pool(data, vsplit, [fitted[label] for label in labels])
        best, best_value, evaluations = search_simplex(lambda w: pool.ndcg(w, self.k), len(labels), rng,
                                                       self.samples, self.refine_steps)
        single = {label: pool.ndcg(np.eye(len(labels))[m], self.k) for m, label in enumerate(labels)}
        self.tuning_ = {
            "mode": "tuned",
            "metric": f"ndcg@{self.k}",
            "normalization": self.normalization,
            "validation": {"protocol": vsplit.protocol, "n_users": int(len(users)), **vsplit.info},
            "single": single,
            "blend": float(best_value),
            "weights": {label: float(w) for label, w in zip(labels, best, strict=True)},
            "evaluations": evaluations,
            "dropped": dropped,
            "seed": self.seed,
            "collaborative": specs["collaborative"][0],
            "collaborative_candidates": getattr(self, "collaborative_scores_", None),
        }
        return {label: float(best[m]) for m, label in enumerate(labels)} | {label: 0.0 for label in dropped}

    # -------------------------------------------------------------------------------------------- scoring
    def component_scores(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user-normalised score matrix of each weighted component (read-only arrays).

        The serving path scores a few clients, then explains their lists, which needs the same matrices: the last
        call for at most MEMO_USERS clients is kept, so the explanation does not score the catalog again (half
        the cost of a list). `observe`, `forget` and `fit` drop it, and it is never pickled."""
        self._check_fitted("weights_")
        users = np.asarray(users, dtype=np.int64)
        memo = getattr(self, "_memo", None)
        if memo is not None and memo[0] == users.tobytes():
            return memo[1]
        z = {label: normalize(model.score(users), self.normalization) for label, model in self.components_.items()}
        for block in z.values():
            block.flags.writeable = False
        self._memo = (users.tobytes(), z) if len(users) <= MEMO_USERS else None
        return z

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted("weights_")
        if getattr(self, "stack_", None) is not None:
            users = np.asarray(users, dtype=np.int64)
            z = list(self.component_scores(users).values())
            return self.stack_.score(z, self.context_, users)
        out = None
        for label, z in self.component_scores(users).items():
            part = z * self.weights_[label]
            out = part if out is None else out + part
        return out.astype(np.float32, copy=False)

    def forget(self, users: np.ndarray) -> Self:
        """Every component forgets them, and so does the stacked blender's per-user context."""
        self._memo = None
        users = self._users_to_forget(users)
        for model in self.components_.values():
            model.forget(users)
        if getattr(self, "context_", None) is not None:
            self.context_.forget(users)
        return self

    def observe(self, data: Dataset, users: np.ndarray) -> Self:
        """Every component observes them, and the stacked blender's per-user context is rebuilt from `data`; the
        blend's weights stay as learned."""
        self._memo = None
        users = self._users_to_observe(data, users)
        for model in self.components_.values():
            model.observe(data, users)
        if getattr(self, "context_", None) is not None:
            self.context_.observe(data, users)
        return self

    def explain(self, user: int, items: np.ndarray) -> list[Reason]:
        """The reason of the component that contributed most, with every component's share of the blend."""
        return self.explain_many(np.array([user]), [np.asarray(items)])[0]

    def explain_many(self, users: np.ndarray, items: list[np.ndarray]) -> list[list[Reason]]:
        """`explain` for a batch, scoring every component once for all of them."""
        users = np.asarray(users, dtype=np.int64)
        items = [np.asarray(i, dtype=np.int64) for i in items]
        z = self.component_scores(users)
        if getattr(self, "stack_", None) is not None:
            blocks = [np.asarray(block) for _, block in self.context_.blocks(users)]
            return [self._explain_stacked(int(u), i, {m: s[r] for m, s in z.items()}, [b[r] for b in blocks])
                    for r, (u, i) in enumerate(zip(users, items, strict=True))]
        return [self._explain_linear(int(u), i, {m: s[r] for m, s in z.items()})
                for r, (u, i) in enumerate(zip(users, items, strict=True))]

    def _explain_linear(self, user: int, items: np.ndarray, z: dict[str, np.ndarray]) -> list[Reason]:
        parts = {label: self.weights_[label] * row[items] for label, row in z.items()}
        labels = list(parts)
        contrib = np.stack([parts[label] for label in labels], axis=1)  # (items, components)
        positive = np.maximum(contrib, 0.0)
        totals = positive.sum(1, keepdims=True)
        weights = np.array([self.weights_[label] for label in labels])
        shares = np.where(totals > 0, positive / np.where(totals > 0, totals, 1.0), weights[None, :])
        tops = [labels[int(np.argmax(shares[k]))] for k in range(len(items))]
        inner = self._inner_reasons(user, items, tops)
        reasons = []
        for k in range(len(items)):
            order = np.argsort(-shares[k])
            mix = ", ".join(f"{labels[m]} {shares[k, m]:.0%}" for m in order if shares[k, m] >= 0.005)
            signals = {f"{label}_share": float(shares[k, m]) for m, label in enumerate(labels)}
            signals.update({f"{label}_weight": float(self.weights_[label]) for label in labels})
            reasons.append(Reason(inner[k].code, f"{inner[k].text} (blend: {mix})", signals))
        return reasons

    def _inner_reasons(self, user: int, items: np.ndarray, tops: list[str]) -> list[Reason]:
        """The reason of each item's top component, one `explain` call per component (not per item)."""
        out: list[Reason | None] = [None] * len(items)
        for label in dict.fromkeys(tops):
            rows = [k for k, t in enumerate(tops) if t == label]
            if label in self.components_:
                for k, r in zip(rows, self.components_[label].explain(user, items[rows]), strict=True):
                    out[k] = r
            else:
                for k in rows:
                    out[k] = Reason(*self._context_reason(label, int(items[k])))
        return out

    def contributions(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Stacked blend: each component's and each context feature's additive part of the score of `items`
        (components z_m * effective weight; context c_g * (value - mean over the training candidates))."""
        users = np.array([user])
        z = {label: s[0] for label, s in self.component_scores(users).items()}
        return self._contributions(np.asarray(items), z, [np.asarray(b)[0] for _, b in self.context_.blocks(users)])

    def _contributions(self, items: np.ndarray, z: dict[str, np.ndarray], blocks: list[np.ndarray]
                       ) -> dict[str, np.ndarray]:
        stack = self.stack_
        eff = stack.effective_weights(self.context_.item[items])
        parts = {label: row[items] * eff[m] for m, (label, row) in enumerate(z.items())}
        for g, name in enumerate(self.context_.names):
            parts[name] = stack.c_[g] * (blocks[g][items] - stack.context_mean_[g])
        return parts

    def _explain_stacked(self, user: int, items: np.ndarray, z: dict[str, np.ndarray], blocks: list[np.ndarray]
                         ) -> list[Reason]:
        parts = self._contributions(items, z, blocks)
        labels = list(parts)
        contrib = np.stack([parts[label] for label in labels], axis=1)
        positive = np.maximum(contrib, 0.0)
        totals = positive.sum(1, keepdims=True)
        shares = np.divide(positive, totals, out=np.zeros_like(positive), where=totals > 0)
        orders = [np.argsort(-shares[k]) for k in range(len(items))]
        inner = self._inner_reasons(user, items, [labels[int(o[0])] for o in orders])
        eff = self.stack_.effective_weights(self.context_.item[items])          # (components, items)
        reasons = []
        for k in range(len(items)):
            order = orders[k]
            mix = ", ".join(f"{labels[m]} {shares[k, m]:.0%}" for m in order[:4] if shares[k, m] >= 0.05)
            signals = {f"{label}_share": float(shares[k, m]) for m, label in enumerate(labels)}
            signals.update({f"{label}_weight": float(w) for label, w in zip(self.labels_, eff[:, k], strict=True)})
            reasons.append(Reason(inner[k].code, f"{inner[k].text} (blend: {mix})", signals))
        return reasons

    def _context_reason(self, feature: str, item: int) -> tuple[str, str]:
        if feature in CONTEXT_REASONS:
            code, text = CONTEXT_REASONS[feature]
            return code, text[0].upper() + text[1:]
        if feature.startswith("taste_"):
            col = feature.removeprefix("taste_")
            values = self.attribute_values_.get(col)
            value = str(values[item]).strip() if values is not None and values[item] is not None else ""
            label = col.replace("_", " ")
            return f"taste_{col}", (f"In {value}, a {label} you often choose" if value
                                    else f"A {label} you often choose")
        return "blend", "Ranked by the blend"


# ------------------------------------------------------------------------------------------------ helpers
def normalize(scores: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Per-row normalisation of a score matrix (float32): z-score or catalog percentile rank."""
    s = np.asarray(scores, dtype=np.float32)
    if method == "zscore":
        mean = s.mean(axis=1, keepdims=True)
        std = s.std(axis=1, keepdims=True)
        return np.divide(s - mean, std, out=np.zeros_like(s), where=std > 1e-12)
    if method == "rank":
        order = np.argsort(s, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(s.shape[1])[None, :], axis=1)
        return (ranks / max(s.shape[1] - 1, 1)).astype(np.float32)
    raise ValueError(f"unknown normalization {method!r}; expected one of {', '.join(NORMALIZATIONS)}")


def _fit_components(data: Dataset, specs: dict[str, tuple[str, dict]]) -> tuple[dict[str, Recommender], dict]:
    """Fit each component; one that cannot run on this data (ValueError: e.g. no image features) is dropped."""
    from vendome.models import make_model

    fitted, dropped = {}, {}
    for label, (model_name, params) in specs.items():
        try:
            fitted[label] = make_model(model_name, **params).fit(data)
        except ValueError as err:
            warnings.warn(f"hybrid: dropping component {label!r} ({model_name}): {err}", RuntimeWarning, stacklevel=3)
            dropped[label] = f"{model_name}: {err}"
    return fitted, dropped


class CandidatePool:
    """Validation users' normalised component scores on a candidate pool, so each weight vector costs little.

    features: (users, M, components) normalised scores at the candidates; valid: (users, M) real, distinct,
    recommendable candidates; hits: (users, M) candidate is a validation target; n_targets: per user.
    """

    def __init__(self, features: np.ndarray, valid: np.ndarray, hits: np.ndarray, n_targets: np.ndarray) -> None:
        self.features, self.valid, self.hits, self.n_targets = features, valid, hits, n_targets

    @classmethod
    def build(cls, models: list[Recommender], users: np.ndarray, test: sp.csr_matrix, *, exclude: sp.csr_matrix,
              eligible: np.ndarray, normalization: str, size: int, batch_size: int = 1024) -> CandidatePool:
        feats, valids, hits = [], [], []
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            blocked = np.asarray(exclude[batch].todense()) > 0
            blocked |= ~eligible[None, :]
            norms = [normalize(m.score(batch), normalization) for m in models]
            cand = np.concatenate([top_k(np.where(blocked, -np.inf, z), size)[0] for z in norms], axis=1)
            cand.sort(axis=1)
            valid = np.ones(cand.shape, dtype=bool)
            valid[:, 1:] = cand[:, 1:] != cand[:, :-1]
            valid &= ~np.take_along_axis(blocked, cand, axis=1)
            feats.append(np.stack([np.take_along_axis(z, cand, axis=1) for z in norms], axis=2))
            valids.append(valid)
            rows = test[batch]
            hits.append(np.asarray(rows[np.arange(len(batch))[:, None], cand].todense()) > 0)
        n_targets = np.diff(test[users].indptr)
        return cls(np.concatenate(feats), np.concatenate(valids), np.concatenate(hits), n_targets)

    def ndcg(self, weights: np.ndarray, k: int = 10) -> float:
        """Mean NDCG@k of the blend with these weights (the serving top-k, restricted to the pool)."""
        blend = self.features @ np.asarray(weights, dtype=np.float32)
        blend[~self.valid] = -np.inf
        pos, vals = top_k(blend, k)
        h = np.take_along_axis(self.hits, pos, axis=1) & np.isfinite(vals)
        if h.shape[1] < k:  # a pool smaller than k: the empty slots are misses
            h = np.pad(h, ((0, 0), (0, k - h.shape[1])))
        return float(per_user_metrics(h, self.n_targets, ks=(k,))[f"ndcg@{k}"].mean())


def search_simplex(objective, m: int, rng: np.random.Generator, samples: int,
                   refine_steps: int) -> tuple[np.ndarray, float, int]:
    """Maximise `objective` over the m-simplex: vertices, centre, Dirichlet samples, then pairwise local moves.

    Ties keep the earlier point, so with equal scores the simplest weighting (a single component) wins.
    """
    trials = [np.eye(m)[i] for i in range(m)] + [np.full(m, 1.0 / m)]
    trials += list(rng.dirichlet(np.ones(m), size=samples)) if m > 1 else []
    best, best_value = trials[0], -np.inf
    for w in trials:
        value = objective(w)
        if value > best_value + 1e-12:
            best, best_value = w, value
    evaluations, step = len(trials), 0.2
    for _ in range(refine_steps if m > 1 else 0):
        improved = False
        for i in range(m):
            for j in range(m):
                if i == j or best[i] <= 0:
                    continue
                w = best.copy()
                delta = min(step, w[i])
                w[i] -= delta
                w[j] += delta
                value = objective(w)
                evaluations += 1
                if value > best_value + 1e-12:
                    best, best_value, improved = w, value, True
        if not improved:
            step /= 2
            if step < 0.01:
                break
    return best, best_value, evaluations
