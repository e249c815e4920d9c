"""The planner: a short think-act-observe loop over the search engine, with a memory of the conversation.

A client refines in turns ("like this, but in rose gold" -> "cheaper" -> "no, without diamonds" -> "not this one"),
so a `Session` keeps the anchor, the constraints so far and the pieces already turned down. Each turn the planner
merges the new words into the session's constraints (a new constraint on an attribute replaces the old one,
negations accumulate), searches without the rejected pieces, checks every result against every hard constraint (the
critic), relaxes what it may when too few pieces qualify, and says in plain words what it kept, changed, excluded and
relaxed.

Two planners share that loop. Without an LLM, a deterministic planner runs it over the parser. With one, the model
chooses the steps (search, filter, relax, inspect, answer) as JSON, within a time budget and a step budget; it may
add hard constraints but never lift the client's (only a wish or an "around" price may give), and the critic
re-checks the final list whatever it did. If the
model fails or the budget runs out, the deterministic result is returned, and the trace and the answer say so.

    planner = Planner(engine, llm=llm_from_env())
    first = planner.run("like this, but in rose gold", anchor="R12")
    again = planner.run("cheaper, and without diamonds", session_id=first["session_id"], reject=["R40"])
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vendome.features.llm import LLMBackend, LLMError
from vendome.search.constraints import OPS, is_missing, text, to_number
from vendome.search.query import LOCK_ATTRIBUTES, Constraint, ParsedQuery

if TYPE_CHECKING:
    from vendome.search.query import Vocabulary

UPPER, LOWER = ("lt", "le"), ("gt", "ge")
WIDEN = 0.25                 # an "around" price range is widened by this share of its bounds when too few qualify
MAX_TURNS = 20               # turns kept per session (the constraints and rejections themselves are kept whole)
OBSERVATION_CHARS = 900      # what the LLM sees of one observation
SHOWN_TO_LLM = 5             # results described to the LLM after a search
ACTIONS = ("search", "filter", "relax", "inspect", "answer")
STEP_SCHEMA = {
    "type": "object",
    "properties": {"thought": {"type": "string"}, "action": {"type": "string", "enum": list(ACTIONS)},
                   "args": {"type": "object"}},
    "required": ["action"],
}
NUMBER_ATTRIBUTES = ("price",)
PLANNER_SOURCE = "planner"
FACTS = ("title", "category", "subcategory", "material", "stone_type", "color", "price")


@runtime_checkable
class SearchEngine(Protocol):
    """What the planner needs of the search engine (`vendome.search.engine`)."""

    vocab: Vocabulary

    def parse(self, text: str, anchor: str | None = None) -> ParsedQuery: ...

    def search(self, text: str = "", anchor: str | None = None, customer: str | None = None, k: int = 10,
               exclude: Collection[str] = (), parsed: ParsedQuery | None = None) -> dict: ...

    def product(self, product_id: str) -> dict: ...

    def violations(self, product_id: str, constraints: list[Constraint]) -> list[Constraint]: ...


# ------------------------------------------------------------------------------------------------ session memory
@dataclass
class Turn:
    text: str
    anchor: str | None
    constraints: list[dict]
    shown: list[str]
    delta: str = ""          # the change the composer read this turn; a follow-up without one ("cheaper") keeps it


@dataclass
class Session:
    id: str
    anchor: str | None = None
    constraints: list[Constraint] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)
    turns: list[Turn] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class SessionMemory:
    """Sessions in process, keyed by id: least recently used dropped beyond `max_sessions`, idle ones after `ttl_s`.
    A lost session only costs the client its refinements, so nothing is persisted."""

    def __init__(self, max_sessions: int = 10_000, ttl_s: float = 3600.0):
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self._sessions: OrderedDict[str, tuple[Session, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        while self._sessions:
            sid, (_, seen) = next(iter(self._sessions.items()))
            if now - seen <= self.ttl_s:
                break
            del self._sessions[sid]

    def _known(self, session_id: str | None, now: float) -> Session | None:
        self._expire(now)
        if session_id is None or session_id not in self._sessions:
            return None
        session, _ = self._sessions.pop(session_id)
        self._sessions[session_id] = (session, now)
        return session

    def get(self, session_id: str | None) -> Session:
        """The session, or a new one with a fresh id when `session_id` is None, unknown or expired."""
        now = time.monotonic()
        with self._lock:
            session = self._known(session_id, now)
            if session is None:
                session = Session(id=uuid.uuid4().hex)
                self._sessions[session.id] = (session, now)
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            return session

    def reject(self, session_id: str | None, product_ids: Iterable[str]) -> None:
        """Never show these pieces again in this session (a no-op for an unknown session: it has nothing to show)."""
        with self._lock:
            session = self._known(session_id, time.monotonic())
        if session is not None:
            with session.lock:
                session.rejected.update(str(p) for p in product_ids)

    def forget(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


# ------------------------------------------------------------------------------------------------ constraints
_AROUND = ("around", "about", "approximately", "approx", "roughly", "circa", "ca", "~", "near", "nearly",
           "close to", "something like")


def is_negation(c: Constraint) -> bool:
    return c.op == "not_in"


def is_around(c: Constraint) -> bool:
    """A price the client gave as a target ("around 3,000", which the parser reads as 0.8x to 1.2x) rather than as
    a limit ("under 3,000", "between 2k and 3k"): only a target may widen."""
    head = re.split(r"\d", c.source.lower(), maxsplit=1)[0]
    words = " ".join(re.findall(r"[a-z]+|~", head))
    return c.op == "between" and any(re.search(rf"(?:^|\s){re.escape(cue)}(?:\s|$)", words) for cue in _AROUND)


def is_relative(c: Constraint) -> bool:
    """"cheaper", "pricier": a bound the parser took from the anchor's price, not a number the client said."""
    return c.op in ("lt", "gt") and not re.search(r"\d", c.source)


