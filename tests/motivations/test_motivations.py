"""Motivation extraction: taxonomy, rule lexicon, LLM replies over HTTP, cache and resume, files, CLI."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from llm_server import ScriptedServer
from vendome.cli import app
from vendome.features.llm import LLMError, OpenAIChat
from vendome.motivations.extract import (
    EXAMPLES,
    SCHEMA,
    InputError,
    LLMExtractor,
    MotivationCache,
    extract_file,
    make_extractor,
    read_inputs,
)
from vendome.motivations.rules import RuleExtractor
from vendome.motivations.scoring import score
from vendome.motivations.taxonomy import LABELS, canonical

FIXTURE = Path(__file__).parent / "fixtures" / "reviews_labelled.json"
REVIEWS = Path(__file__).resolve().parents[3] / "shared" / "data" / "womens_clothing_reviews" / \
    "womens_clothing_ecommerce_reviews.csv"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def answer(positive, negative, reasoning="short") -> str:
    return json.dumps({"reasoning": reasoning, "positive": positive, "negative": negative})


# ------------------------------------------------------------------------------------------------ taxonomy, rules
def test_canonical_maps_what_models_write_onto_the_taxonomy():
    assert canonical("Color") == "colour"
    assert canonical("special_occasion") == "special occasion"
    assert canonical("occasion: wedding") == "special occasion"
    assert canonical("metal: rose gold") == "rose gold"
    assert canonical("travel and summer") == "travel & summer"
    assert canonical("astrology") is None


@pytest.mark.parametrize("text, positive, negative", [
    ("It runs small, I had to size up.", [], ["fit"]),
    ("Not comfortable at all, and the fabric is thin.", [], ["comfort", "quality"]),
    ("Perfect for the office and so comfy!", ["comfort", "work"], []),
    ("A gift for my wife: she only wears rose gold, no diamonds.", ["gift", "rose gold"], ["diamonds"]),
    ("I love the colour.", ["colour"], []),
    ("Has a soft spot for pearls.", ["pearls"], []),
    ("The colour is dull.", [], ["colour"]),
])
def test_rules_read_cues_with_their_polarity(text, positive, negative):
    pos, neg = RuleExtractor().extract(text)
    assert (pos, neg) == (positive, negative)


def test_rules_answer_only_taxonomy_labels_and_say_they_are_rules():
    extractor = make_extractor("rules")
    assert extractor.name == "rules"
    pos, neg = extractor.extract("Lovely silk blouse for a summer wedding; the price is too high and it shrank.")
    assert set(pos) | set(neg) <= set(LABELS) and "special occasion" in pos and "care" in neg


def test_scoring_counts_polarity_and_label_pairs():
    gold = {"a": {"positive": ["fit", "style"], "negative": ["value"]}, "b": {"positive": [], "negative": ["fit"]}}
    got = score({"a": (["fit"], ["value", "colour"]), "b": (["fit"], [])}, gold)
    assert (got["all"]["tp"], got["all"]["fp"], got["all"]["fn"]) == (2, 2, 2)
    assert got["-"]["precision"] == 0.5 and got["+"]["recall"] == 0.5


@pytest.mark.skipif(not REVIEWS.exists(), reason="needs ../shared/data/womens_clothing_reviews")
def test_rules_on_the_held_out_labelled_reviews():
    import pandas as pd

    fixture = json.loads(FIXTURE.read_text())
    df = pd.read_csv(REVIEWS)
    rules = RuleExtractor()
    for subset, labels, floor in (("labels", fixture["labels"], (0.75, 0.8)),
                                  ("holdout", fixture["holdout"]["labels"], (0.75, 0.5))):
        assert len(labels) >= 20 and (subset == "holdout" or len(labels) >= 60)
        found = {k: rules.extract(f"{df.loc[int(k), 'Title']}. {df.loc[int(k), 'Review Text']}") for k in labels}
        got = score(found, labels)["all"]
        assert got["precision"] >= floor[0] and got["recall"] >= floor[1], (subset, got)


# ------------------------------------------------------------------------------------------------ LLM replies
def test_the_prompt_lists_the_taxonomy_and_the_few_shot_answers_follow_the_schema():
    with ScriptedServer([answer(["fit"], [])]) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False))
        extractor.extract("text")
        messages = server.requests[0]["json"]["messages"]
    assert all(label in messages[0]["content"] for label in LABELS)
    assert len(messages) == 2 + 2 * len(EXAMPLES) and messages[-1]["content"] == "text"
    for _, example in EXAMPLES:
        assert set(example) == set(SCHEMA["required"])
        assert all(x in LABELS for x in example["positive"] + example["negative"])


def test_llm_labels_are_mapped_deduplicated_capped_and_the_unknown_dropped():
    reply = "Thinking: she loves it.\n```json\n" + answer(
        ["Color", "colour", "fit", "style", "comfort", "value", "gift", "astrology"], ["sizing"]) + "\n```"
    with ScriptedServer([reply]) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False))
        pos, neg = extractor.extract("text")
    assert pos == ["colour", "fit", "style", "comfort", "value"] and neg == ["fit"]
    assert extractor.last_dropped == ["astrology"] and extractor.last_reasoning == "short"


def test_a_reply_without_the_lists_is_asked_again_and_then_refused():
    with ScriptedServer(['{"reasoning": "x"}', answer(["fit"], [])]) as server:
        pos, _ = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False)).extract("t")
        assert pos == ["fit"] and len(server.requests) == 2
    with ScriptedServer(["no json here"] * 3) as server, pytest.raises(LLMError, match="no usable JSON"):
        LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False)).extract("t")


# ------------------------------------------------------------------------------------------------ files, cache
def test_bad_input_lines_name_file_line_and_field(tmp_path):
    cases = [(['{"id": 1, "text": "a"}', "{not json"], "line 2: not valid JSON"),
             ([{"id": 1}], "line 1, field 'text': expected a string, got nothing"),
             ([{"text": "a"}], "line 1, field 'id'"),
             ([{"id": "x", "text": 3}], "field 'text': expected a string, got int"),
             ([{"id": 1, "text": "a"}, {"id": 1, "text": "b"}], "line 2, field 'id': '1' already on line 1"),
             (["[1, 2]"], "expected a JSON object")]
    for rows, message in cases:
        path = write_jsonl(tmp_path / "in.jsonl", rows)
        with pytest.raises(InputError) as err:
            read_inputs(path)
        assert str(path) in str(err.value) and message in str(err.value)


def test_an_interrupted_batch_leaves_no_output_and_resumes_from_the_cache(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": f"text {i}"} for i in range(4)])
    out = tmp_path / "out.jsonl"
    cache = MotivationCache(tmp_path / "cache")
    failing = [answer(["fit"], []), answer([], ["value"])] + [{"status": 500, "body": "boom"}] * 3
    with ScriptedServer(failing) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False), retries=0)
        with pytest.raises(LLMError, match="id 2"):
            extract_file(path, out, extractor, cache=cache, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))
    assert len(MotivationCache(tmp_path / "cache")) == 2
    with ScriptedServer([answer(["gift"], []), answer(["work"], [])]) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False))
        summary = extract_file(path, out, extractor, cache=MotivationCache(tmp_path / "cache"), progress=False)
        assert len(server.requests) == 2                    # only ids 2 and 3 reached the model
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == [0, 1, 2, 3]
    assert [x["positive"] for x in lines] == [["fit"], [], ["gift"], ["work"]]
    assert all(x["backend"] == "openai" for x in lines) and summary["cached"] == 2


def test_the_cache_key_separates_backends_models_and_texts(tmp_path):
    rules = RuleExtractor()
    with ScriptedServer([]) as server:
        llm = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False))
        keys = {MotivationCache.key(rules, "a"), MotivationCache.key(rules, "b"), MotivationCache.key(llm, "a")}
    assert len(keys) == 3
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "motivations.jsonl").write_text('{"key": "k", "positive": []}\n{"key": "half')
    assert len(MotivationCache(tmp_path / "c")) == 1            # a line cut by an interruption is skipped


def test_cli_extracts_with_the_rules_and_labels_the_backend(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "r1", "text": "Runs small but so comfortable."},
                                               {"id": "r2", "text": "A present for my mother."}])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["motivations", "extract", "--backend", "rules", "--input", str(path),
                                      "--output", str(out), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0] == {**lines[0], "id": "r1", "positive": ["comfort"], "negative": ["fit"], "backend": "rules"}
    assert lines[1]["positive"] == ["gift"] and "2 extracted" in result.output
    again = CliRunner().invoke(app, ["motivations", "extract", "--input", str(path), "--output", str(out),
                                     "--workspace", str(tmp_path / "ws")])
    assert "0 extracted, 2 from the cache" in again.output


def test_cli_refuses_bad_input_and_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "fine"}, {"id": 2, "body": "x"}])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["motivations", "extract", "-i", str(path), "-o", str(out),
                                      "-w", str(tmp_path / "ws")])
    assert result.exit_code == 1 and "line 2, field 'text'" in result.output and not out.exists()


def test_cli_openai_backend_talks_to_a_real_server(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": 7, "text": "For my sister's wedding."}])
    out = tmp_path / "out.jsonl"
    with ScriptedServer([answer(["special occasion", "gift"], [])]) as server:
        result = CliRunner().invoke(app, ["motivations", "extract", "--backend", "openai", "--base-url",
                                          server.base_url, "--model", "tiny", "-i", str(path), "-o", str(out),
                                          "-w", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    line = json.loads(out.read_text())
    assert line["positive"] == ["special occasion", "gift"] and line["backend"] == "openai" and line["model"] == "tiny"


def test_cli_without_input_reads_every_text_of_the_workspace(tmp_path):
    from helpers import tiny_tables
    from vendome.data.ingest import ingest_tables

    tables = tiny_tables()
    tables["customers"] = tables["customers"].assign(registration_date="2025-06-01", location_country="FR",
                                                     last_active_date="2026-01-10")
    customer = str(tables["interactions"]["customer_id"].iloc[0])
    product = str(tables["products"]["product_id"].iloc[0])
    tables["reviews"] = pd.DataFrame({"review_id": ["R1"], "customer_id": [customer], "product_id": [product],
                                      "timestamp": ["2026-01-08"], "title": ["Perfect"],
                                      "text": ["A gift for my mother; she only wears rose gold."]})
    tables["client_notes"] = pd.DataFrame({"note_id": ["N1"], "customer_id": [customer],
                                           "timestamp": ["2026-01-07"], "text": ["No diamonds, please."]})
    ws = tmp_path / "ws"
    ingest_tables(tables, ws)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["motivations", "extract", "-w", str(ws), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert lines["review:R1"]["positive"] == ["gift", "rose gold"]
    assert lines["note:N1"]["negative"] == ["diamonds"]
    assert any(key.startswith("product:") for key in lines) or "description" not in tables["products"]
    missing = CliRunner().invoke(app, ["motivations", "extract", "-w", str(tmp_path / "nowhere"), "-o", str(out)])
    assert missing.exit_code == 1 and "nothing was written" in missing.output


def test_a_reply_cut_off_in_a_repetition_loop_is_salvaged():
    looping = '{"reasoning": "too large", "positive": ["fit", "armhole", "armhole", "armhole", "arm'
    with ScriptedServer([looping] * 3) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False))
        pos, neg = extractor.extract("text")
        temperatures = [r["json"]["temperature"] for r in server.requests]
    assert (pos, neg) == (["fit"], []) and extractor.last_dropped == ["armhole"]
    assert extractor.last_reasoning.startswith("(salvaged")
    assert temperatures[0] == 0.0 and temperatures[1] > 0          # the re-asks are not greedy repeats


def test_a_text_without_a_usable_answer_is_marked_and_the_batch_goes_on(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": f"text {i}"} for i in range(3)])
    out = tmp_path / "out.jsonl"
    script = [answer(["fit"], []), "I cannot answer that.", "Still no.", answer(["gift"], [])]
    with ScriptedServer(script) as server:
        extractor = LLMExtractor(OpenAIChat(server.base_url, "m", response_format=False), retries=1)
        summary = extract_file(path, out, extractor, cache=MotivationCache(tmp_path / "c"), progress=False)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["positive"] for x in lines] == [["fit"], [], ["gift"]]
    assert "no usable JSON" in lines[1]["error"] and "error" not in lines[0]
    assert summary["failed"] == 1 and summary["extracted"] == 2
    assert len(MotivationCache(tmp_path / "c")) == 2                  # the failure is tried again next time
