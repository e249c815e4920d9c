"""Composed search, the fast path: words (and a piece to start from) in, pieces that keep it and apply the change out.

    engine = ComposedSearch().fit(data)                          # data: a Dataset with item_features (image, text)
    engine.search("like this, but in rose gold, no diamonds, under 5k", anchor="P00042", k=10)
    -> {"results": [{"product_id", "score", "reason"}, ...], "constraints": [...], "delta": "in rose gold", ...}
    engine = search_engine(ws)                                   # the workspace's engine: loaded, or fitted and saved

One request is: parse the words against the catalog's vocabulary (hard constraints: negations, price ranges, the
anchor's subcategory; soft: the attributes asked for); compose the anchor's vector with the words' vector (the
gated-FiLM composer); retrieve candidates with faiss among the pieces every hard constraint allows (the filter runs
inside the search, never after it); re-rank them with a linear blend of the composed similarity, the words'
similarity, the look kept from the anchor, the soft attribute matches and, for a known client, her recommender's
affinity, with weights tuned on held-out catalog changes. Nothing on this path calls an LLM.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.dataset import Dataset
from vendome.features.runtime import torch_threads
from vendome.search.composer import FiLMComposer, make_composer
from vendome.search.constraints import AttributeGuard
from vendome.search.index import VectorIndex, normalise
from vendome.search.joint import LocalCLIP, MiniCLIP
from vendome.search.pairs import CHANGED, EVAL_TEMPLATES, TRAIN_TEMPLATES, Change, attribute_changes, phrase
from vendome.search.query import Constraint, ParsedQuery, Vocabulary, parse

FORMAT = 2                    # of the saved engine: a saved engine of another format is fitted again
FEATURES = ("composed", "words", "look", "soft", "personal")
DEFAULT_WEIGHTS = {"composed": 1.0, "words": 0.0, "look": 0.0, "soft": 0.0, "personal": 0.0}
LOOK_TAU = 0.1                # temperature of the look-weighted targets the composer trains on
PERSONAL_WEIGHT = 0.05        # a client's affinity only breaks near-ties; it is not tuned (no labelled sessions)
FACT_COLUMNS = ("title", "category", "subcategory", "brand", "collection", "material", "stone_type", "color",
                "price", "stock_status")


class ComposedSearch:
    """The fitted pieces of composed search over one catalog (see the module docstring)."""

    def __init__(self, composer: str = "film", candidates: int = 400, index: str = "auto", val_share: float = 0.15,
                 epochs: int = 40, tune: bool = True, space: str = "mini-clip", seed: int = 0,
                 progress: bool = True) -> None:
        """space: "mini-clip" (the adapter learned on the catalog) or the folder of a local CLIP/SigLIP checkpoint,
        whose own towers computed `data.item_features` (see `search_engine(ws, clip=...)`)."""
        self.composer, self.candidates, self.index, self.val_share = composer, candidates, index, val_share
        self.epochs, self.tune, self.space, self.seed, self.progress = epochs, tune, space, seed, progress

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self, data: Dataset, train_rows: np.ndarray | None = None, val_rows: np.ndarray | None = None
            ) -> ComposedSearch:
        """Learn the joint space, the composer and the re-ranking weights from the catalog; build the index.

        train_rows: items whose changes may train the composer (default: all but a random `val_share` of them);
        val_rows: anchors of the changes for early stopping and the re-ranking weights (default: the rest). A
        benchmark passes its own split, so its test anchors take part in neither.
        """
        t0 = time.perf_counter()
        products = data.products.reset_index(drop=True)
        image, text, image_missing, text_missing = _modalities(data)
        space = MiniCLIP(progress=self.progress, seed=self.seed) if self.space == "mini-clip" else LocalCLIP(self.space)
        self.space_ = space.fit(image, text, image_missing, text_missing)
        self.items_ = self.space_.item_vectors(image, text, image_missing, text_missing)
        self.look_dim_ = self.space_.look_basis_.shape[1]
        self._set_catalog(products)
        rng = np.random.default_rng(self.seed)
        if train_rows is None:
            train_rows = np.flatnonzero(rng.random(len(products)) >= self.val_share)
        train_rows = np.asarray(train_rows)
        if val_rows is None:
            val_rows = np.setdiff1d(np.arange(len(products)), train_rows)
        # Training: every change within the anchor's subcategory, its targets weighted by how close their look is
        # to the anchor's (softmax at LOOK_TAU), so the composer learns "this attribute, and keep the look".
        # Validation: changes within one collection, the catalog's own notion of one design language.
        train = attribute_changes(products, rows=train_rows, group=("subcategory",))
        val = [c for c in attribute_changes(products) if c.anchor in set(val_rows.tolist())]
        val = [val[i] for i in np.sort(rng.choice(len(val), size=min(len(val), 1500), replace=False))] if val else []
        self.val_queries_ = [(c, phrase(c.attribute, c.value, rng, EVAL_TEMPLATES)) for c in val]
        composer = make_composer(self.composer, epochs=self.epochs, seed=self.seed, progress=self.progress) \
            if self.composer == "film" else make_composer(self.composer)
        if isinstance(composer, FiLMComposer) and train:
            texts = [phrase(c.attribute, c.value, rng, TRAIN_TEMPLATES) for c in train]
            words = self._words_of(texts)
            look = normalise(self.space_.split(self.items_)[0])
            weights = [np.exp((look[list(c.targets)] @ look[c.anchor] - 1.0) / LOOK_TAU) for c in train]
            composer.fit(self.items_, self.look_dim_, [c.anchor for c in train], words, [c.targets for c in train],
                         validate=self._validator() if val else None, target_weights=weights)
        self.composer_ = composer
        self.index_ = VectorIndex(self.index).fit(self.items_)
        self.weights_ = dict(DEFAULT_WEIGHTS)
        if self.tune and val:
            self.weights_ = self.tune_weights([c for c, _ in self.val_queries_], [t for _, t in self.val_queries_])
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_train_changes_ = len(train)
        return self

    def reindex(self, data: Dataset) -> ComposedSearch:
        """The same learned space, composer and weights over another catalog (new pieces, a grown catalog): item
        vectors, vocabulary, attribute guard and index are rebuilt, nothing is retrained."""
        image, text, image_missing, text_missing = _modalities(data)
        self.items_ = self.space_.item_vectors(image, text, image_missing, text_missing)
        self._set_catalog(data.products.reset_index(drop=True))
        self.index_ = VectorIndex(self.index).fit(self.items_)
        return self

    def _set_catalog(self, products: pd.DataFrame) -> None:
        self.products_ = products
        self.records_ = products.to_dict("records")          # row lookups on the request path, without pandas
        self.ids_ = products["product_id"].astype(str).to_numpy()
        self.row_of_ = {p: i for i, p in enumerate(self.ids_)}
        self.vocab = Vocabulary.from_products(products)
        self.guard_ = AttributeGuard(products)
        self._word_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _validator(self) -> Callable[[FiLMComposer], float]:
        """Recall@10 of the composer alone on the validation changes, within the anchor's subcategory."""
        changes = [c for c, _ in self.val_queries_]
        words = self._words_of([t for _, t in self.val_queries_])
        anchors = np.array([c.anchor for c in changes])
        same = self._same_subcategory(anchors)

        def recall(composer: FiLMComposer) -> float:
            sims = composer.compose(self.items_[anchors], words) @ self.items_.T
            sims[np.arange(len(anchors)), anchors] = -np.inf
            sims[~same] = -np.inf
            return _recall(np.argsort(-sims, axis=1)[:, :10], changes)

        return recall

    def _same_subcategory(self, anchors: np.ndarray) -> np.ndarray:
        col = "subcategory" if "subcategory" in self.products_ else "category"
        values = self.products_[col].astype(str).to_numpy()
        return values[None, :] == values[anchors][:, None]

    # ------------------------------------------------------------------------------------------------ re-ranking
    def tune_weights(self, changes: list[Change], texts: list[str], trials: int = 300) -> dict[str, float]:
        """Re-ranking weights that maximise recall@10 on held-out catalog changes (random search around the
        composed-only blend, which is always among the trials, so tuning cannot end below it)."""
        parsed = [self.parse(text, self.ids_[c.anchor]) for c, text in zip(changes, texts, strict=True)]
        self._words_of([p.delta.strip() for p in parsed if p.delta.strip()])     # one batch through the encoder
        feats = np.zeros((len(changes), self.candidates, len(FEATURES)), np.float32)
        cands = np.full((len(changes), self.candidates), -1, np.int64)
        for e, (change, p) in enumerate(zip(changes, parsed, strict=True)):
            f, ids = self._candidates(p, change.anchor, None, (), None, None)
            feats[e, : len(ids)], cands[e, : len(ids)] = f, ids
        empty = cands < 0
        targets = np.zeros((len(changes), self.candidates), bool)
        for e, change in enumerate(changes):
            targets[e] = np.isin(cands[e], change.targets) & ~empty[e]
        n_targets = np.array([len(c.targets) for c in changes], np.float64)
        rng = np.random.default_rng(self.seed)
        best_w, best = dict(DEFAULT_WEIGHTS), -1.0
        for trial in range(trials):
            w = dict(DEFAULT_WEIGHTS) if trial == 0 else {
                "composed": 1.0, "words": float(rng.uniform(0, 1)), "look": float(rng.uniform(0, 1)),
                "soft": float(rng.choice([0.0, rng.uniform(0, 0.5)])), "personal": 0.0}
            score = feats @ np.array([w[f] for f in FEATURES], np.float32)
            score[empty] = -np.inf
            top = np.argpartition(-score, min(10, self.candidates) - 1, axis=1)[:, :10]
            recall = float(np.mean(np.take_along_axis(targets, top, axis=1).sum(1) / n_targets))
            if recall > best + 1e-9:
                best, best_w = recall, w
        best_w["personal"] = PERSONAL_WEIGHT
        self.tuned_recall_ = best
        return best_w

    # ------------------------------------------------------------------------------------------------ query
    def parse(self, text: str, anchor: str | None = None) -> ParsedQuery:
        return parse(text or "", self.vocab, self.product(anchor) if anchor is not None else None)

    def product(self, product_id: str) -> dict:
        """Catalog facts of one piece (KeyError naming the id when the catalog does not hold it)."""
        i = self.item_of(product_id)
        row = self.records_[i]
        out = {"product_id": self.ids_[i]}
        for c in FACT_COLUMNS:
            if c in row and not (isinstance(row[c], float) and np.isnan(row[c])):
                out[c] = row[c].item() if hasattr(row[c], "item") else row[c]
        return out

    def item_of(self, product_id: str) -> int:
        try:
            return self.row_of_[str(product_id)]
        except KeyError:
            raise KeyError(f"unknown product_id {product_id!r}: not in the catalog") from None

    def violations(self, product_id: str, constraints: list[Constraint]) -> list[Constraint]:
        return self.guard_.violations(self.item_of(product_id), constraints)

    def search(self, text: str = "", anchor: str | None = None, customer: str | None = None, k: int = 10,
               exclude: Collection[str] = (), parsed: ParsedQuery | None = None, allowed: np.ndarray | None = None,
               affinity: np.ndarray | None = None) -> dict:
        """The k best pieces for the words and the anchor (module docstring). `allowed` (bool per item) adds the
        house's rules; `affinity` (a score per item for `customer`, e.g. her recommender's) adds her taste."""
        t0 = time.perf_counter()
        a = self.item_of(anchor) if anchor is not None else None
        parsed = parsed if parsed is not None else self.parse(text, anchor)
        with torch_threads(1):     # one short query: a torch thread pool only spins against BLAS (8 ms -> 85 ms)
            return self._search(parsed, a, anchor, customer, k, exclude, allowed, affinity, t0)

    def _search(self, parsed: ParsedQuery, a: int | None, anchor: str | None, customer: str | None, k: int,
                exclude: Collection[str], allowed: np.ndarray | None, affinity: np.ndarray | None,
                t0: float) -> dict:
        if a is None and not parsed.delta.strip() and not parsed.constraints:
            raise ValueError("a search needs words to search for or an anchor product to start from")
        excluded = [self.item_of(p) for p in exclude if str(p) in self.row_of_]
        feats, ids = self._candidates(parsed, a, allowed, excluded, affinity, customer)
        w = np.array([self.weights_[f] for f in FEATURES], np.float32)
        score = feats @ w
        order = np.argsort(-score, kind="stable")[:k]
        results = [{"product_id": self.ids_[ids[j]], "score": round(float(score[j]), 6),
                    "reason": self._reason(parsed, a, feats[j], ids[j])} for j in order]
        return {"results": results, "constraints": [c.to_dict() for c in parsed.constraints], "delta": parsed.delta,
                "anchor": anchor, "customer": customer, "composer": self.composer_.name,
                "seconds": round(time.perf_counter() - t0, 4)}

    def _candidates(self, parsed: ParsedQuery, a: int | None, allowed: np.ndarray | None, excluded,
                    affinity: np.ndarray | None, customer: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(features (c, len(FEATURES)), item rows (c,)) of the candidates every hard constraint allows."""
        mask = self.guard_.hard_mask(parsed.constraints)
        if allowed is not None:
            mask = mask & allowed
        if a is not None or len(excluded):
            mask = mask.copy()
            if a is not None:
                mask[a] = False
            mask[list(excluded)] = False
        delta = parsed.delta.strip()
        words = self._words_of([delta])[0] if delta else None
        anchor_vec = self.items_[a] if a is not None else None
        if words is None and anchor_vec is None:            # filters only ("rings under 2k"): the words of the filters
            words = self._words_of([" ".join(c.source for c in parsed.constraints) or parsed.text])[0]
        if words is None:
            query = normalise(anchor_vec[None])[0]
        else:
            query = self.composer_.compose(None if anchor_vec is None else anchor_vec[None], words[None])[0]
        sims, ids = self.index_.search(query[None], self.candidates, allowed=mask)
        keep = ids[0] >= 0
        ids, composed = ids[0][keep], sims[0][keep]
        z = self.items_[ids]
        look, wpart = self.space_.split(z)
        feats = np.zeros((len(ids), len(FEATURES)), np.float32)
        feats[:, 0] = composed
        if words is not None:
            feats[:, 1] = normalise(wpart) @ words[self.look_dim_:]
        if anchor_vec is not None:
            feats[:, 2] = normalise(look) @ normalise(self.space_.split(anchor_vec)[0][None])[0]
        n_soft = sum(1 for c in parsed.constraints if not c.hard)
        if n_soft:
            feats[:, 3] = self.guard_.soft_matches(parsed.constraints)[ids] / n_soft
        if affinity is not None and len(ids):
            ranks = np.argsort(np.argsort(np.asarray(affinity, np.float64)[ids]))
            feats[:, 4] = ranks / max(len(ids) - 1, 1)
        return feats, ids

    def _words_of(self, texts: list[str]) -> np.ndarray:
        """Item-shaped word vectors of texts, with a small cache (the same deltas come back in a session)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._word_cache]
        if todo:
            for t, v in zip(todo, self.space_.query_vectors(todo), strict=True):
                self._word_cache[t] = v
                if len(self._word_cache) > 4096:
                    self._word_cache.popitem(last=False)
        return np.stack([self._word_cache[t] for t in texts])

    def _reason(self, parsed: ParsedQuery, a: int | None, f: np.ndarray, i: int) -> str:
        """One line a sales associate can read: what was kept, what matches the change, what was excluded."""
        parts = []
        if a is not None:
            title = str(self.records_[a].get("title", self.ids_[a])).split(",")[0]
            parts.append(f"the look of the {title} (look {f[2]:.2f})")
        row = self.records_[i]
        asked = [c for c in parsed.constraints if not c.hard]
        matched = [c for c in asked if str(row.get(c.attribute, "")).lower() in {str(v).lower() for v in c.value}]
        if matched:
            parts.append(", ".join(str(row[c.attribute]) for c in matched) + " as asked")
        elif parsed.delta.strip():
            parts.append(f"closest to \"{parsed.delta.strip()}\" (words {f[1]:.2f})")
        hard = [c.describe() for c in parsed.constraints if c.hard and "anchor" not in c.source]
        if hard:
            parts.append("; ".join(hard))
        if f[4] > 0.8 and self.weights_.get("personal", 0) > 0:
            parts.append("close to her taste")
        return "; ".join(parts)

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Writes engine.pkl, index.faiss and meta.json into `folder` (written aside, then moved into place)."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.index_.save(tmp / "index.faiss")
        state = {k: v for k, v in self.__dict__.items() if k not in ("index_", "products_", "_word_cache", "vocab",
                                                                      "guard_", "row_of_", "records_")}
        with open(tmp / "engine.pkl", "wb") as f:
            pickle.dump(state, f)
        meta = {"format": FORMAT, "catalog": catalog_fingerprint(self.products_, self.items_.shape),
                "composer": self.composer_.name,
                "space": self.space,
                "weights": self.weights_, "fit_seconds": round(getattr(self, "fit_seconds_", 0.0), 1),
                "index": self.index_.kind_, "n_items": int(len(self.ids_)),
                "train_changes": getattr(self, "n_train_changes_", 0),
                "validation_recall@10": getattr(self, "tuned_recall_", None)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            folder.rename(old)
            tmp.rename(folder)
            for p in old.iterdir():
                p.unlink()
            old.rmdir()
        else:
            tmp.rename(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path, data: Dataset) -> ComposedSearch:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"the search engine in {folder} has format {meta.get('format')}, this code reads "
                             f"{FORMAT}; fit it again")
        with open(folder / "engine.pkl", "rb") as f:
            state = pickle.load(f)
        self = cls.__new__(cls)
        self.__dict__.update(state)
        products = data.products.reset_index(drop=True)
        if catalog_fingerprint(products, self.items_.shape) != meta["catalog"]:
            raise ValueError(f"the search engine in {folder} was fitted on another catalog; fit it again")
        self._set_catalog(products)
        self.index_ = VectorIndex.load(folder / "index.faiss", self.items_)
        return self


