"""The OpenAI-compatible backend against a real scripted HTTP server on 127.0.0.1 (no mocks of the client)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from llm_server import ScriptedServer
from vendome.features.llm import ChatResult, LLMError, OpenAIChat, extract_json_object, llm_from_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ACTION = {"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}


def test_chat_returns_text_timing_and_token_counts():
    with ScriptedServer(["Hello."]) as server, OpenAIChat(server.base_url, "tiny") as llm:
        result = llm.chat([{"role": "user", "content": "hi"}], max_tokens=12)
    assert isinstance(result, ChatResult)
    assert result.text == "Hello."
    assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert result.seconds >= 0
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["json"]["model"] == "tiny" and sent["json"]["max_tokens"] == 12
    assert sent["json"]["messages"] == [{"role": "user", "content": "hi"}]


def test_api_key_is_sent_as_bearer_token_and_omitted_without_one():
    with ScriptedServer(["a", "b"]) as server:
        OpenAIChat(server.base_url, "m", api_key="sk-test").chat([{"role": "user", "content": "x"}])
        OpenAIChat(server.base_url, "m").chat([{"role": "user", "content": "x"}])
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test"
    assert "Authorization" not in server.requests[1]["headers"]


def test_chat_json_asks_for_json_and_extracts_an_object_wrapped_in_prose_and_fences():
    reply = 'Sure! Here it is:\n```json\n{"action": "search", "args": {"text": "rose gold"}}\n```\nAnything else?'
    with ScriptedServer([reply]) as server, OpenAIChat(server.base_url, "m") as llm:
        obj = llm.chat_json([{"role": "user", "content": "go"}], schema=ACTION)
    assert obj == {"action": "search", "args": {"text": "rose gold"}}
    sent = server.requests[0]["json"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == ACTION
    assert "json" in json.dumps(sent["messages"]).lower()


def test_chat_json_without_schema_asks_for_a_json_object():
    with ScriptedServer(['{"ok": true}']) as server, OpenAIChat(server.base_url, "m") as llm:
        assert llm.chat_json([{"role": "user", "content": "go"}]) == {"ok": True}
    assert server.requests[0]["json"]["response_format"] == {"type": "json_object"}


def test_reasoning_before_the_object_is_skipped_even_with_stray_braces():
    text = "<think>they want {rose gold}</think>I think {the user} wants this: {\"action\": \"answer\"} done."
    assert extract_json_object(text) == {"action": "answer"}


def test_malformed_reply_is_retried_with_the_error_appended():
    with ScriptedServer(['{"action": "sear', '{"thought": "no action key"}', '{"action": "search"}']) as server:
        obj = OpenAIChat(server.base_url, "m").chat_json([{"role": "user", "content": "go"}], schema=ACTION)
    assert obj == {"action": "search"}
    assert len(server.requests) == 3
    last_messages = server.requests[2]["json"]["messages"]
    assert last_messages[-2] == {"role": "assistant", "content": '{"thought": "no action key"}'}
    assert "missing required key(s): action" in last_messages[-1]["content"]


def test_giving_up_after_retries_names_backend_model_and_last_reply():
    with ScriptedServer(["no json here"] * 3) as server, pytest.raises(LLMError) as err:
        OpenAIChat(server.base_url, "qwen-tiny").chat_json([{"role": "user", "content": "go"}], retries=2)
    assert len(server.requests) == 3
    message = str(err.value)
    assert "openai" in message and "qwen-tiny" in message and "no json here" in message


def test_http_400_on_response_format_falls_back_to_a_plain_request_and_remembers_it():
    def reject_response_format(body):
        return {"status": 400, "body": '{"error": "response_format not supported"}'} \
            if "response_format" in body else '{"action": "answer"}'

    with ScriptedServer([reject_response_format] * 3) as server, OpenAIChat(server.base_url, "m") as llm:
        assert llm.chat_json([{"role": "user", "content": "go"}], schema=ACTION) == {"action": "answer"}
        assert llm.chat_json([{"role": "user", "content": "again"}], schema=ACTION) == {"action": "answer"}
    assert ["response_format" in r["json"] for r in server.requests] == [True, False, False]


def test_a_server_error_naming_response_format_also_falls_back(tmp_path):
    """llama-cpp-python's server answers 500 to a json_schema response_format."""
    def crash_on_schema(body):
        return {"status": 500, "body": '{"error": "Unsupported response_format type json_schema"}'} \
            if "response_format" in body else '{"action": "search"}'

    with ScriptedServer([crash_on_schema] * 2) as server, OpenAIChat(server.base_url, "m") as llm:
        assert llm.chat_json([{"role": "user", "content": "go"}], schema=ACTION) == {"action": "search"}
    assert ["response_format" in r["json"] for r in server.requests] == [True, False]
    with ScriptedServer(['{"action": "x"}']) as server, OpenAIChat(server.base_url, "m", response_format=False) as llm:
        llm.chat_json([{"role": "user", "content": "go"}], schema=ACTION)
    assert "response_format" not in server.requests[0]["json"]


