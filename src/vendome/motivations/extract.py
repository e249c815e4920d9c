"""Motivation extraction: a text (review, product copy, client note) in, positive and negative motivations out.

    extractor = make_extractor("rules")                 # or "local" (embedded GGUF) or "openai" (a server)
    extract_file("in.jsonl", "out.jsonl", extractor, cache=MotivationCache(ws.root / "cache" / "motivations"))

The LLM backends get a chain-of-thought style prompt (one or two short sentences of reasoning, then the answer) and
must answer a JSON object whose lists hold at most MAX_ITEMS labels of the taxonomy; `chat_json` parses and re-asks
with the error, and labels outside the taxonomy are mapped through its synonyms or dropped (and counted). Results
are cached by content hash (backend, model, prompt version and text), one JSON line each, appended as they come, so
an interrupted batch resumes where it stopped and a second run costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from vendome.features.llm import LLMBackend, LLMError, LLMReplyError
from vendome.motivations.rules import RuleExtractor
from vendome.motivations.taxonomy import LABELS, MOTIVATIONS, canonical

MAX_ITEMS = 5
MAX_TOKENS = 160          # the reasoning is one or two sentences; the answer a few labels
PROMPT_VERSION = "v1"
BACKENDS = ("rules", "local", "openai")

SCHEMA = {
    "type": "object",
    "required": ["reasoning", "positive", "negative"],
    "properties": {
        "reasoning": {"type": "string", "maxLength": 300},
        "positive": {"type": "array", "items": {"type": "string", "enum": list(LABELS)}, "maxItems": MAX_ITEMS},
        "negative": {"type": "array", "items": {"type": "string", "enum": list(LABELS)}, "maxItems": MAX_ITEMS},
    },
}

SYSTEM = (
    "You read what a client of a fashion and jewelry house wrote or what her sales associate noted, and list her "
    "motivations: the reasons she buys (positive) and the reasons she would not (negative). Use only these labels:\n"
    + "\n".join(f"- {label}: {meaning}" for label, meaning in MOTIVATIONS.items())
    + f"\nFirst think in one or two short sentences, then answer. At most {MAX_ITEMS} labels per list; a label "
    "the text does not support is wrong. Reply with one JSON object only: "
    '{"reasoning": "...", "positive": [...], "negative": [...]}'
)
# Written for the prompt (not taken from any evaluation data): the 0.5B model needs them to keep the format.
EXAMPLES = (
    ("Bought this for my sister's birthday. The silk is gorgeous but it runs small, size up.",
     {"reasoning": "A present; she loves the silk but the size is off.", "positive": ["gift", "quality"],
      "negative": ["fit"]}),
    ("Wears it to the office every week, so comfortable. Wish it came in a brighter colour; a bit pricey.",
     {"reasoning": "Worn for work and comfortable; the colour and the price hold her back.",
      "positive": ["work", "comfort"], "negative": ["colour", "value"]}),
    ("Looking for earrings for her 10th anniversary dinner. Only wears rose gold, no diamonds please.",
     {"reasoning": "An anniversary; she wants rose gold and does not want diamonds.",
      "positive": ["special occasion", "rose gold"], "negative": ["diamonds"]}),
)


@dataclass
class Motivations:
    """One text's motivations; `dropped` are labels a model gave outside the taxonomy."""

    id: str | int
    positive: list[str]
    negative: list[str]
    backend: str
    model: str = ""
    reasoning: str = ""
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False
    error: str = ""

    def line(self) -> dict:
        """The output line: {"id", "positive", "negative", "backend", ...}, with "error" when the model gave no
        usable answer for this text."""
        return {k: v for k, v in asdict(self).items() if k != "cached" and (k != "error" or v)}


class Extractor(Protocol):
    name: str
    model: str

    def extract(self, text: str) -> tuple[list[str], list[str]]: ...