def is_default_lock(c: Constraint) -> bool:
    """The anchor's subcategory, which the parser adds to every turn unless the words name what to see."""
    return c.source.startswith("the anchor's")


def _slot(c: Constraint) -> str:
    if c.op in UPPER:
        return "upper"
    if c.op in LOWER:
        return "lower"
    return c.op


def _replaces(new: Constraint, old: Constraint) -> bool:
    """Same attribute, neither a negation, and not an upper bound meeting a lower one ("over 1,000" then "under
    3,000" make a range together)."""
    if new.attribute != old.attribute or is_negation(new) or is_negation(old):
        return False
    return {_slot(new), _slot(old)} != {"upper", "lower"}


def _tighten(c: Constraint, current: list[Constraint], shown_prices: Sequence[float]) -> Constraint:
    """"cheaper" is below the anchor's price; said again, when the session already holds a bound at least as tight,
    it goes below the median of what the last turn showed ("cheaper than these"), and it never loosens the bound.
    "pricier" the other way round."""
    same = [o for o in current if o.attribute == c.attribute]
    if c.op == "lt":
        bounds = [o.value for o in same if o.op in UPPER] + [o.value[1] for o in same if o.op == "between"]
        tighter, pick = [b for b in bounds if b <= c.value], min
    else:
        bounds = [o.value for o in same if o.op in LOWER] + [o.value[0] for o in same if o.op == "between"]
        tighter, pick = [b for b in bounds if b >= c.value], max
    if not tighter:
        return c
    prices = [p for p in shown_prices if p == p]
    value = pick([*tighter, float(statistics.median(prices))] if prices else tighter)
    return dataclasses.replace(c, value=float(value))


@dataclass
class Merge:
    constraints: list[Constraint]
    kept: list[Constraint]
    added: list[Constraint]
    changed: list[tuple[Constraint, Constraint]]     # (old, new)


