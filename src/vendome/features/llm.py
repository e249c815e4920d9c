"""LLM backends behind one small interface: `chat` for text, `chat_json` for a validated JSON object.

The planner only ever needs "send these messages, give me back a dict", so every backend (any OpenAI-compatible
server today: vLLM, Ollama, llama.cpp server, a hosted model) implements `chat` and inherits `chat_json`, which
copes with what real models do: wrap the object in prose or ```json fences, think aloud first, or forget a key.

    llm = llm_from_env()          # None unless VENDOME_LLM_BASE_URL is set
    if llm is not None:
        reply = llm.chat_json([{"role": "user", "content": "Name a gemstone as {\\"stone\\": ...}"}],
                              schema={"type": "object", "required": ["stone"]})
"""

from __future__ import annotations

import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

JSON_OBJECT: dict = {"type": "object"}
"""A schema that asks for "any JSON object": servers get `response_format={"type": "json_object"}` for it."""

_EXCERPT = 300


class LLMError(RuntimeError):
    """The model could not be reached or gave no usable reply; the message says which backend, model and why."""


class LLMReplyError(LLMError):
    """The model answered, but no reply held a usable JSON object; `last_reply` is its last answer."""

    def __init__(self, message: str, last_reply: str = "") -> None:
        super().__init__(message)
        self.last_reply = last_reply


