"""The planner over a tiny real engine (the parser and the attribute guard over 20 pieces): session memory, the
deterministic loop, and the LLM loop driven by a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection

import numpy as np
import pandas as pd
import pytest

from llm_server import ScriptedServer
from vendome.features.llm import OpenAIChat
from vendome.search.constraints import AttributeGuard, Constraint
from vendome.search.planner import Planner, SearchEngine, SessionMemory, merge_constraints
from vendome.search.query import ParsedQuery, Vocabulary, parse

ROWS = [  # product_id, title, subcategory, material, stone_type, price
    ("R1", "Serpent ring", "ring", "yellow gold", "diamond", 3000),
    ("R2", "Serpent ring, rose", "ring", "rose gold", "diamond", 3200),
    ("R3", "Plain band", "ring", "rose gold", "none", 2200),
    ("R4", "Sapphire ring", "ring", "rose gold", "sapphire", 2600),
    ("R5", "Ruby ring", "ring", "rose gold", "ruby", 4100),
    ("R6", "White solitaire", "ring", "white gold", "diamond", 3500),
    ("R7", "Yellow band", "ring", "yellow gold", "none", 1500),
    ("R8", "Platinum solitaire", "ring", "platinum", "diamond", 6000),
    ("R9", "Emerald ring", "ring", "rose gold", "emerald", 1900),
    ("R10", "Sapphire band", "ring", "yellow gold", "sapphire", 2800),
    ("R11", "Pearl ring", "ring", "rose gold", "pearl", 1200),
    ("R12", "White band", "ring", "white gold", "none", 1700),
    ("N1", "Serpent pendant", "necklace", "yellow gold", "diamond", 4200),
    ("N2", "Rose chain", "necklace", "rose gold", "none", 1800),
    ("N3", "Sapphire pendant", "necklace", "rose gold", "sapphire", 2500),
    ("N4", "Riviere", "necklace", "white gold", "diamond", 5200),
    ("E1", "Rose studs", "earrings", "rose gold", "diamond", 2100),
    ("E2", "Gold hoops", "earrings", "yellow gold", "none", 900),
    ("E3", "Pearl drops", "earrings", "rose gold", "pearl", 1100),
    ("E4", "Sapphire studs", "earrings", "white gold", "sapphire", 2300),
]
PRODUCTS = pd.DataFrame(ROWS, columns=["product_id", "title", "subcategory", "material", "stone_type", "price"])
PRODUCTS["category"] = "jewelry"


class TinyEngine:
    """The SearchEngine protocol over PRODUCTS: hard constraints filter (AttributeGuard), soft ones and likeness to
    the anchor rank. `leak` lists pieces a buggy engine adds to every list, to test the critic."""

    def __init__(self, leak: Collection[str] = ()):
        self.products = PRODUCTS
        self.vocab = Vocabulary.from_products(PRODUCTS)
        self.guard = AttributeGuard(PRODUCTS)
        self.row = {pid: i for i, pid in enumerate(PRODUCTS["product_id"])}
        self.leak = list(leak)
        self.calls: list[dict] = []

    def product(self, product_id: str) -> dict:
        if product_id not in self.row:
            raise KeyError(f"unknown product_id {product_id!r}")
        return PRODUCTS.iloc[self.row[product_id]].to_dict()

    def parse(self, text: str, anchor: str | None = None) -> ParsedQuery:
        return parse(text, self.vocab, self.product(anchor) if anchor else None)

    def search(self, text: str = "", anchor: str | None = None, customer: str | None = None, k: int = 10,
               exclude: Collection[str] = (), parsed: ParsedQuery | None = None) -> dict:
        parsed = parsed if parsed is not None else self.parse(text, anchor)
        self.calls.append({"text": text, "anchor": anchor, "exclude": set(exclude), "parsed": parsed})
        mask = self.guard.hard_mask(parsed.constraints).copy()
        for pid in [*exclude, anchor]:
            if pid in self.row:
                mask[self.row[pid]] = False
        score = 2.0 * self.guard.soft_matches(parsed.constraints)
        if anchor:
            a = self.product(anchor)
            for column in ("material", "stone_type"):
                score += (PRODUCTS[column] == a[column]).to_numpy()
            score -= np.abs(PRODUCTS["price"].to_numpy() - a["price"]) / 1e5
        order = [i for i in np.argsort(-score, kind="stable") if mask[i]][:k]
        results = [{"product_id": PRODUCTS["product_id"].iat[i], "score": float(score[i]), "reason": ""}
                   for i in order]
        results[:0] = [{"product_id": pid, "score": 99.0, "reason": "leaked"} for pid in self.leak]
        return {"results": results, "constraints": [c.to_dict() for c in parsed.constraints], "delta": parsed.delta}

    def violations(self, product_id: str, constraints: list[Constraint]) -> list[Constraint]:
        return self.guard.violations(self.row[product_id], constraints)


def ids(out: dict) -> list[str]:
    return [r["product_id"] for r in out["results"]]


def facts(out: dict, column: str) -> list:
    return [PRODUCTS.set_index("product_id").at[p, column] for p in ids(out)]


def constraint(out: dict, attribute: str, op: str | None = None) -> list[dict]:
    return [c for c in out["constraints"] if c["attribute"] == attribute and (op is None or c["op"] == op)]


def actions(out: dict) -> list[str]:
    return [t["action"] for t in out["trace"]]


@pytest.fixture
def engine() -> TinyEngine:
    return TinyEngine()


@pytest.fixture
def planner(engine) -> Planner:
    return Planner(engine)


def test_the_tiny_engine_implements_the_protocol(engine):
    assert isinstance(engine, SearchEngine)
    assert not isinstance(object(), SearchEngine)


# ------------------------------------------------------------------------------------------ deterministic planner
def test_first_turn_keeps_the_anchor_kind_applies_the_negation_and_ranks_the_wish_first(planner):
    out = planner.run("like this, but in rose gold, no diamonds", anchor="R1", k=5)
    assert out["planner"] == "deterministic"
    assert len(ids(out)) == 5
    assert set(facts(out, "subcategory")) == {"ring"}
    assert "diamond" not in facts(out, "stone_type")
    assert facts(out, "material")[0] == "rose gold"
    assert constraint(out, "stone_type", "not_in")[0]["value"] == ["diamond"]
    assert actions(out) == ["parse", "search", "critic", "answer"]
    assert "stone: not diamond" in out["answer"]


def test_every_trace_step_has_the_documented_keys(planner):
    out = planner.run("in rose gold", anchor="R1")
    assert all(set(t) == {"step", "thought", "action", "args", "observation"} for t in out["trace"])
    assert [t["step"] for t in out["trace"]] == list(range(1, len(out["trace"]) + 1))
    assert out["seconds"] >= 0 and out["session_id"]


def test_cheaper_follow_up_keeps_the_anchor_and_the_earlier_constraints(planner):
    first = planner.run("like this, but in rose gold, no diamonds", anchor="R1", k=5)
    again = planner.run("cheaper", session_id=first["session_id"], k=5)
    assert again["session_id"] == first["session_id"]
    assert ids(again) and all(p < 3000 for p in facts(again, "price"))
    assert "diamond" not in facts(again, "stone_type") and set(facts(again, "subcategory")) == {"ring"}
    assert constraint(again, "material", "in")[0]["value"] == ["rose gold"]
    assert "Kept from before" in again["answer"] and "stone: not diamond" in again["answer"]
    session = planner.memory.get(first["session_id"])
    assert session.anchor == "R1"
    assert [t.text for t in session.turns] == ["like this, but in rose gold, no diamonds", "cheaper"]
    assert session.turns[1].shown == ids(again)


def test_a_follow_up_without_words_of_change_keeps_the_earlier_change_for_the_composer(engine, planner):
    first = planner.run("like this, but in rose gold", anchor="R1")
    again = planner.run("cheaper", session_id=first["session_id"])
    assert engine.calls[-1]["parsed"].delta == again["delta"] == "in rose gold"


def test_cheaper_again_goes_below_the_pieces_just_shown_and_never_loosens(planner):
    first = planner.run("like this", anchor="R8", k=6)   # a 6,000 platinum ring
    second = planner.run("cheaper", session_id=first["session_id"], k=6)
    bound = constraint(second, "price", "lt")[0]["value"]
    assert bound == 6000
    third = planner.run("cheaper", session_id=first["session_id"], k=6)
    median_shown = float(np.median(facts(second, "price")))
    assert constraint(third, "price", "lt")[0]["value"] == median_shown < bound
    assert all(p < median_shown for p in facts(third, "price"))


def test_a_new_price_replaces_the_old_one_and_negations_accumulate(planner):
    first = planner.run("under 3,000, no diamonds", anchor="R1")
    again = planner.run("under 2,000 and no sapphires", session_id=first["session_id"])
    assert [c["value"] for c in constraint(again, "price")] == [2000.0]
    negated = {v for c in constraint(again, "stone_type", "not_in") for v in c["value"]}
    assert negated == {"diamond", "sapphire"}
    assert all(p < 2000 for p in facts(again, "price"))
    assert not {"diamond", "sapphire"} & set(facts(again, "stone_type"))
    assert "Changed: price under 3,000 -> price under 2,000" in again["answer"]


def test_asking_again_for_a_negated_value_takes_it_out_of_the_negation(planner):
    first = planner.run("no diamonds or rubies", anchor="R1")
    again = planner.run("with diamonds after all", session_id=first["session_id"])
    assert [c["value"] for c in constraint(again, "stone_type", "not_in")] == [["ruby"]]
    assert facts(again, "stone_type")[0] == "diamond"


def test_a_named_kind_of_piece_is_not_undone_by_the_anchor_default_on_a_follow_up(planner):
    first = planner.run("matching earrings", anchor="R1")
    again = planner.run("cheaper", session_id=first["session_id"])
    assert set(facts(first, "subcategory")) == set(facts(again, "subcategory")) == {"earrings"}
    assert [c["value"] for c in constraint(again, "subcategory")] == [["earrings"]]


def test_rejected_pieces_never_come_back(planner):
    first = planner.run("like this, but in rose gold", anchor="R1", k=4)
    top = ids(first)[0]
    second = planner.run("not this one", session_id=first["session_id"], reject=[top], k=4)
    assert top not in ids(second)
    planner.memory.reject(first["session_id"], [ids(second)[0]])
    third = planner.run("cheaper", session_id=first["session_id"], k=20)
    assert top not in ids(third) and ids(second)[0] not in ids(third)
    assert "turned down" in third["answer"]


def test_the_critic_drops_a_result_that_breaks_a_hard_constraint_and_says_so():
    planner = Planner(TinyEngine(leak=["R8"]))          # R8 is a diamond ring the engine should not have returned
    out = planner.run("like this, no diamonds", anchor="R1", k=5)
    assert "R8" not in ids(out) and "diamond" not in facts(out, "stone_type")
    critic = [t for t in out["trace"] if t["action"] == "critic"][0]
    assert "R8" in critic["observation"] and "stone: not diamond" in critic["observation"]
    assert "Removed 1 result(s)" in out["answer"]


def test_too_few_results_widen_an_around_price_by_a_quarter_but_keep_the_negation(planner):
    out = planner.run("around 2k, no diamonds", anchor="R1", k=8)
    assert [c["value"] for c in constraint(out, "price")] == [[1200.0, 3000.0]]     # 1,600-2,400 widened 25%
    assert len(ids(out)) == 7                                                      # R3 R4 R7 R9 R10 R11 R12
    assert "diamond" not in facts(out, "stone_type") and all(1200 <= p <= 3000 for p in facts(out, "price"))
    assert "relax" in actions(out) and "widened price between 1,600 and 2,400" in out["answer"]


def test_a_stated_limit_is_never_relaxed_even_when_few_pieces_qualify(planner):
    out = planner.run("rings under 1,800 in rose gold", anchor="R1", k=10)
    assert sorted(ids(out)) == ["R11", "R12", "R7"]
    assert [c["value"] for c in constraint(out, "price")] == [1800.0]
    assert constraint(out, "material", "in")                 # dropping the soft wish brought nothing: it stays
    assert "widened" not in out["answer"] and "dropped" not in out["answer"]


def test_merge_keeps_a_lower_and_an_upper_bound_together():
    old = [Constraint("price", "gt", 1000, source="over 1,000")]
    merged = merge_constraints(old, [Constraint("price", "lt", 3000, source="under 3,000")])
    assert [c.op for c in merged.constraints] == ["gt", "lt"] and merged.kept == old


# ------------------------------------------------------------------------------------------ session memory
def test_unknown_or_missing_session_ids_start_a_new_session():
    memory = SessionMemory()
    a, b = memory.get(None), memory.get("no-such-session")
    assert a.id != b.id and b.id != "no-such-session"
    assert memory.get(a.id) is a


def test_sessions_are_bounded_least_recently_used_first():
    memory = SessionMemory(max_sessions=2)
    a, b = memory.get(None), memory.get(None)
    memory.get(a.id)                       # a is now the most recent
    memory.get(None)
    assert memory.get(a.id) is a and memory.get(b.id) is not b


def test_idle_sessions_expire():
    memory = SessionMemory(ttl_s=0.05)
    a = memory.get(None)
    time.sleep(0.1)
    assert memory.get(a.id) is not a


def test_forget_drops_a_session():
    memory = SessionMemory()
    a = memory.get(None)
    memory.forget(a.id)
    assert memory.get(a.id) is not a


def test_concurrent_rejections_are_all_kept():
    memory = SessionMemory()
    sid = memory.get(None).id
    threads = [threading.Thread(target=lambda n=n: [memory.reject(sid, [f"p{n}-{j}"]) for j in range(50)])
               for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memory.get(sid).rejected) == 400


# ------------------------------------------------------------------------------------------ the LLM planner
class ScriptedLLM(ScriptedServer):
    """The scripted chat server (tests/llm_server.py) speaking the planner's protocol: a dict step is sent as JSON
    text (its "sleep" and "status" keys act on the reply), a str step as is. `llm` is the real client."""

    def __init__(self, script):
        super().__init__([_reply(step) for step in script])
        self.thread.start()
        self.llm = OpenAIChat(self.base_url, "tiny")

    def observations(self) -> list[str]:
        return [r["json"]["messages"][-1]["content"].split("Last observation: ", 1)[-1] for r in self.requests]

    def close(self):
        self.llm.close()
        self.__exit__(None, None, None)


def _reply(step) -> dict:
    if isinstance(step, str):
        return {"content": step}
    step = dict(step)
    control = {k: step.pop(k) for k in ("sleep", "status") if k in step}
    return {"content": json.dumps(step), **control}


@pytest.fixture
def scripted():
    servers = []

    def start(*script) -> ScriptedLLM:
        servers.append(ScriptedLLM(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_llm_plan_searches_filters_and_answers_with_a_full_trace(engine, scripted):
    server = scripted(
        {"thought": "Start from rose gold rings.", "action": "search", "args": {"text": "rose gold ring"}},
        {"thought": "Keep it under 2,500.", "action": "filter", "args": {"attribute": "price", "op": "le",
                                                                          "value": 2500}},
        {"thought": "Done.", "action": "answer", "args": {"text": "Rose gold rings without diamonds, to 2,500."}},
    )
    out = Planner(engine, llm=server.llm).run("like this, but in rose gold, no diamonds", anchor="R1", k=5)
    assert out["planner"] == "llm:tiny"
    assert actions(out) == ["parse", "search", "filter", "answer", "search"]   # re-search: the filter came after
    assert out["trace"][1]["thought"] == "Start from rose gold rings."
    assert out["answer"].startswith("Rose gold rings without diamonds, to 2,500.")
    assert ids(out) and all(p <= 2500 for p in facts(out, "price"))
    assert "diamond" not in facts(out, "stone_type")
    assert constraint(out, "price", "le")[0]["hard"] is True
    assert len(server.requests) == 3
    assert "Critic: all" in server.observations()[1] and "title=" in server.observations()[1]
    assert "Added the hard constraint price up to 2,500" in server.observations()[2]
    prompt = server.requests[0]["json"]["messages"][1]["content"]
    assert "stone: not diamond" in prompt and "Request: like this, but in rose gold, no diamonds" in prompt


def test_llm_relax_on_a_negation_is_refused(engine, scripted):
    server = scripted(
        {"thought": "Too strict, drop the stone rule.", "action": "relax", "args": {"attribute": "stone_type"}},
        {"thought": "Fine.", "action": "answer", "args": {"text": "Here they are."}},
    )
    out = Planner(engine, llm=server.llm).run("like this, no diamonds", anchor="R1", k=10)
    assert "Refused: stone: not diamond" in out["trace"][1]["observation"]
    assert constraint(out, "stone_type", "not_in")[0]["value"] == ["diamond"]
    assert ids(out) and "diamond" not in facts(out, "stone_type")


def test_llm_may_drop_its_own_filter_but_not_a_stated_price_limit(engine, scripted):
    server = scripted(
        {"action": "filter", "args": {"attribute": "material", "op": "in", "value": ["Rose Gold"]}},
        {"action": "relax", "args": {"attribute": "material"}},
        {"action": "relax", "args": {"attribute": "price"}},
        {"action": "answer", "args": {"text": "ok"}},
    )
    out = Planner(engine, llm=server.llm).run("under 2,000", anchor="R1")
    assert "material: rose gold" in out["trace"][1]["observation"]      # the catalog's spelling
    assert "Relaxed: dropped material: rose gold" in out["trace"][2]["observation"]
    assert "Refused: price under 2,000" in out["trace"][3]["observation"]
    assert all(p < 2000 for p in facts(out, "price"))


def test_a_malformed_llm_reply_is_retried(engine, scripted):
    server = scripted(
        'Let me think. {"action": "search", "args": ',
        {"thought": "search", "action": "search", "args": {"text": "rose gold"}},
        {"action": "answer", "args": {"text": "Done."}},
    )
    out = Planner(engine, llm=server.llm).run("in rose gold", anchor="R1")
    assert out["planner"] == "llm:tiny" and actions(out) == ["parse", "search", "answer"]
    assert len(server.requests) == 3
    assert "could not be used" in server.requests[1]["json"]["messages"][-1]["content"]


def test_invalid_actions_and_arguments_are_observed_not_raised(engine, scripted):
    server = scripted(
        {"action": "dance"},
        {"action": "filter", "args": {"attribute": "material", "op": "like", "value": "gold"}},
        {"action": "inspect", "args": {"product_id": "NOPE"}},
        {"action": "filter", "args": {"attribute": "material", "op": "in", "value": ["unobtainium"]}},
        {"action": "answer", "args": {"text": "ok"}},
    )
    out = Planner(engine, llm=server.llm, max_steps=5).run("in rose gold", anchor="R1")
    seen = server.observations()
    assert "Invalid action 'dance'" in seen[1]
    assert "Invalid filter op 'like'" in seen[2]
    assert "Invalid inspect arguments" in seen[3] and "NOPE" in seen[3]
    assert "unobtainium is not a material" in seen[4]
    assert out["planner"] == "llm:tiny" and ids(out)


def test_inspect_reports_the_facts_and_whether_the_piece_breaks_a_constraint(engine, scripted):
    server = scripted({"action": "inspect", "args": {"product_id": "R8"}}, {"action": "answer", "args": {}})
    out = Planner(engine, llm=server.llm).run("like this, no diamonds", anchor="R1")
    assert '"title": "Platinum solitaire"' in out["trace"][1]["observation"]
    assert "Breaks: stone: not diamond" in out["trace"][1]["observation"]
    assert "piece(s) found" in out["answer"]      # no text from the model: the planner's own words


def test_the_llm_cannot_return_a_piece_that_breaks_a_hard_constraint(scripted):
    server = scripted({"action": "search", "args": {"text": "rings"}}, {"action": "answer", "args": {"text": "ok"}})
    out = Planner(TinyEngine(leak=["R8"]), llm=server.llm).run("like this, no diamonds", anchor="R1")
    assert "R8" not in ids(out) and "diamond" not in facts(out, "stone_type")
    assert "dropped 1 result(s)" in server.observations()[1] and "R8" in server.observations()[1]
    assert "Removed 1 result(s) that broke a constraint" in out["answer"]


def test_a_slow_llm_falls_back_to_the_deterministic_planner_within_the_budget(engine, scripted):
    server = scripted({"sleep": 3, "action": "answer", "args": {"text": "too late"}})
    start = time.monotonic()
    out = Planner(engine, llm=server.llm, budget_s=0.6).run("like this, no diamonds", anchor="R1", k=5)
    assert time.monotonic() - start < 0.6 + 0.5
    assert out["planner"] == "deterministic"
    assert "fallback" in actions(out) and "within 0.6s" in [t for t in out["trace"] if t["action"] == "fallback"][0][
        "observation"]
    assert "did not answer within the time allowed, so these are the standard search's results" in out["answer"]
    assert len(ids(out)) == 5 and "diamond" not in facts(out, "stone_type")


def test_a_failing_llm_server_falls_back_and_keeps_the_session(engine, scripted):
    server = scripted({"status": 503})
    planner = Planner(engine, llm=server.llm)
    out = planner.run("like this, no diamonds", anchor="R1", reject=["R10"])
    assert out["planner"] == "deterministic" and "HTTP 503" in out["trace"][1]["observation"]
    assert "The assistant was unavailable" in out["answer"]
    assert "R10" not in ids(out)
    assert planner.memory.get(out["session_id"]).turns[-1].shown == ids(out)


def test_llm_follow_up_turn_keeps_the_session_and_searches_before_an_early_answer(engine, scripted):
    server = scripted({"action": "search", "args": {"text": "rose gold"}}, {"action": "answer", "args": {}},
                      {"action": "answer", "args": {"text": "Cheaper ones."}})
    planner = Planner(engine, llm=server.llm)
    first = planner.run("like this, but in rose gold, no diamonds", anchor="R1")
    again = planner.run("cheaper", session_id=first["session_id"], reject=ids(first)[:1])
    assert actions(again) == ["parse", "answer", "search"]
    assert ids(again) and ids(first)[0] not in ids(again)
    assert all(p < 3000 for p in facts(again, "price")) and "diamond" not in facts(again, "stone_type")
    assert "Turned down: " + ids(first)[0] in server.requests[2]["json"]["messages"][1]["content"]


def test_the_step_budget_ends_the_loop_with_the_last_search(engine, scripted):
    server = scripted(*[{"action": "search", "args": {"text": "rose gold"}}] * 3)
    out = Planner(engine, llm=server.llm, max_steps=2).run("in rose gold", anchor="R1")
    assert len(server.requests) == 2
    assert actions(out) == ["parse", "search", "search", "answer"] and out["planner"] == "llm:tiny"
    assert ids(out) and "piece(s) found" in out["answer"]