def merge_constraints(old: list[Constraint], new: list[Constraint], shown_prices: Sequence[float] = ()) -> Merge:
    """The session's constraints updated with a turn's: a new constraint on an attribute replaces the old one in its
    slot, negations accumulate, a value asked for again is taken out of an earlier negation (and the other way
    round: "no, without diamonds" takes diamonds out of an earlier "with diamonds"), the anchor's default
    subcategory does not undo a kind of piece the client named, and "cheaper" never loosens a price."""
    current = list(old)
    added: list[Constraint] = []
    changed: list[tuple[Constraint, Constraint]] = []
    for c in new:
        if is_default_lock(c) and any(o.attribute in LOCK_ATTRIBUTES and o.op == "in" for o in current):
            continue
        if is_relative(c):
            c = _tighten(c, current, shown_prices)
        if c in current:
            continue
        replaced = [o for o in current if _replaces(c, o)]
        current = [o for o in current if o not in replaced]
        if c.op in ("in", "not_in"):
            opposite = "not_in" if c.op == "in" else "in"
            drop = {text(v) for v in c.value}
            updated = []
            for o in current:
                if o.attribute == c.attribute and o.op == opposite and drop & {text(v) for v in o.value}:
                    rest = tuple(v for v in o.value if text(v) not in drop)
                    if rest:
                        updated.append(dataclasses.replace(o, value=rest))
                    replaced.append(o)
                else:
                    updated.append(o)
            current = updated
        current.append(c)
        if replaced:
            changed.extend((o, c) for o in replaced)
        else:
            added.append(c)
    gone = [o for o, _ in changed]
    kept = [o for o in old if o in current and o not in gone]
    return Merge(current, kept, added, changed)


def relaxable(c: Constraint) -> str | None:
    """How `c` may be relaxed: "drop" (soft, or added by the planner itself), "widen" (an "around" range), or None
    (a negation, or a limit the client stated: those hold whatever the result count)."""
    if is_negation(c):
        return None
    if not c.hard or c.source == PLANNER_SOURCE:
        return "drop"
    if is_around(c):
        return "widen"
    return None


def widen(c: Constraint, share: float = WIDEN) -> Constraint:
    lo, hi = (float(v) for v in c.value)
    return dataclasses.replace(c, value=(round(lo * (1 - share), 2), round(hi * (1 + share), 2)),
                               source=f"{c.source} (widened {share:.0%})".strip())


def describe(cs: Iterable[Constraint]) -> str:
    return "; ".join(c.describe() for c in cs) or "none"


def in_words(cs: Iterable[Constraint]) -> str:
    """describe() with what a client should know besides: a wish only ranks, a default came from her piece."""
    return "; ".join(c.describe() + (" (like the piece you started from)" if is_default_lock(c) else "")
                     + ("" if c.hard else " (preferred)") for c in cs)


# ------------------------------------------------------------------------------------------------ the planner
@dataclass
class _State:
    """One turn in progress: the constraints in force, the results so far and what the answer must mention."""

    text: str
    anchor: str | None
    customer: str | None
    k: int
    exclude: set[str]
    parsed: ParsedQuery
    merge: Merge
    constraints: list[Constraint]
    trace: list[dict] = field(default_factory=list)
    relaxed: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)      # product id -> why the critic dropped it
    results: list[dict] | None = None
    searched: list[Constraint] | None = None     # the constraints of the last search
    fallback: str = ""                           # why the LLM's plan was abandoned

    @property
    def hard(self) -> list[Constraint]:
        return [c for c in self.constraints if c.hard]

    def step(self, thought: str, action: str, args: dict, observation: str) -> None:
        self.trace.append({"step": len(self.trace) + 1, "thought": thought, "action": action, "args": args,
                           "observation": observation})

    def restart(self) -> _State:
        """The turn as parsed, before any planning, for the fallback (the trace so far is kept)."""
        return dataclasses.replace(self, constraints=list(self.merge.constraints), relaxed=[], dropped={},
                                   results=None, searched=None)