def search_engine(ws, data: Dataset | None = None, refit: bool = False, progress: bool = True,
                  clip: str | None = None, **kwargs) -> ComposedSearch:
    """The workspace's engine (`WS/search/`): loaded when it matches the catalog, else fitted (features computed or
    read from the cache as needed) and saved. `clip`: a local CLIP/SigLIP folder whose two towers embed the catalog
    and the queries instead of MobileNetV2, MiniLM and the learned adapter."""
    from vendome.features.embeddings import attach_features
    from vendome.pipeline import training_data
    from vendome.workspace import Workspace

    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    if not ws.exists():
        raise FileNotFoundError(f"no workspace store at {ws.db}: run `vendome ingest` first")
    data = data if data is not None else training_data(ws, progress=progress)
    folder = ws.root / "search"
    if not refit and (folder / "engine.pkl").exists():
        try:
            engine = ComposedSearch.load(folder, data)     # its item vectors are stored: any features will do here
            if clip is None or engine.space == str(clip):
                return engine
        except (ValueError, KeyError, OSError, pickle.UnpicklingError):
            pass                                     # another catalog (or an old format): fit again below
    if clip is not None:
        data = attach_features(data, ws, image_model=str(clip), text_model=str(clip), progress=progress)
        kwargs["space"] = str(clip)
    engine = ComposedSearch(progress=progress, **kwargs).fit(data)
    engine.save(folder)
    return engine


