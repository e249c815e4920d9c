"""A real language model end to end: the pinned Qwen2.5 0.5B, embedded through llama-cpp-python, and the same GGUF
behind llama.cpp's own OpenAI-compatible server, started by the test and reached through `vendome motivations
extract --backend openai`. `make test` installs both (`make llm`) and sets VENDOME_REQUIRE_LLM=1, so CI fails
rather than skips when they are missing; elsewhere these tests skip with the command that enables them."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from vendome.cli import app
from vendome.features.local_llm import LOCAL_MODELS, cache_dir
from vendome.motivations.extract import make_extractor
from vendome.motivations.taxonomy import LABELS

MODEL = LOCAL_MODELS["qwen2.5-0.5b"]
GIFT = "I bought this necklace as a birthday gift for my mother. She loved it, though the chain runs short."
WORK = "Comfortable enough to wear at the office all day, and the fabric feels expensive."


def _available() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed"
    if not (cache_dir() / MODEL.filename).exists():
        return f"{MODEL.name} is not in {cache_dir()}"
    return None


missing = _available()
if missing and os.environ.get("VENDOME_REQUIRE_LLM") == "1":
    pytest.fail(f"VENDOME_REQUIRE_LLM=1 but {missing}: run `make llm`", pytrace=False)
pytestmark = pytest.mark.skipif(missing is not None, reason=f"{missing}: run `make llm`")


@pytest.fixture(scope="module")
def embedded():
    return make_extractor("local", model=MODEL.name, threads=2)


def test_the_embedded_model_answers_in_the_taxonomy(embedded):
    assert embedded.name == "local" and embedded.model == MODEL.name
    positive, negative = embedded.extract(GIFT)
    assert set(positive) | set(negative) <= set(LABELS)
    assert "gift" in positive, (positive, negative, embedded.last_reasoning)
    assert embedded.last_reasoning


def test_a_llama_cpp_server_answers_the_cli_openai_backend(tmp_path):
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed in the finally
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(cache_dir() / MODEL.filename), "--model_alias",
         "qwen", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
         "--chat_format", "chatml"], stdout=log, stderr=subprocess.STDOUT)    # a pipe would fill and block it
    try:
        deadline, ready = time.monotonic() + 300, False
        while not ready and time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
            assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-2000:]
        assert ready, "the llama.cpp server did not answer /v1/models within 300 s"
        src = tmp_path / "in.jsonl"
        src.write_text(json.dumps({"id": "g", "text": GIFT}) + "\n" + json.dumps({"id": "w", "text": WORK}) + "\n")
        out = tmp_path / "out.jsonl"
        result = CliRunner().invoke(app, ["motivations", "extract", "--backend", "openai", "--base-url",
                                          f"http://127.0.0.1:{port}/v1", "--model", "qwen", "-i", str(src), "-o",
                                          str(out), "-w", str(tmp_path / "ws")])
        assert result.exit_code == 0, result.output
        lines = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
        assert all(x["backend"] == "openai" and x["model"] == "qwen" for x in lines.values())
        assert "gift" in lines["g"]["positive"], lines
        # the 0.5B reads the office text poorly (fit, value): its quality is the benchmark's business, not this test's
        assert lines["w"]["positive"] + lines["w"]["negative"], lines
        assert all(set(x["positive"]) | set(x["negative"]) <= set(LABELS) for x in lines.values())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
