"""The OpenAI-compatible backend against a real scripted HTTP server on 127.0.0.1 (no mocks of the client)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vendome.features.llm import ChatResult, LLMError, OpenAIChat, extract_json_object, llm_from_env


class ScriptedServer:
    """POST /v1/chat/completions answers with the next scripted reply: a str (the assistant's content), or a dict
    with "content", "status" (default 200), "body" (raw body instead of an OpenAI reply), "sleep" (seconds first),
    or a callable(request) returning one of those. Requests (json + headers) are kept in `requests`."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "json": body, "headers": dict(self.headers)})
                step = server.script.pop(0) if server.script else {"status": 500, "body": "script exhausted"}
                if callable(step):
                    step = step(body)
                if isinstance(step, str):
                    step = {"content": step}
                time.sleep(step.get("sleep", 0))
                if self.path != "/v1/chat/completions":
                    step = {"status": 404, "body": "not found"}
                raw = step.get("body")
                if raw is None:
                    raw = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": step["content"]}}],
                                      "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
                data = raw.encode()
                try:
                    self.send_response(step.get("status", 200))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout) before the reply

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


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