class LLMExtractor:
    """Motivations from a language model behind `LLMBackend` (the embedded GGUF or any OpenAI-compatible server)."""

    def __init__(self, llm: LLMBackend, few_shot: bool = True, max_tokens: int = MAX_TOKENS, timeout: float = 120.0,
                 retries: int = 2) -> None:
        self.llm, self.few_shot, self.max_tokens = llm, few_shot, max_tokens
        self.timeout, self.retries = timeout, retries
        self.name, self.model = llm.name, llm.model
        self.last_reasoning, self.last_dropped = "", []

    def messages(self, text: str) -> list[dict]:
        convo = [{"role": "system", "content": SYSTEM}]
        if self.few_shot:
            for example, answer in EXAMPLES:
                convo += [{"role": "user", "content": example},
                          {"role": "assistant", "content": json.dumps(answer)}]
        return convo + [{"role": "user", "content": " ".join(str(text).split())[:2000]}]

    def extract(self, text: str) -> tuple[list[str], list[str]]:
        self.last_dropped = []
        try:
            reply = self.llm.chat_json(self.messages(text), schema=SCHEMA, max_tokens=self.max_tokens,
                                       retries=self.retries, timeout=self.timeout)
        except LLMReplyError as exc:                  # a reply cut off by max_tokens, often in a repetition loop
            reply = salvage(exc.last_reply)
            if reply is None:
                raise
            reply["reasoning"] = "(salvaged from a truncated reply) " + reply["reasoning"]
        self.last_reasoning = str(reply.get("reasoning", ""))[:300]
        lists = []
        for key in ("positive", "negative"):
            values = reply.get(key) or []
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list):
                raise LLMError(f"{self.name} ({self.model}): {key!r} should be a list of labels, got {values!r}")
            labels = []
            for value in values:
                label = canonical(value)
                if label is None:
                    if str(value) not in self.last_dropped:
                        self.last_dropped.append(str(value))
                elif label not in labels:
                    labels.append(label)
            lists.append(labels[:MAX_ITEMS])
        return lists[0], lists[1]


_LIST = re.compile(r'"(positive|negative)"\s*:\s*\[([^\]]*)')
_ITEM = re.compile(r'"((?:[^"\\]|\\.)*)"')


def salvage(text: str) -> dict | None:
    """The complete labels of a JSON reply cut short (no closing brackets), or None when it has no list at all."""
    found = {key: _ITEM.findall(body) for key, body in _LIST.findall(text or "")}
    if not found:
        return None
    reasoning = re.search(r'"reasoning"\s*:\s*"((?:[^"\\]|\\.)*)"', text or "")
    return {"reasoning": reasoning.group(1) if reasoning else "", "positive": found.get("positive", []),
            "negative": found.get("negative", [])}


def make_extractor(backend: str, model: str | None = None, base_url: str | None = None, threads: int = 2
                   ) -> Extractor:
    """rules: the lexicon; local: an embedded GGUF (`model` names one of LOCAL_MODELS or a .gguf path);
    openai: an OpenAI-compatible server (`base_url`, `model`, else VENDOME_LLM_BASE_URL / VENDOME_LLM_MODEL)."""
    if backend == "rules":
        return RuleExtractor()
    if backend == "local":
        from vendome.features.local_llm import LOCAL_MODELS, LlamaCppChat, fetch_model, verify

        name = model or "qwen2.5-0.5b"
        if name in LOCAL_MODELS:
            return LLMExtractor(LlamaCppChat(fetch_model(name), model=name, threads=threads))
        known = [m for m in LOCAL_MODELS.values() if Path(name).name == m.filename]
        if not Path(name).exists():
            raise LLMError(f"local model {name!r}: neither a known model ({', '.join(LOCAL_MODELS)}) nor a file")
        if known:
            verify(Path(name), known[0])
        return LLMExtractor(LlamaCppChat(name, threads=threads))
    if backend == "openai":
        from vendome.features.llm import OpenAIChat, llm_from_env

        if base_url:
            if not model:
                raise LLMError("the openai backend needs --model with --base-url")
            return LLMExtractor(OpenAIChat(base_url, model, api_key=os.environ.get("VENDOME_LLM_API_KEY"),
                                           response_format=False))
        llm = llm_from_env()
        if llm is None:
            raise LLMError("the openai backend needs --base-url and --model, or VENDOME_LLM_BASE_URL and "
                           "VENDOME_LLM_MODEL")
        return LLMExtractor(llm)
    raise ValueError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")


