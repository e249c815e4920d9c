"""Composed search as the CLI and the API answer it: the engine within the house's rules, her taste when she is known,
and the planner when asked for.

    searcher = Searcher(engine, data, guard=guard, model=recommender, llm=llm_from_env())
    searcher.search("like this, but in rose gold, no diamonds", anchor="P00042", customer="C00017", k=10)
    searcher.search("cheaper", session_id=sid, planner=True)        # a follow-up turn through the planner

`Searcher` offers the planner's `SearchEngine` surface itself (vocab, parse, search, product, violations), so the
planner's searches pass the same rules and use the same taste as the fast path: a planner can never show a piece the
house's guardrails forbid. The fast path answers without the planner and never waits on an LLM.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

import numpy as np

from vendome.data.dataset import Dataset
from vendome.rules.guard import Guard, Request
from vendome.search.engine import ComposedSearch, search_engine
from vendome.search.query import Constraint, ParsedQuery


class Searcher:
    """One catalog's composed search with its rules (`guard`), a recommender for taste (`model`, optional), an LLM
    for the planner (`llm`, optional) and the planner's session memory."""

    def __init__(self, engine: ComposedSearch, data: Dataset, guard: Guard | None = None, model=None, llm=None,
                 memory=None, budget_s: float = 8.0) -> None:
        from vendome.search.planner import SessionMemory

        self.engine, self.data, self.guard, self.model, self.llm = engine, data, guard, model, llm
        self.memory = memory if memory is not None else SessionMemory()
        self.budget_s = budget_s
        self.vocab = engine.vocab
        self._customer: str | None = None              # the client of the request in flight (planner calls)

    # ------------------------------------------------------------------------------------------------ entry
    def search(self, text: str = "", anchor: str | None = None, customer: str | None = None, k: int = 10,
               exclude: Collection[str] = (), parsed: ParsedQuery | None = None, session_id: str | None = None,
               planner: bool = False, reject: Collection[str] = ()) -> dict:
        """The fast path (default), or the planner's loop when `planner` or a `session_id` is given."""
        if customer is not None and str(customer) not in self.data.user_index:
            raise KeyError(f"unknown customer_id {customer!r}")
        if planner or session_id is not None:
            from vendome.search.planner import Planner

            self._customer = customer
            try:
                return Planner(self, llm=self.llm, memory=self.memory, budget_s=self.budget_s).run(
                    text, session_id=session_id, anchor=anchor, customer=customer, k=k, reject=reject)
            finally:
                self._customer = None
        return self._fast(text, anchor, customer, k, (*exclude, *reject), parsed)

    def _fast(self, text: str, anchor: str | None, customer: str | None, k: int, exclude: Collection[str],
              parsed: ParsedQuery | None) -> dict:
        u = self.data.user_index[str(customer)] if customer is not None else None
        a = self.engine.item_of(anchor) if anchor is not None else None
        allowed = None
        if self.guard is not None:
            req = Request("product", u, (a,) if a is not None else (), time.time())
            allowed = self.guard.allowed(None if u is None else np.array([u]), req)[0]
        affinity = None
        if self.model is not None and u is not None:
            affinity = np.asarray(self.model.score(np.array([u]))[0], np.float64)
        out = self.engine.search(text, anchor=anchor, customer=customer, k=k, exclude=exclude, parsed=parsed,
                                 allowed=allowed, affinity=affinity)
        out["planner"] = None
        return out

    # ------------------------------------------------------------------------------------------------ planner surface
    def parse(self, text: str, anchor: str | None = None) -> ParsedQuery:
        return self.engine.parse(text, anchor)

    def product(self, product_id: str) -> dict:
        return self.engine.product(product_id)

    def violations(self, product_id: str, constraints: list[Constraint]) -> list[Constraint]:
        return self.engine.violations(product_id, constraints)


def workspace_searcher(ws, model: str | None = "hybrid", progress: bool = True) -> Searcher:
    """The workspace's searcher for the command line: its engine (fitted on first use), its rules file, and the
    active version of `model` for taste when one is trained (none is needed)."""
    from vendome.features.llm import llm_from_env
    from vendome.pipeline import training_data
    from vendome.rules import load_policy
    from vendome.workspace import Workspace

    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    if not ws.exists():
        raise FileNotFoundError(f"no workspace store at {ws.db}: run `vendome ingest` first")
    data = training_data(ws, progress=progress)
    engine = search_engine(ws, data=data, progress=progress)
    rules = ws.root / "rules.yaml"
    guard = Guard(load_policy(rules if rules.exists() else None), data)
    recommender = None
    if model and (Path(ws.models) / model).is_dir():
        from vendome.artifacts import load_model

        recommender, _ = load_model(ws, model)
    return Searcher(engine, data, guard=guard, model=recommender, llm=llm_from_env())