class Planner:
    """Runs one turn of a composed-search conversation (see the module docstring). Thread-safe: a turn's state
    lives in the call; the session is read at the start and written at the end under its own lock."""

    def __init__(self, engine: SearchEngine, llm: LLMBackend | None = None, memory: SessionMemory | None = None,
                 budget_s: float = 8.0, max_steps: int = 4):
        self.engine, self.llm = engine, llm
        self.memory = memory if memory is not None else SessionMemory()
        self.budget_s, self.max_steps = budget_s, max_steps

    @property
    def name(self) -> str:
        return f"llm:{self.llm.model or self.llm.name}" if self.llm is not None else "deterministic"

    # ------------------------------------------------------------------------------------------ entry point
    def run(self, text: str, *, session_id: str | None = None, anchor: str | None = None,
            customer: str | None = None, k: int = 10, reject: Collection[str] = ()) -> dict:
        """One turn: the results, the constraints in force, the answer in words and the trace of the steps."""
        start = time.monotonic()
        session = self.memory.get(session_id)
        with session.lock:
            session.rejected.update(str(p) for p in reject)
            if anchor is not None:
                session.anchor = anchor
            anchor, old, rejected = session.anchor, list(session.constraints), set(session.rejected)
            last = session.turns[-1] if session.turns else None
            delta = next((t.delta for t in reversed(session.turns) if t.delta), "")
        parsed = self.engine.parse(text, anchor=anchor)
        relative = any(is_relative(c) for c in parsed.constraints)
        merge = merge_constraints(old, list(parsed.constraints), self._prices(last.shown) if relative and last else ())
        if not parsed.delta.strip() and delta:
            parsed = dataclasses.replace(parsed, delta=delta)
        state = _State(text=text, anchor=anchor, customer=customer, k=k, exclude=rejected, parsed=parsed,
                       merge=merge, constraints=list(merge.constraints))
        state.step("Read the words with the session's anchor; merge them with the earlier turns.", "parse",
                   {"text": text, "anchor": anchor},
                   f"constraints: {describe(state.constraints)}; change: {parsed.delta or 'none'}; "
                   f"rejected: {len(rejected)}")
        planner, answer = "deterministic", None
        if self.llm is not None:
            answer = self._llm_loop(state, start)
            if answer is not None:
                planner = self.name
            else:
                state = state.restart()
        if answer is None:
            answer = self._deterministic(state)
            if self.llm is not None:
                answer += f" (The assistant {state.fallback}, so these are the standard search's results.)"
        before = len(state.dropped)
        results = self._final_check(state)
        if len(state.dropped) > before:
            answer += f" {len(state.dropped) - before} more result(s) broke a constraint and were removed."
        with session.lock:
            session.constraints = list(merge.constraints)
            session.turns.append(Turn(text=text, anchor=anchor, constraints=[c.to_dict() for c in merge.constraints],
                                      shown=[r["product_id"] for r in results], delta=parsed.delta))
            del session.turns[:-MAX_TURNS]
        return {"session_id": session.id, "results": results, "constraints": [c.to_dict() for c in state.constraints],
                "delta": state.parsed.delta, "answer": answer, "trace": state.trace, "planner": planner,
                "seconds": round(time.monotonic() - start, 4)}

    # ------------------------------------------------------------------------------------------ shared tools
    def _search(self, state: _State, text: str | None = None, anchor: str | None = None) -> tuple[list[dict], list]:
        """engine.search under the state's constraints, then the critic. Returns (results kept, offenders)."""
        query = dataclasses.replace(state.parsed, constraints=list(state.constraints))
        if text is not None and text != state.text:   # the planner's own words: their change, the turn's constraints
            query = dataclasses.replace(self.engine.parse(text, anchor=anchor or state.anchor),
                                        constraints=list(state.constraints))
        out = self.engine.search(text=state.text if text is None else text, anchor=anchor or state.anchor,
                                 customer=state.customer, k=state.k, exclude=sorted(state.exclude), parsed=query)
        state.searched = list(state.constraints)
        results, offenders = self._critic(state, out.get("results", []))
        state.results = results
        return results, offenders

    def _critic(self, state: _State, results: list[dict]) -> tuple[list[dict], list[str]]:
        """Every result against every hard constraint in force (and the rejections): offenders are dropped."""
        hard, kept, offenders = state.hard, [], []
        seen: set[str] = set()
        for r in results:
            pid = r["product_id"]
            if pid in seen:
                continue
            seen.add(pid)
            broken = self.engine.violations(pid, hard) if hard else []
            why = "turned down earlier" if pid in state.exclude else describe(broken) if broken else ""
            if why:
                offenders.append(f"{pid} ({why})")
                state.dropped[pid] = why
            else:
                kept.append(r)
        return kept, offenders

    @staticmethod
    def _critique(state: _State, results: list[dict], offenders: list[str]) -> str:
        if offenders:
            return f"dropped {len(offenders)} result(s) breaking a hard constraint: {'; '.join(offenders)}"
        return f"all {len(results)} result(s) satisfy the {len(state.hard)} hard constraint(s)"

    def _final_check(self, state: _State) -> list[dict]:
        """The critic once more over what goes back, so no path (the LLM's included) returns a piece that breaks a
        hard constraint in force or that the client turned down."""
        results, offenders = self._critic(state, state.results or [])
        if offenders:
            state.step("Check what goes back once more.", "critic", {}, self._critique(state, results, offenders))
        return results[: state.k]

    def _prices(self, product_ids: Iterable[str]) -> list[float]:
        prices = []
        for pid in product_ids:
            try:
                prices.append(to_number(self.engine.product(pid).get("price")))
            except KeyError:
                continue
        return prices

    def _facts(self, product_id: str) -> dict:
        try:
            product = self.engine.product(product_id)
        except KeyError:
            return {}
        return {k: product[k] for k in FACTS if not is_missing(product.get(k)) and product.get(k) != ""}

    def _observe(self, results: list[dict]) -> str:
        lines = [f"{len(results)} result(s)."]
        for r in results[:SHOWN_TO_LLM]:
            facts = self._facts(r["product_id"])
            lines.append(f"{r['product_id']}: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------ deterministic
    def _deterministic(self, state: _State) -> str:
        """Search, criticise, and while too few qualify relax what may be relaxed: the soft constraints first (kept
        when dropping them brings nothing), then an "around" price widened by 25%; never a negation or a stated
        limit."""
        results, offenders = self._search(state)
        state.step("Search with the merged constraints, without the pieces turned down.", "search",
                   {"constraints": [c.describe() for c in state.constraints], "exclude": sorted(state.exclude)},
                   f"{len(results) + len(offenders)} result(s)")
        state.step("Every result must satisfy every hard constraint.", "critic", {"checked": len(results)},
                   self._critique(state, results, offenders))
        for kind in ("drop", "widen"):
            if len(results) >= state.k:
                break
            group = [c for c in state.constraints if relaxable(c) == kind]
            if not group:
                continue
            before, notes = list(state.constraints), len(state.relaxed)
            for c in group:
                self._relax_one(state, c, kind)
            more, offenders = self._search(state)
            known = {r["product_id"] for r in results}
            new = [r for r in more if r["product_id"] not in known]
            if new:
                results = results + new
                observation = f"{len(new)} more: {len(results)} result(s); " + self._critique(state, more, offenders)
            else:
                state.constraints, state.relaxed[notes:] = before, []
                observation = "nothing more qualified, so the constraints stay as they were"
            state.results = results
            state.searched = list(state.constraints)
            state.step(f"Only {len(known)} of {state.k} qualify: relax ({kind}) and search again.", "relax",
                       {"constraints": [c.describe() for c in group]}, observation)
        answer = self._answer(state)
        state.step("Say what was kept, changed, excluded and relaxed.", "answer", {}, answer)
        return answer

    def _relax_one(self, state: _State, c: Constraint, kind: str) -> None:
        i = state.constraints.index(c)
        if kind == "drop":
            state.constraints.pop(i)
            state.relaxed.append(f"dropped {c.describe()}")
        else:
            wider = widen(c)
            state.constraints[i] = wider
            state.relaxed.append(f"widened {c.describe()} to {wider.describe()}")

    def _answer(self, state: _State) -> str:
        m = state.merge
        parts = [f"{len(state.results or [])} piece(s) found."]
        if m.kept:
            parts.append(f"Kept from before: {in_words(m.kept)}.")
        if m.changed:
            parts.append("Changed: " + "; ".join(f"{o.describe()} -> {n.describe()}" for o, n in m.changed) + ".")
        if m.added:
            parts.append(f"Asked for: {in_words(m.added)}.")
        added = [c for c in state.constraints if c.source == PLANNER_SOURCE]
        if added:
            parts.append(f"Added: {describe(added)}.")
        if state.exclude:
            parts.append(f"Left out {len(state.exclude)} piece(s) you turned down.")
        parts.extend(self._notes(state))
        return " ".join(parts)

    @staticmethod
    def _notes(state: _State) -> list[str]:
        notes = []
        if state.relaxed:
            notes.append("Too few pieces qualified, so I " + "; ".join(state.relaxed) + ".")
        if state.dropped:
            notes.append(f"Removed {len(state.dropped)} result(s) that broke a constraint.")
        return notes

    # ------------------------------------------------------------------------------------------ LLM loop
    def _llm_loop(self, state: _State, start: float) -> str | None:
        """The model's steps, or None when it failed or ran out of time (the caller then falls back)."""
        assert self.llm is not None
        deadline = start + self.budget_s
        call_timeout = float(getattr(self.llm, "timeout", self.budget_s))
        observation, text = "Nothing searched yet.", None
        for _ in range(self.max_steps):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                state.fallback = f"did not answer within {self.budget_s:g}s"
                state.step("Out of time.", "fallback", {}, f"the budget of {self.budget_s:g}s is spent")
                return None
            try:
                reply = self.llm.chat_json(self._messages(state, observation), schema=STEP_SCHEMA,
                                           timeout=min(remaining, call_timeout))
            except LLMError as exc:
                state.fallback = ("did not answer within the time allowed" if deadline - time.monotonic() < 0.1
                                  else "was unavailable")
                state.step("The language model failed.", "fallback", {}, str(exc)[:OBSERVATION_CHARS])
                return None
            thought = str(reply.get("thought", ""))[:400]
            action = reply.get("action")
            args = reply.get("args") if isinstance(reply.get("args"), dict) else {}
            if action == "answer":
                text = str(args.get("text", "")).strip()
                state.step(thought, "answer", args, "stop")
                break
            observation = self._act(state, action, args)[:OBSERVATION_CHARS]
            state.step(thought, str(action), args, observation)
        else:
            state.step("The step budget is spent.", "answer", {}, f"{self.max_steps} step(s) taken")
        if state.searched != state.constraints:
            results, offenders = self._search(state)
            state.step("The constraints changed since the last search: search again before answering.", "search",
                       {"constraints": [c.describe() for c in state.constraints]},
                       f"{len(results)} result(s); " + self._critique(state, results, offenders))
        if not text:
            return self._answer(state)
        return " ".join([text, *self._notes(state)])

    def _act(self, state: _State, action: object, args: dict) -> str:
        """Run one tool; anything invalid comes back as the observation, for the model to correct."""
        try:
            if action == "search":
                anchor = args.get("anchor") or None
                if anchor is not None:
                    self.engine.product(str(anchor))
                results, offenders = self._search(state, text=str(args.get("text") or state.text),
                                                  anchor=None if anchor is None else str(anchor))
                return self._observe(results) + "\nCritic: " + self._critique(state, results, offenders) + "."
            if action == "filter":
                return self._filter(state, args)
            if action == "relax":
                return self._relax(state, str(args.get("attribute", "")))
            if action == "inspect":
                pid = str(args.get("product_id", ""))
                facts = self.engine.product(pid)
                broken = self.engine.violations(pid, state.hard) if state.hard else []
                return (json.dumps(facts, default=str)[:600]
                        + (f" Breaks: {describe(broken)}." if broken else " Meets every hard constraint."))
            return f"Invalid action {action!r}: use one of {', '.join(ACTIONS)}."
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            return f"Invalid {action} arguments {json.dumps(args, default=str)[:200]}: {exc}"

    def _filter(self, state: _State, args: dict) -> str:
        attribute, op, value = args.get("attribute"), args.get("op"), args.get("value")
        known = getattr(self.engine.vocab, "values", {})
        if attribute not in known and attribute not in NUMBER_ATTRIBUTES:
            return (f"Invalid filter: unknown attribute {attribute!r}; use one of "
                    f"{', '.join([*known, *NUMBER_ATTRIBUTES])}.")
        if op not in OPS:
            return f"Invalid filter op {op!r}: use one of {', '.join(OPS)}."
        if op in ("in", "not_in"):
            if attribute not in known:
                return f"Invalid filter: {attribute} takes lt, le, gt, ge or between."
            items = value if isinstance(value, list | tuple) else [value]
            values, unknown = [], []
            for v in items:
                found = self._catalog_values(str(attribute), str(v))
                values.extend(x for x in found if x not in values)
                if not found:
                    unknown.append(str(v))
            if unknown or not values:
                return (f"Invalid filter: {', '.join(unknown) or 'no value'} is not a {attribute} of this catalog; "
                        f"known: {', '.join(known[attribute][:20])}.")
            value = tuple(values)
        elif attribute not in NUMBER_ATTRIBUTES:
            return f"Invalid filter: {attribute} takes in or not_in."
        c = Constraint(attribute=str(attribute), op=str(op), value=value, hard=True, source=PLANNER_SOURCE)
        if c not in state.constraints:
            state.constraints.append(c)
        return f"Added the hard constraint {c.describe()}. Constraints now: {describe(state.constraints)}."

    def _catalog_values(self, attribute: str, value: str) -> list[str]:
        """The catalog's own spelling of a value ("Rose Gold", "diamonds" -> "rose gold", "diamond")."""
        values = self.engine.vocab.values.get(attribute, ())
        exact = [v for v in values if text(v) == text(value)]
        if exact:
            return exact
        lookup = getattr(self.engine.vocab, "lookup", None)
        found = dict(lookup(value)) if lookup is not None else {}
        return list(found.get(attribute, ()))

    def _relax(self, state: _State, attribute: str) -> str:
        mine = [c for c in state.constraints if c.attribute == attribute]
        if not mine:
            return f"No constraint on {attribute!r} to relax. Constraints: {describe(state.constraints)}."
        done, refused = [], []
        for c in mine:
            kind = relaxable(c)
            if kind is None:
                refused.append(c.describe())
            else:
                self._relax_one(state, c, kind)
                done.append(state.relaxed[-1])
        msg = ("Relaxed: " + "; ".join(done) + ". ") if done else ""
        if refused:
            msg += f"Refused: {'; '.join(refused)} (the client's negations and stated limits always hold). "
        return msg + f"Constraints now: {describe(state.constraints)}."

    def _messages(self, state: _State, observation: str) -> list[dict]:
        vocab = getattr(self.engine.vocab, "values", {})
        attributes = "; ".join(f"{a} ({', '.join(v[:8])}{', ...' if len(v) > 8 else ''})" for a, v in vocab.items())
        system = (
            "You plan a search in a luxury catalog for a sales associate. Each turn, reply with one JSON object "
            '{"thought": "<one sentence>", "action": "<tool>", "args": {...}}. Tools:\n'
            '- search {"text": str, "anchor": product_id?}: search under the current constraints\n'
            '- filter {"attribute": str, "op": "in|not_in|lt|le|gt|ge|between", "value": ...}: add a hard constraint\n'
            '- relax {"attribute": str}: loosen a soft constraint or an "around" price (never a negation or a limit)\n'
            '- inspect {"product_id": str}: the catalog facts of one piece\n'
            '- answer {"text": str}: stop, and tell the client in plain words what was kept, changed, excluded '
            "and relaxed\n"
            f"Attributes: {attributes}; price (a number).\n"
            "Search before answering. Results always meet the hard constraints: you need not check them."
        )
        done = "; ".join(f"{t['action']}" for t in state.trace[1:]) or "none"
        user = (f"Request: {state.text}\nAnchor: {state.anchor or 'none'}\n"
                f"Constraints: {describe(state.constraints)}\n"
                f"Turned down: {', '.join(sorted(state.exclude)) or 'none'}\n"
                f"Steps so far: {done}\nLast observation: {observation}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