# ---------------------------------------------------------------------------------------------- cache
class MotivationCache:
    """Results by content hash, one JSON line each in `<folder>/motivations.jsonl`, appended and flushed per text;
    a line cut short by an interruption is skipped on the next read."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "motivations.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: dict[str, dict] = {}
        if self.path.exists():
            for raw in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(raw)
                    self._rows[row["key"]] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    @staticmethod
    def key(extractor: Extractor, text: str) -> str:
        version = PROMPT_VERSION if isinstance(extractor, LLMExtractor) else "rules"
        payload = json.dumps([extractor.name, extractor.model, version, str(text)], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict | None:
        return self._rows.get(key)

    def put(self, key: str, row: dict) -> None:
        row = {"key": key, **row}
        self._rows[key] = row
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()

    def __len__(self) -> int:
        return len(self._rows)


def extract_all(items: Iterable[tuple[str | int, str]], extractor: Extractor, cache: MotivationCache | None = None,
                progress: bool = True, total: int | None = None) -> Iterator[Motivations]:
    """Motivations of each (id, text), from the cache when it has them. A text whose replies stay unusable after
    the retries comes back empty with its `error` (not cached, so a later run tries it again); a failure of the
    backend itself (unreachable, server error) raises LLMError naming the id, after everything before was cached."""
    backend = extractor.name
    bar = tqdm(items, total=total, desc=f"motivations ({backend})", unit="text", disable=not progress)
    for item_id, text in bar:
        key = MotivationCache.key(extractor, text) if cache is not None else ""
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            yield Motivations(item_id, hit["positive"], hit["negative"], backend, hit.get("model", ""),
                              hit.get("reasoning", ""), hit.get("dropped", []), hit.get("seconds", 0.0), cached=True)
            continue
        start = time.perf_counter()
        try:
            positive, negative = extractor.extract(text)
        except LLMReplyError as exc:
            yield Motivations(item_id, [], [], backend, extractor.model, seconds=round(time.perf_counter() - start, 3),
                              error=str(exc))
            continue
        except LLMError as exc:
            raise LLMError(f"id {item_id!r}: {exc}") from exc
        found = Motivations(item_id, positive, negative, backend, extractor.model,
                            getattr(extractor, "last_reasoning", ""), list(getattr(extractor, "last_dropped", [])),
                            round(time.perf_counter() - start, 3))
        if cache is not None:
            cache.put(key, {k: v for k, v in found.line().items() if k != "id"})
        yield found


# ---------------------------------------------------------------------------------------------- files
class InputError(ValueError):
    """A bad input line; the message names the file, the line, the field and what was expected."""


def read_inputs(path: str | Path) -> list[tuple[str | int, str]]:
    """(id as given, text) of each line of a JSONL file of {"id": ..., "text": ...}, all checked before any work."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such input file")
    out, seen = [], {}
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {n}: not valid JSON ({exc.msg} at column {exc.colno}); expected "
                                 '{"id": ..., "text": ...}') from exc
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {n}: expected a JSON object {{\"id\": ..., \"text\": ...}}, "
                                 f"got {type(row).__name__}")
            if "id" not in row or row["id"] is None or str(row["id"]).strip() == "":
                raise InputError(f"{path}, line {n}, field 'id': missing or empty; expected a string or number")
            if not isinstance(row.get("text"), str):
                raise InputError(f"{path}, line {n}, field 'text': expected a string, got "
                                 f"{type(row.get('text')).__name__ if 'text' in row else 'nothing'}")
            item_id = str(row["id"])
            if item_id in seen:
                raise InputError(f"{path}, line {n}, field 'id': {item_id!r} already on line {seen[item_id]}")
            seen[item_id] = n
            out.append((row["id"], row["text"]))
    return out


def workspace_texts(ws) -> list[tuple[str, str]]:
    """Every text of a workspace's store: ("review:<review_id>", title + text), ("note:<note_id>", text) and
    ("product:<product_id>", description), in that order."""
    from vendome.data import store

    tables = store.read_tables(ws)
    out: list[tuple[str, str]] = []
    reviews = tables.get("reviews")
    if reviews is not None:
        titles = reviews["title"].fillna("").astype(str) if "title" in reviews else [""] * len(reviews)
        out += [(f"review:{i}", f"{t}. {x}" if t else str(x))
                for i, t, x in zip(reviews["review_id"], titles, reviews["text"], strict=True)]
    notes = tables.get("client_notes")
    if notes is not None:
        out += [(f"note:{i}", str(x)) for i, x in zip(notes["note_id"], notes["text"], strict=True)]
    products = tables["products"]
    if "description" in products:
        out += [(f"product:{i}", str(x)) for i, x in zip(products["product_id"], products["description"], strict=True)
                if isinstance(x, str) and x.strip()]
    return out


def extract_file(input_path: str | Path | None, output_path: str | Path, extractor: Extractor,
                 cache: MotivationCache | None = None, progress: bool = True,
                 items: list[tuple[str | int, str]] | None = None) -> dict:
    """Every input line's motivations (or those of `items`) to `output_path` (JSONL), written to a temporary file
    and moved into place at the end, so an interrupted run leaves no half-written output (its finished texts are in
    the cache)."""
    items = read_inputs(input_path) if items is None else items
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    start, cached, dropped, failed = time.perf_counter(), 0, 0, 0
    fd, tmp = tempfile.mkstemp(dir=output_path.parent, prefix=f".{output_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for found in extract_all(items, extractor, cache, progress=progress, total=len(items)):
                cached += found.cached
                dropped += len(found.dropped)
                failed += bool(found.error)
                out.write(json.dumps(found.line(), ensure_ascii=False) + "\n")
        os.replace(tmp, output_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - start
    return {"texts": len(items), "cached": cached, "extracted": len(items) - cached - failed, "failed": failed,
            "dropped_labels": dropped,
            "seconds": round(seconds, 2), "backend": extractor.name, "model": extractor.model,
            "output": str(output_path)}
