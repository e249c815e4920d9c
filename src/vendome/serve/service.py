"""Recommendations for a client, a product page and a cart, through the one recommend path, with the workspace's
guardrails, product facts and a reason on every piece; live events, opt-out and erasure.

The CLI's `recommend` and the HTTP API both use this class, so what a developer sees in the terminal is what the
site gets. Guardrails come from `WORKSPACE/rules.yaml` (the shipped default when there is none); `reload_rules`
swaps in a new file only when it parses and compiles against this catalog, so a bad file never replaces a good one.

Live events are committed to the store's event log before `record_events` returns, then added to the in-memory
history: the model re-reads the client's state (`Recommender.observe`: her journey for the sequence models, her
history row, her factor) and the guardrails her purchases and price band, so her next answer reflects them.
An opted-out client gets the non-personalised list (best sellers within the rules). Erasure removes her from the
store, the event log, the in-memory history, every stored version of every model, and the guardrails' state.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vendome.artifacts import activate_version, active_version, forget_in_stored_models, load_model, versions
from vendome.data.dataset import Dataset
from vendome.data.store import load_dataset
from vendome.models.base import Recommender
from vendome.recommend import Request, recommend_lists
from vendome.rules import Guard, Policy, load_policy
from vendome.rules.guard import N_TIERS
from vendome.serve.cache import ResponseCache
from vendome.serve.campaigns import Campaigns
from vendome.serve.events import EventLog, validate_events
from vendome.serve.experiments import ExperimentLog, active, assign, experiments_path, load_experiments
from vendome.serve.experiments import report as experiment_report
from vendome.serve.privacy import TOMBSTONE_PREFIX, Consent, erase_customer
from vendome.serve.replicas import Replica
from vendome.serve.schemas import CustomerRecommendations
from vendome.workspace import Workspace

PRODUCT_FIELDS = ("product_id", "title", "category", "subcategory", "brand", "collection", "price", "material",
                  "image_url")


def rules_path(ws: Workspace) -> Path:
    return ws.root / "rules.yaml"


def default_cache(ws: Workspace) -> ResponseCache:
    """Redis when VENDOME_REDIS_URL is set (namespace VENDOME_CACHE_NAMESPACE, default: one per workspace folder),
    else in-process. Either way a failing cache is a miss, never an error."""
    url = os.environ.get("VENDOME_REDIS_URL")
    if not url:
        return ResponseCache()
    namespace = os.environ.get("VENDOME_CACHE_NAMESPACE") or hashlib.blake2b(
        str(ws.root).encode(), digest_size=6).hexdigest()
    return ResponseCache.from_url(url, namespace=namespace)


class Recommendations:
    """Loads the workspace's data, rules and the active version of a model once; answers many requests."""

    def __init__(self, ws: Workspace, model: str = "hybrid", data: Dataset | None = None,
                 policy: Policy | None = None, cache: ResponseCache | None = None) -> None:
        from vendome.pipeline import training_data

        self.ws = ws
        self.model, self.meta = load_model(ws, model)
        self.data = data if data is not None else training_data(ws, progress=False)
        path = rules_path(ws)
        self.policy = policy or load_policy(path if path.exists() else None)
        self.guard = Guard(self.policy, self.data)
        self._lock = threading.RLock()
        self._cooccurrence: sp.csr_matrix | None = None
        self._facts: list[dict] | None = None
        self._stable_until: tuple[Guard, float] | None = None
        self.warmer = None                # a serve.warm.Warmer when one runs (`vendome serve` starts one)
        self._searcher = None             # composed search, built on the first search (vendome.search)
        self._search_lock = threading.Lock()
        self._default_guard: Guard | None = None      # the shipped rules, for the merchandiser's preview
        self.campaigns = Campaigns(self)
        self.events = EventLog(ws, customers=self.data.customers["customer_id"],
                               products=self.data.products["product_id"])
        self.consent = Consent(ws)
        self._opted_out = self.consent.opted_out()  # kept true by this process's writes and, with replicas, by
        #                                             Replica.catch_up before each request
        self.cache = cache or default_cache(ws)
        trained = [p.name for p in ws.models.iterdir() if p.is_dir()] if ws.models.exists() else []
        self.experiments = load_experiments(experiments_path(ws), models=trained)
        self.exposures = ExperimentLog(ws)
        self.arm_models: dict[str, tuple[Recommender, dict]] = {}     # other models serving an experiment's arm
        fresh = self._events_the_model_missed()
        if len(fresh):
            self.model.observe(self.data, fresh)
        # API replicas over one PostgreSQL store follow each other's changes (vendome.serve.replicas)
        self.replica: Replica | None = Replica(self) if ws.postgres else None

    def _events_the_model_missed(self, meta: dict | None = None) -> np.ndarray:
        """Clients with events logged after the model's fit (a restart after live traffic): their state is re-read
        once at start-up."""
        fitted = (meta if meta is not None else self.meta).get("fitted_at")
        log = self.events.since(fitted) if fitted else self.events.interactions()
        return np.unique([self.data.user_index[c] for c in log["customer_id"] if c in self.data.user_index])

    # ------------------------------------------------------------------------------------ rules
    def reload_rules(self, path: Path | None = None) -> Policy:
        """Compile the rules file (default: the workspace's) and swap it in; on any problem (PolicyError) the rules
        in force stay as they were."""
        path = path or rules_path(self.ws)
        policy = load_policy(path if path.exists() else None)
        guard = Guard(policy, self.data)
        with self._lock:
            self.policy, self.guard = policy, guard
            self._invalidate_all()
        return policy

    # ------------------------------------------------------------------------------------ model versions
    def model_versions(self) -> list[dict]:
        """Every trained model of the workspace with its versions, the active one, and what each was fitted on."""
        out = []
        for folder in sorted(p for p in self.ws.models.iterdir() if p.is_dir()) if self.ws.models.exists() else []:
            rows = []
            for v in versions(self.ws, folder.name):
                meta = json.loads((folder / v / "meta.json").read_text())
                rows.append({"version": v, "fitted_at": meta.get("fitted_at"),
                             "fit_seconds": meta.get("fit_seconds"), "params": meta.get("params", {})})
            out.append({"name": folder.name, "active": active_version(self.ws, folder.name),
                        "serving": folder.name == self.model.name, "versions": rows})
        return out

    def activate(self, name: str, version: str) -> dict:
        """Point `name` at `version`; when it is the served model, swap it in (it then re-reads the clients with
        events since its fit). FileNotFoundError for an unknown version."""
        activate_version(self.ws, name, version)
        if name == self.model.name:
            self._serve_version(version)
        return {"name": name, "active": version, "serving": name == self.model.name}

    def follow_activation(self) -> str | None:
        """Serve the version the served model's ACTIVE pointer names, when another replica moved it; returns the
        version swapped in, or None."""
        version = active_version(self.ws, self.model.name)
        if version is None or version == self.meta.get("version"):
            return None
        self._serve_version(version)
        return version

    def _serve_version(self, version: str) -> None:
        """Swap in a version of the served model (it re-reads the clients with events since its fit)."""
        model, meta = load_model(self.ws, self.model.name, version)
        with self._lock:
            self.model, self.meta = model, meta
            fresh = self._events_the_model_missed()
            if len(fresh):
                self.model.observe(self.data, fresh)
            self._invalidate_all()

    def rollback(self, name: str) -> dict:
        """Activate the version before the active one."""
        have, current = versions(self.ws, name), active_version(self.ws, name)
        if current not in have or have.index(current) == 0:
            raise ValueError(f"model {name!r} has no version before {current!r} to roll back to")
        return self.activate(name, have[have.index(current) - 1])

    # ------------------------------------------------------------------------------------ facts
    def product(self, i: int) -> dict:
        """The card facts of a piece (a fresh dict), from a table built once: reading a pandas row per card cost
        1.5 ms, most of a request."""
        if self._facts is None:
            frame = self.data.products
            cols = [f for f in PRODUCT_FIELDS if f in frame.columns]
            rows = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
            for row, tier in zip(rows, self.guard.tiers, strict=True):
                row["price"] = float(row.get("price") or 0.0)
                url = row.get("image_url")
                if url and not str(url).startswith(("http://", "https://")):    # a file of this machine
                    row["image_url"] = f"/v1/products/{quote(str(row['product_id']), safe='')}/image"
                row["price_tier"] = int(tier) if 0 <= tier < N_TIERS else None
            self._facts = rows
        return dict(self._facts[int(i)])

    def item_of(self, product_id: str) -> int:
        i = self.data.item_index.get(str(product_id))
        if i is None:
            raise KeyError(f"unknown product {product_id!r}")
        return i

    def user_of(self, customer_id: str) -> int:
        """Her dense index; KeyError for an unknown or erased id. Every request about a client starts here, so
        this is where a replica first catches up on the other replicas' events, opt-outs and erasures."""
        if self.replica is not None:
            self.replica.catch_up()
        u = self.data.user_index.get(str(customer_id))
        if u is None or str(customer_id).startswith(TOMBSTONE_PREFIX):   # an erased client's placeholder row
            raise KeyError(f"unknown customer {customer_id!r}")
        return u

    # ------------------------------------------------------------------------------------ clienteling
    def search_customers(self, query: str = "", limit: int = 20) -> list[dict]:
        """Clients whose id, city, country or segment contains `query` (case-insensitive), the most recently
        active first; erased clients' placeholders never appear."""
        q = query.strip().lower()
        frame = self.data.customers
        cols = [c for c in ("customer_id", "location_city", "location_country", "customer_segment") if c in frame]
        text = frame[cols].astype(str).agg(" ".join, axis=1).str.lower()
        hit = text.str.contains(q, regex=False) if q else np.ones(len(frame), bool)
        hit &= ~frame["customer_id"].astype(str).str.startswith(TOMBSTONE_PREFIX)
        rows = np.flatnonzero(np.asarray(hit))
        last = self._last_seen()
        rows = rows[np.argsort(-last[rows], kind="stable")][:limit]
        return [self._customer_summary(int(u), last[u]) for u in rows]

    def _last_seen(self) -> np.ndarray:
        inter = self.data.interactions
        last = np.full(self.data.n_users, -np.inf)
        if len(inter):
            g = inter.groupby("user")["timestamp"].max()
            last[g.index.to_numpy()] = g.to_numpy(dtype=float)
        return last

    def _customer_summary(self, u: int, last: float) -> dict:
        row = self.data.customers.iloc[u]
        return {"customer_id": str(row["customer_id"]), "segment": _text(row.get("customer_segment")),
                "city": _text(row.get("location_city")), "country": _text(row.get("location_country")),
                "last_seen": _iso(last)}

    def customer_profile(self, customer_id: str) -> dict:
        """What a sales associate reads before greeting her: segment, tastes (what she said and what she did),
        the price tiers she shops, consent; KeyError for an unknown id. Pseudonymised fields are not shown."""
        u = self.user_of(customer_id)
        row = self.data.customers.iloc[u]
        inter = self.data.interactions
        mine = inter[inter["user"] == u]
        products = self.data.products
        weights = mine["weight"].to_numpy(dtype=float) if len(mine) else np.zeros(0)

        def top(column: str, n: int = 3) -> list[str]:
            if column not in products or not len(mine):
                return []
            values = products[column].to_numpy()[mine["item"].to_numpy()]
            s = pd.Series(weights, index=pd.Index(values).astype(str)).groupby(level=0).sum()
            s = s[[str(v).strip().lower() not in ("", "nan", "none") for v in s.index]]
            return s.sort_values(ascending=False).index[:n].tolist()

        band = None
        if self.guard.band is not None and self.guard.band[0][u] >= 0:
            band = {"lowest": int(max(self.guard.band[0][u], 0)), "highest": int(min(self.guard.band[1][u],
                                                                                       N_TIERS - 1))}
        counts = mine["behavior"].value_counts().to_dict() if len(mine) else {}
        marketing = row.get("marketing_consent")
        motivations = self.motivations(u)
        return {**self._customer_summary(u, self._last_seen()[u]),
                "gender": _text(row.get("gender")), "age_group": _text(row.get("age_group")),
                "stated": {"categories": _split(row.get("preferred_categories")),
                           "materials": _split(row.get("preferred_materials")),
                           "price_range": _text(row.get("preferred_price_range"))},
                "observed": {"categories": top("category"), "subcategories": top("subcategory"),
                             "materials": top("material"), "collections": top("collection")},
                "price_band": band,
                "behaviors": {str(k): int(v) for k, v in counts.items()},
                "motivations": motivations,
                "lifetime_value": _number(row.get("lifetime_value")), "orders": _number(row.get("total_orders")),
                "consent": {"personalised": str(customer_id) not in self._opted_out,
                            "marketing": None if marketing is None or pd.isna(marketing)
                            else str(marketing).strip().lower() not in ("false", "0", "no", "")}}

    def motivations(self, u: int) -> dict:
        """What she told us, read from her reviews and her associates' notes by the rule lexicon (deterministic,
        instant; an LLM pass is a batch job, `vendome motivations extract`): labels by how often they come up."""
        from collections import Counter

        from vendome.motivations.rules import RuleExtractor

        texts = self.data.texts
        mine = texts.loc[texts["user"].to_numpy() == u, "text"] if len(texts) else []
        loves, avoids = Counter(), Counter()
        rules = RuleExtractor()
        for text in mine:
            positive, negative = rules.extract(str(text))
            loves.update(positive)
            avoids.update(negative)
        return {"loves": [x for x, _ in loves.most_common(6)], "avoids": [x for x, _ in avoids.most_common(4)],
                "texts": len(mine), "backend": rules.name}

    def journey(self, customer_id: str, limit: int = 50) -> dict:
        """Her last `limit` events in time order (oldest first), each with the piece's card facts."""
        u = self.user_of(customer_id)
        inter = self.data.interactions
        mine = inter[inter["user"] == u].sort_values("timestamp", kind="stable").tail(limit)
        steps = [{"behavior": str(b), "at": _iso(float(t)), **self.product(int(i))}
                 for i, b, t in zip(mine["item"], mine["behavior"], mine["timestamp"], strict=True)]
        return {"customer_id": str(customer_id), "events": int((inter["user"] == u).sum()), "steps": steps}

    def image_path(self, product_id: str) -> Path | str:
        """The piece's picture: a local file of the workspace's export, or its remote URL (never fetched here);
        KeyError for an unknown product, LookupError when it has none."""
        i = self.item_of(product_id)
        url = self.data.products["image_url"].iloc[i] if "image_url" in self.data.products else None
        url = None if url is None or pd.isna(url) else url
        if not url:
            raise LookupError(f"product {product_id!r} has no image")
        if str(url).startswith(("http://", "https://")):
            return str(url)
        path = Path(str(url))
        if not path.is_file():
            raise LookupError(f"the image of product {product_id!r} is not on this machine")
        return path

    # ------------------------------------------------------------------------------------ placements
    def for_customer(self, customer_id: str, k: int = 10, placement: str = "home") -> dict:
        """Top-k for a known customer ("for you" on the home page, or an e-mail); KeyError for an unknown id."""
        return json.loads(self.for_customer_json(customer_id, k, placement))

    def for_customer_json(self, customer_id: str, k: int = 10, placement: str = "home") -> str:
        """`for_customer` as the JSON text the API sends: a cache hit is sent as stored, never decoded.
        A running experiment on the placement picks the model by her arm (deterministic hash) and logs the
        exposure, on a cache hit too: every display is an exposure."""
        u = self.user_of(customer_id)
        if str(customer_id) in self._opted_out:
            key = self._customer_key(str(customer_id), k, placement, None, None)
            return self._cached_text(key, lambda: self._not_personalised(customer_id, k, placement))
        exp = active(self.experiments, placement)
        arm = assign(exp, str(customer_id)) if exp is not None else None
        model, meta = self._arm_model(exp.arm(arm).model) if exp is not None else (self.model, self.meta)
        key = self._customer_key(str(customer_id), k, placement, exp, arm)
        text = self._cached_text(key, lambda: self._for_customer(u, customer_id, k, placement, model, meta))
        if exp is None:
            return text
        answer = json.loads(text)
        self.exposures.record(exp.name, arm, str(customer_id), placement, [c["product_id"] for c in answer["items"]])
        return json.dumps({**answer, "experiment": {"name": exp.name, "arm": arm}}, separators=(",", ":"))

    def ready_for_customer_json(self, customer_id: str, k: int = 10, placement: str = "home") -> str | None:
        """Her stored answer when it can be sent at once (an in-process cache hit, no experiment exposure to log),
        else None: the API's event loop sends it without handing the request to a worker thread. KeyError for an
        unknown id, as `for_customer`. A replica answers in a worker thread: catching up queries the store, which
        must not block the event loop."""
        if self.replica is not None:
            return None
        self.user_of(customer_id)
        if self.cache.store.name != "memory" or active(self.experiments, placement) is not None:
            return None
        return self.cache.get_text(self._customer_key(str(customer_id), k, placement, None, None))

    def _customer_key(self, customer_id: str, k: int, placement: str, exp, arm: str | None) -> str:
        if customer_id in self._opted_out:       # her best-sellers list: no experiment, nothing of hers
            return self.cache.key("customer", customer_id, k=k, placement=placement, personalised=False)
        return self.cache.key("customer", customer_id, k=k, placement=placement,
                              experiment=exp.name if exp else None, arm=arm)

    def _for_customer(self, u: int, customer_id: str, k: int, placement: str, model: Recommender,
                      meta: dict) -> dict:
        req = Request(placement, u, (), time.time())
        with self._lock:
            items, scores, labels = recommend_lists(model, np.array([u]), k, guard=self.guard, request=req)
            return self._customer_answer(u, customer_id, placement, model, meta, items[0], scores[0], labels[0])

    def _customer_answer(self, u: int, customer_id: str, placement: str, model: Recommender, meta: dict,
                         items: np.ndarray, scores: np.ndarray, labels: list[str | None], reasons=None) -> dict:
        """The answer for her list (`items` may end in -1 slots); `reasons`: the model's, when already explained."""
        keep = items >= 0
        labels = [x for x, ok in zip(labels, keep, strict=True) if ok]
        items, scores = items[keep], scores[keep]
        reasons = [r.to_dict() for r in (reasons if reasons is not None else model.explain(u, items))]
        return _as_sent({"customer_id": str(customer_id), "placement": placement, "model": model.name,
                         "version": meta.get("version"), "personalised": True,
                         "items": self._cards(items, scores, reasons, labels)})

    def preview(self, customer_id: str, placement: str = "home", k: int = 10, policy: Policy | None = None
                ) -> dict:
        """Her list under `policy` (default: the rules in force; a draft file to try before saving it) and under
        the shipped default rules (stock, launch, what she bought: the house's rules off), side by side. Computed
        fresh: nothing cached, no exposure logged, nothing changed."""
        u = self.user_of(customer_id)
        house = Guard(policy, self.data) if policy is not None else self.guard
        if self._default_guard is None or self._default_guard.data is not self.data:
            self._default_guard = Guard(load_policy(None), self.data)
        out = {}
        for name, guard in (("with_rules", house), ("without_rules", self._default_guard)):
            req = Request(placement, u, (), time.time())
            with self._lock:
                items, scores, labels = recommend_lists(self.model, np.array([u]), k, guard=guard, request=req)
                out[name] = self._customer_answer(u, customer_id, placement, self.model, self.meta, items[0],
                                                  scores[0], labels[0])
        return {"customer_id": str(customer_id), "placement": placement, **out}

    def warm(self, placement: str = "home", k: int = 10, limit: int | None = None, batch: int = 16,
             progress: bool = False, should_stop=lambda: False, customers: list[str] | None = None) -> int:
        """Compute and cache the "for you" list of every client (the most recently active first, at most
        `limit`), skipping those already cached; returns how many were computed.

        The home page is the busiest placement and its answer changes only when her events, the model, the rules
        or a dated rule do, all of which invalidate or expire the entry exactly; so it can be computed ahead, in
        batches (the model scores a batch at once), and a request is then a cache read. The lock is held per batch
        of `batch` clients only, so live requests wait a few milliseconds at most. `should_stop` is asked between
        batches (the warmer restarts when everything was invalidated meanwhile)."""
        if customers is not None:                # these clients only (the ones an event just changed)
            order = [c for c in map(str, customers) if c in self.data.user_index
                     and not c.startswith(TOMBSTONE_PREFIX) and c not in self._opted_out]
        else:
            order = self._clients_by_recency()
        order = order[:limit] if limit is not None else order
        exp = active(self.experiments, placement)
        done = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(order), desc=f"warm {placement}", unit="client")
        for start in range(0, len(order), batch):
            if should_stop():
                break
            groups: dict[str, list[tuple[str, str, int]]] = {}
            for c in order[start:start + batch]:
                arm = assign(exp, c) if exp is not None else None
                key = self._customer_key(c, k, placement, exp, arm)
                if not self.cache.holds(key):
                    name = exp.arm(arm).model if exp is not None else self.model.name
                    groups.setdefault(name, []).append((c, key, self.data.user_index[c]))
            for name, rows in groups.items():
                model, meta = self._arm_model(name)
                users = np.array([u for _, _, u in rows])
                with self._lock:
                    items, scores, labels = recommend_lists(model, users, k, guard=self.guard,
                                                            request=Request(placement, None, (), time.time()))
                    why = model.explain_many(users, [row[row >= 0] for row in items])
                    answers = [self._customer_answer(u, c, placement, model, meta, items[r], scores[r], labels[r],
                                                     why[r]) for r, (c, _, u) in enumerate(rows)]
                ttl = self._expiry()
                for (_, key, _), answer in zip(rows, answers, strict=True):
                    self.cache.set(key, answer, ttl)
                done += len(rows)
            if bar is not None:
                bar.update(min(batch, len(order) - start))
        if bar is not None:
            bar.close()
        return done

    def _clients_by_recency(self) -> list[str]:
        """Customer ids with a personalised list (not erased, not opted out), the latest event first."""
        inter = self.data.interactions
        last = inter.groupby("user")["timestamp"].max() if len(inter) else pd.Series(dtype=float)
        ids = self.data.customers["customer_id"].astype(str).to_numpy()
        when = np.full(len(ids), -np.inf)
        when[last.index.to_numpy()] = last.to_numpy(dtype=float)
        order = np.argsort(-when, kind="stable")
        return [c for c in ids[order] if not c.startswith(TOMBSTONE_PREFIX) and c not in self._opted_out]

    def _arm_model(self, name: str) -> tuple[Recommender, dict]:
        """The served model, or another trained model an experiment's arm names (its active version, loaded once
        and kept up to date with live events like the served one)."""
        if name == self.model.name:
            return self.model, self.meta
        with self._lock:
            if name not in self.arm_models:
                model, meta = load_model(self.ws, name)
                fresh = self._events_the_model_missed(meta)
                if len(fresh):
                    model.observe(self.data, fresh)
                self.arm_models[name] = (model, meta)
            return self.arm_models[name]

    def experiment_report(self, name: str) -> dict:
        """Uplift with confidence intervals of an experiment's arms against its control (KeyError: unknown)."""
        self.experiments.experiment(name)
        return experiment_report(self.ws, name, experiments=self.experiments)

    def reload_experiments(self) -> list[str]:
        trained = [p.name for p in self.ws.models.iterdir() if p.is_dir()] if self.ws.models.exists() else []
        config = load_experiments(experiments_path(self.ws), models=trained)
        with self._lock:
            self.experiments = config
            self._invalidate_all()
        return [e.name for e in config.experiments]

    def similar(self, product_id: str, k: int = 10, modality: str = "image") -> dict:
        """The product page: pieces that look (or read) most alike, from the catalog embeddings, within the rules
        (the anchor's line boundaries included)."""
        key = self.cache.key("similar", None, product=str(product_id), k=k, modality=modality)
        return self._cached(key, lambda: self._similar(product_id, k, modality))

    def _similar(self, product_id: str, k: int, modality: str) -> dict:
        i = self.item_of(product_id)
        mods = [m for m in (modality, "text", "image") if m in self.data.item_features]
        if not mods:
            raise ValueError("the catalog has no image or text embeddings to compare products with")
        feats = np.asarray(self.data.item_features[mods[0]], np.float32)
        feats = feats - feats.mean(0)                      # centred: encoders put every product in one cone
        norms = np.linalg.norm(feats, axis=1) + 1e-9
        sims = (feats @ feats[i]) / (norms * norms[i])
        items, scores, labels = self._select(sims, Request("product", None, (i,), time.time()), k)
        title = self.product(i).get("title", product_id)
        what = "look" if mods[0] == "image" else "description"
        reasons = [{"code": f"similar_{mods[0]}", "text": f"similar in {what} to {title}",
                    "signals": {f"{mods[0]}_similarity": float(s)}} for s in scores]
        return {"product_id": str(product_id), "placement": "product", "signal": mods[0],
                "items": self._cards(items, scores, reasons, labels)}

    # ------------------------------------------------------------------------------------ composed search
    def searcher(self):
        """The workspace's composed search (`vendome.search`), loaded (or fitted and saved, about a minute at the
        demo catalog) on first use, bound to this service's rules and model."""
        with self._search_lock:
            if self._searcher is None:
                from vendome.features.llm import llm_from_env
                from vendome.search.engine import search_engine
                from vendome.search.searcher import Searcher

                engine = search_engine(self.ws, data=self.data, progress=False)
                self._searcher = Searcher(engine, self.data, guard=self.guard, model=self.model, llm=llm_from_env())
            return self._searcher

    def composed_search(self, text: str = "", anchor: str | None = None, customer_id: str | None = None,
                        k: int = 10, session_id: str | None = None, planner: bool = False,
                        reject: list[str] | tuple = ()) -> dict:
        """"Like this, but ...": pieces that keep the anchor and apply the change, within every hard constraint of
        the words and the house's rules; her taste re-ranks unless she opted out of personalisation."""
        if anchor is not None:
            self.item_of(anchor)
        if customer_id is not None:
            self.user_of(customer_id)
        searcher = self.searcher()
        with self._lock:
            searcher.guard, searcher.model = self.guard, self.model          # the rules and model in force now
            personal = customer_id if customer_id is not None and str(customer_id) not in self._opted_out else None
            out = searcher.search(text, anchor=anchor, customer=personal, k=k, session_id=session_id,
                                  planner=planner, reject=reject)
        items = [self.item_of(r["product_id"]) for r in out["results"]]
        reasons = [{"code": "composed_search", "text": r["reason"], "signals": {"score": float(r["score"])}}
                   for r in out["results"]]
        return {"text": text, "anchor": anchor, "customer_id": customer_id, "personalised": personal is not None,
                "delta": out.get("delta", ""), "constraints": out["constraints"],
                "planner": out.get("planner"), "session_id": out.get("session_id"), "answer": out.get("answer"),
                "items": self._cards(items, [r["score"] for r in out["results"]], reasons, [None] * len(items))}

    def complete_the_look(self, product_ids: list[str], k: int = 10, customer_id: str | None = None) -> dict:
        """The cart: pieces of other subcategories that clients bought with these ones (co-purchase counts), or,
        for a known client, her model's scores; never a look-alike of what the cart holds."""
        key = self.cache.key("cart", None if customer_id is None else str(customer_id),
                             products=sorted(map(str, product_ids)), k=k)
        return self._cached(key, lambda: self._complete_the_look(product_ids, k, customer_id))

    def _complete_the_look(self, product_ids: list[str], k: int, customer_id: str | None) -> dict:
        cart = tuple(self.item_of(p) for p in product_ids)
        if not cart:
            raise ValueError("complete the look needs at least one product in the cart")
        u = self.user_of(customer_id) if customer_id is not None else None
        co = np.asarray(self.cooccurrence()[list(cart)].sum(0)).ravel().astype(np.float32)
        if u is not None:
            scores = self.model.score(np.array([u]))[0].astype(np.float32)
            scores = scores + 1e-3 * co / max(float(co.max()), 1.0)    # ties broken by what is bought together
        else:
            scores = co + 1e-6 * self._popularity()
        items, out, labels = self._select(scores, Request("cart", u, cart, time.time()), k)
        reasons = []
        if u is not None:
            reasons = [r.to_dict() for r in self.model.explain(u, items)]
        else:
            for i in items:
                with_ = [c for c in cart if self.cooccurrence()[c, i] > 0]
                text = (f"clients who bought {self.product(with_[0]).get('title')} bought this" if with_
                        else "a best seller to complete the look")
                reasons.append({"code": "bought_together" if with_ else "bestseller", "text": text,
                                "signals": {"co_purchases": float(co[i])}})
        return {"cart": list(product_ids), "placement": "cart", "customer_id": customer_id,
                "items": self._cards(items, out, reasons, labels)}

    def _live_models(self) -> list[Recommender]:
        return [self.model, *(m for m, _ in self.arm_models.values())]

    def _not_personalised(self, customer_id: str, k: int, placement: str) -> dict:
        """Best sellers within the placement's rules, nothing read from her history (she opted out)."""
        pop = self._popularity()
        items, scores, labels = self._select(pop, Request(placement, None, (), time.time()), k)
        reasons = [{"code": "not_personalised", "text": "a best seller (personalisation is off for this client)",
                    "signals": {"popularity": float(pop[i])}} for i in items]
        return _as_sent({"customer_id": str(customer_id), "placement": placement, "model": "pop (opted out)",
                         "version": None, "personalised": False,
                         "items": self._cards(items, scores, reasons, labels)})

    # ------------------------------------------------------------------------------------ events and privacy
    def record_events(self, events: list[dict]) -> list[str]:
        """Commit the events to the store (all or nothing; InvalidEventsError names each bad one), then fold them
        into the live history; returns their ids. Once this returns, the next answer for these clients sees them."""
        if self.replica is not None:
            self.replica.catch_up()       # her history here must hold the other replicas' events before hers
        with self._lock:
            batch = validate_events(events, customers=self.events.known_customers,
                                    products=self.events.known_products)
            ids = self.events.append(batch)
            if self.replica is not None:
                self.replica.appended(ids)
            self.fold_in(pd.DataFrame([asdict(e) for e in batch]))
        return ids

    def fold_in(self, logged: pd.DataFrame) -> None:
        """Add committed events (this process's, or another replica's) to the live history: the models re-read
        those clients' state, the guardrails their purchases, and their cached answers are dropped."""
        with self._lock:
            self.data = self.data.add_events(logged)
            users = np.unique([self.data.user_index[str(c)] for c in logged["customer_id"]])
            for model in self._live_models():
                model.observe(self.data, users)
            self.guard.observe(self.data, users)
            self._cooccurrence = None
            for c in set(logged["customer_id"]):
                self.cache.invalidate_customer(str(c))
        if self.warmer is not None:
            self.warmer.refresh(set(logged["customer_id"]))

    def refresh_consent(self) -> None:
        """Re-read who opted out (another replica recorded a choice); their cached answers are dropped."""
        now = self.consent.opted_out()
        with self._lock:
            changed, self._opted_out = now ^ self._opted_out, now
        for c in changed:
            self.cache.invalidate_customer(c)

    def refresh_after_erasure(self) -> None:
        """Another replica erased clients: reload the store (their rows are tombstones now) and make the live
        models forget them; the stored versions were rewritten by the replica that erased them."""
        with self._lock:
            before = self.data.customers["customer_id"].astype(str).to_numpy()
            features = self.data.item_features
            data = load_dataset(self.ws)
            data.item_features = features
            after = data.customers["customer_id"].astype(str).to_numpy()
            n = min(len(before), len(after))
            gone = np.flatnonzero((before[:n] != after[:n]) & np.char.startswith(after[:n].astype(str),
                                                                                   TOMBSTONE_PREFIX))
            if len(gone):
                for model in self._live_models():
                    model.forget(gone.astype(np.int64))
            for c in before[gone]:
                self.events.known_customers.discard(str(c))
                self._opted_out.discard(str(c))
                self.cache.invalidate_customer(str(c))
            self.data = data
            self._facts = None
            self.guard = Guard(self.policy, self.data)
            self._cooccurrence = None
            self._invalidate_all()

    def opt_out(self, customer_id: str, opted_out: bool = True) -> dict:
        self.user_of(customer_id)
        (self.consent.opt_out if opted_out else self.consent.opt_in)(str(customer_id))
        (self._opted_out.add if opted_out else self._opted_out.discard)(str(customer_id))
        self.cache.invalidate_customer(str(customer_id))
        return {"customer_id": str(customer_id), "opted_out": opted_out}

    def erase(self, customer_id: str) -> dict:
        """Right to be forgotten: the store (her rows, her events, a tombstone in her customers row), every stored
        model version, the live model, the in-memory history and the guardrails' per-client state."""
        with self._lock:
            u = self.data.user_index.get(str(customer_id))
            report = erase_customer(self.ws, str(customer_id), models=self._live_models(),
                                    user_index=self.data.user_index)
            rewritten = forget_in_stored_models(self.ws, np.array([u])) if u is not None else {}
            features = self.data.item_features
            self.data = load_dataset(self.ws)
            self.data.item_features = features
            self.events.known_customers.discard(str(customer_id))
            self._opted_out.discard(str(customer_id))
            self._facts = None
            self.guard = Guard(self.policy, self.data)
            self._cooccurrence = None
            self.cache.invalidate_customer(str(customer_id))
            self._invalidate_all()            # lists of others were built with her in the co-purchases
            campaigns = self.campaigns.forget(str(customer_id))
        return {**report.to_dict(), "model_versions_rewritten": rewritten, "campaign_files_rewritten": campaigns}

    # ------------------------------------------------------------------------------------ helpers
    def _invalidate_all(self) -> None:
        self.cache.invalidate_all()
        if self.warmer is not None:
            self.warmer.trigger()

    def _cached(self, key: str, compute) -> dict:
        return json.loads(self._cached_text(key, compute))

    def _cached_text(self, key: str, compute) -> str:
        """The cached answer's JSON text, or a fresh answer stored for the next request. An entry lives until the
        first dated rule (a launch, a season's or promotion's day) could change it (`Guard.stable_until`, capped by
        the cache's TTL); events, opt-outs, erasures, rules and model changes invalidate it at once."""
        hit = self.cache.get_text(key)
        if hit is not None:
            return hit
        answer = compute()
        return self.cache.set(key, answer, self._expiry()) or json.dumps(answer, separators=(",", ":"))

    def _expiry(self) -> float:
        """Seconds from now until a dated rule may change a list (the launch times are scanned once per change)."""
        now = time.time()
        if self._stable_until is None or self._stable_until[0] is not self.guard or now >= self._stable_until[1]:
            self._stable_until = (self.guard, self.guard.stable_until(now))
        return self._stable_until[1] - now

    def _select(self, scores: np.ndarray, req: Request, k: int):
        guard = self.guard
        allowed = guard.allowed(None if req.user is None else np.array([req.user]), req)[0]
        return guard.select(scores, allowed & np.isfinite(scores), req, k)

    def _cards(self, items, scores, reasons: list[dict], labels: list[str | None]) -> list[dict]:
        cards = []
        for i, s, r, promo in zip(items, scores, reasons, labels, strict=True):
            if promo is not None:
                r = {**r, "code": "promotion", "promotion": promo,
                     "text": f"{r['text']} (featured: {promo})"}
            cards.append({**self.product(i), "score": float(s), "reason": r})
        return cards

    def cooccurrence(self) -> sp.csr_matrix:
        """Item x item counts of clients who bought both (built once, on first use)."""
        if self._cooccurrence is None:
            x = self.data.target_matrix().astype(np.float32)
            co = (x.T @ x).tocsr()
            co.setdiag(0)
            co.eliminate_zeros()
            self._cooccurrence = co
        return self._cooccurrence

    def _popularity(self) -> np.ndarray:
        return np.asarray(self.data.matrix().sum(0)).ravel().astype(np.float32)


def _as_sent(answer: dict) -> dict:
    """The answer exactly as the API's schema sends it (defaults filled in), so the cached text a hit sends
    without decoding is what a freshly computed answer would have been."""
    return CustomerRecommendations.model_validate(answer).model_dump(mode="json")


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value) \
        else str(value)


def _split(value) -> list[str]:
    text = _text(value)
    return [v.strip() for v in text.split("|") if v.strip()] if text else []


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def _iso(ts: float) -> str | None:
    if not np.isfinite(ts):
        return None
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()