def catalog_fingerprint(products: pd.DataFrame, shape: tuple[int, ...]) -> str:
    cols = [c for c in ("product_id", *CHANGED, "category", "subcategory", "price") if c in products]
    h = hashlib.blake2b(pd.util.hash_pandas_object(products[cols].astype(str), index=False).to_numpy().tobytes(),
                        digest_size=12)
    h.update(str(tuple(shape)).encode())
    return h.hexdigest()


def _modalities(data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, text, image_missing, text_missing); a catalog without text or pictures gets an empty modality."""
    f, n = data.item_features, data.n_items
    if "text" not in f:
        raise ValueError("composed search needs text embeddings of the catalog (run `vendome features`)")
    text = np.asarray(f["text"], np.float32)
    text_missing = np.asarray(f.get("text_missing", np.zeros(n, bool)), bool)
    if "image" in f:
        image = np.asarray(f["image"], np.float32)
        image_missing = np.asarray(f.get("image_missing", np.zeros(n, bool)), bool)
    else:
        image, image_missing = np.zeros((n, 8), np.float32), np.ones(n, bool)
    return image, text, image_missing, text_missing


def _recall(tops: np.ndarray, changes: list[Change]) -> float:
    return _recall_lists(list(tops), changes)


def _recall_lists(tops: list[np.ndarray], changes: list[Change]) -> float:
    """Mean share of each change's targets found in its list."""
    if not changes:
        return 0.0
    return float(np.mean([len(set(top.tolist()) & set(c.targets)) / len(c.targets)
                          for top, c in zip(tops, changes, strict=True)]))