def test_http_5xx_reports_status_and_body_excerpt():
    with ScriptedServer([{"status": 503, "body": "model is loading, try later"}]) as server, \
            pytest.raises(LLMError, match=r"HTTP 503 .*model is loading"):
        OpenAIChat(server.base_url, "m").chat([{"role": "user", "content": "x"}])


def test_connection_refused_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError, match="could not reach " + url.replace(".", r"\.")):
        OpenAIChat(url, "m").chat([{"role": "user", "content": "x"}], timeout=2)


def test_a_server_slower_than_the_timeout_raises_within_the_timeout():
    with ScriptedServer([{"content": "late", "sleep": 1.5}]) as server:
        start = time.monotonic()
        with pytest.raises(LLMError, match=r"no reply .* within 0\.3s"):
            OpenAIChat(server.base_url, "m").chat([{"role": "user", "content": "x"}], timeout=0.3)
        assert time.monotonic() - start < 1.0


def test_chat_json_timeout_bounds_the_retries_together():
    with ScriptedServer([{"content": "nope", "sleep": 0.4}] * 5) as server:
        start = time.monotonic()
        with pytest.raises(LLMError):
            OpenAIChat(server.base_url, "m").chat_json([{"role": "user", "content": "x"}], retries=4, timeout=0.6)
        assert time.monotonic() - start < 1.2


def test_a_reply_that_is_not_an_openai_completion_is_an_error():
    with ScriptedServer([{"body": "<html>proxy error</html>"}]) as server, \
            pytest.raises(LLMError, match="unexpected reply .*proxy error"):
        OpenAIChat(server.base_url, "m").chat([{"role": "user", "content": "x"}])


def test_llm_from_env_is_none_without_a_base_url():
    assert llm_from_env({}) is None
    assert llm_from_env({"VENDOME_LLM_MODEL": "m", "VENDOME_LLM_BASE_URL": "  "}) is None


def test_llm_from_env_reads_url_model_and_key_with_openai_key_as_fallback():
    with ScriptedServer(["a", "b"]) as server:
        llm = llm_from_env({"VENDOME_LLM_BASE_URL": server.base_url + "/", "VENDOME_LLM_MODEL": "qwen",
                            "VENDOME_LLM_API_KEY": "own", "OPENAI_API_KEY": "other"})
        assert isinstance(llm, OpenAIChat) and llm.model == "qwen" and llm.base_url == server.base_url
        llm.chat([{"role": "user", "content": "x"}])
        llm_from_env({"VENDOME_LLM_BASE_URL": server.base_url, "VENDOME_LLM_MODEL": "qwen",
                      "OPENAI_API_KEY": "other"}).chat([{"role": "user", "content": "x"}])
    assert [r["headers"]["Authorization"] for r in server.requests] == ["Bearer own", "Bearer other"]


def test_llm_from_env_without_a_model_is_a_clear_error():
    with pytest.raises(LLMError, match="VENDOME_LLM_MODEL"):
        llm_from_env({"VENDOME_LLM_BASE_URL": "http://127.0.0.1:1/v1"})