@dataclass
class ChatResult:
    text: str
    seconds: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def _excerpt(text: str, n: int = _EXCERPT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> dict:
    """The first JSON object in `text`: fenced blocks first, then the first `{` that starts a valid object, so prose
    or a short reasoning before the object (even one holding stray braces) does not get in the way."""
    text = _THINK.sub("", text)
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                return obj
            start = candidate.find("{", start + 1)
    raise ValueError("no JSON object found in the reply")


def check_schema(obj: Any, schema: Mapping | None) -> None:
    """A light check, enough to catch a model that forgot a key: the value is an object and holds the `required`
    keys. Full JSON Schema validation is the server's job when it supports constrained decoding."""
    if not schema:
        return
    if schema.get("type", "object") == "object" and not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = [key for key in schema.get("required", ()) if key not in obj]
    if missing:
        raise ValueError(f"missing required key(s): {', '.join(missing)}")


def _json_instruction(schema: Mapping | None) -> str:
    keys = list((schema or {}).get("required", ()))
    if keys:
        return f"Reply with one JSON object only, with the keys: {', '.join(keys)}."
    return "Reply with one JSON object only."


class LLMBackend(ABC):
    """What the rest of Vendome sees of a language model."""

    name: str = "llm"
    model: str = ""

    @abstractmethod
    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0, timeout: float = 30.0,
             json_schema: dict | None = None) -> ChatResult:
        """One completion. `json_schema` asks the server for JSON (`JSON_OBJECT` for any object); backends that
        cannot constrain decoding ignore it. Raises LLMError on any transport or server failure."""

    def chat_json(self, messages: list[dict], *, schema: dict | None = None, max_tokens: int = 256, retries: int = 2,
                  timeout: float = 30.0) -> dict:
        """A dict from the model, re-asking with the parse error up to `retries` times (the first ask at temperature 0,
        the re-asks warmer, since a greedy decoder stuck in a loop would only repeat itself). `timeout` bounds the
        whole exchange, retries included, so a caller with a deadline can pass what it has left."""
        deadline = time.monotonic() + timeout
        convo = [dict(m) for m in messages]
        if not any("json" in str(m.get("content", "")).lower() for m in convo):
            convo.append({"role": "system", "content": _json_instruction(schema)})
        last_text, last_error = "", ""
        for attempt in range(retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LLMError(f"{self.name} ({self.model}): no usable JSON within {timeout:.1f}s"
                               + (f"; last error: {last_error}; last reply: {_excerpt(last_text)!r}" if last_text
                                  else ""))
            result = self.chat(convo, max_tokens=max_tokens, temperature=min(1.0, 0.3 * attempt), timeout=remaining,
                               json_schema=schema or JSON_OBJECT)
            last_text = result.text
            try:
                obj = extract_json_object(result.text)
                check_schema(obj, schema)
                return obj
            except ValueError as exc:
                last_error = str(exc)
            convo += [{"role": "assistant", "content": result.text},
                      {"role": "user", "content": f"That reply could not be used ({last_error}). "
                                                  + _json_instruction(schema)}]
        raise LLMReplyError(f"{self.name} ({self.model}): no usable JSON after {retries + 1} attempt(s): "
                            f"{last_error}; last reply: {_excerpt(last_text)!r}", last_text)


class OpenAIChat(LLMBackend):
    """Any OpenAI-compatible chat server. `base_url` ends with /v1 (http://127.0.0.1:8000/v1 for vLLM,
    http://127.0.0.1:11434/v1 for Ollama); one httpx client per instance keeps the connection alive between the
    planner's steps. If the server refuses `response_format` (HTTP 400 or 422, or an error that names it:
    llama-cpp-python's server answers 500 to a `json_schema`) the request is sent again without it, and that is
    remembered for the instance; `response_format=False` never sends it (grammar-constrained decoding can be
    several times slower on a CPU server)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 response_format: bool = True):
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.timeout = timeout
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self.response_format_ok = response_format

    def __repr__(self) -> str:
        return f"OpenAIChat({self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _response_format(json_schema: dict) -> dict:
        if not json_schema.get("properties") and not json_schema.get("required"):
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": json_schema}}

    def _post(self, payload: dict, timeout: float) -> httpx.Response:
        try:
            return self._client.post(self.url, json=payload, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise LLMError(f"{self.name} ({self.model}): no reply from {self.url} within {timeout:.1f}s") from exc
        except httpx.ConnectError as exc:
            raise LLMError(f"{self.name} ({self.model}): could not reach {self.url} ({exc})") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"{self.name} ({self.model}): request to {self.url} failed: {exc!r}") from exc

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0, timeout: float = 30.0,
             json_schema: dict | None = None) -> ChatResult:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                   "temperature": temperature}
        if json_schema is not None and self.response_format_ok:
            payload["response_format"] = self._response_format(json_schema)
        start = time.monotonic()
        response = self._post(payload, timeout)
        if "response_format" in payload and _refuses_response_format(response):
            self.response_format_ok = False
            payload.pop("response_format")
            response = self._post(payload, max(0.1, timeout - (time.monotonic() - start)))
        if response.status_code >= 400:
            raise LLMError(f"{self.name} ({self.model}): HTTP {response.status_code} from {self.url}: "
                           f"{_excerpt(response.text)}")
        try:
            body = response.json()
            text = body["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"{self.name} ({self.model}): unexpected reply from {self.url}: "
                           f"{_excerpt(response.text)}") from exc
        usage = body.get("usage") or {}
        return ChatResult(text=text, seconds=time.monotonic() - start, prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))


def llm_from_env(env: Mapping[str, str] | None = None) -> LLMBackend | None:
    """The configured backend, or None when VENDOME_LLM_BASE_URL is unset (search then runs without an LLM).
    VENDOME_LLM_MODEL names the model; the key is VENDOME_LLM_API_KEY, else OPENAI_API_KEY."""
    env = os.environ if env is None else env
    base_url = (env.get("VENDOME_LLM_BASE_URL") or "").strip()
    if not base_url:
        return None
    model = (env.get("VENDOME_LLM_MODEL") or "").strip()
    if not model:
        raise LLMError(f"VENDOME_LLM_BASE_URL is set ({base_url}) but VENDOME_LLM_MODEL is not: name the model")
    api_key = (env.get("VENDOME_LLM_API_KEY") or env.get("OPENAI_API_KEY") or "").strip() or None
    return OpenAIChat(base_url, model, api_key=api_key)


def _refuses_response_format(response: httpx.Response) -> bool:
    """Whether an error reply means "I do not take this response_format" rather than a failure of the server."""
    if response.status_code in (400, 422):
        return True
    return response.status_code >= 500 and any(w in response.text for w in ("response_format", "json_schema"))
