# One entry point for every check; CI runs the same targets (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench soak clean console browser

# Everything danlu and its tests need, in a virtual environment of its own.
# llama-cpp-python compiles from source the first time (10-20 min on 2 cores);
# pip caches the wheel, so later installs take seconds.
# llama.cpp is built for a portable x86-64 (AVX2/FMA/F16C) rather than -march=native: on
# CPUs with AMX tiles, a native build crashes (general protection fault in ggml-cpu) where
# the OS does not grant the tile state, and the built wheel is cached and reused.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/danlu serve

test: install browser
	$(BIN)/python -m pytest

# The console's browser tests drive Debian's chromium (never a Playwright browser download),
# with a CJK font so pages in 中文 render (and their screenshots show) real characters.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei)

# Rebuild the web console into src/danlu/console/dist (needs Node.js 20 and npm). The built
# files are committed, so users never need Node; a test checks they match the sources.
console:
	cd console && npm ci --no-audit --no-fund && npm run build

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python bench/embedded_tokens_per_second.py
	$(BIN)/python bench/hub_throughput.py
	$(BIN)/python bench/builder_overhead.py
	$(BIN)/python bench/gateway_vs_litellm.py
	$(BIN)/python bench/limits_overhead.py
	$(BIN)/python bench/knowledge_quality.py
	$(BIN)/python bench/knowledge_ingestion.py
	$(BIN)/python bench/knowledge_latency.py
	$(BIN)/python bench/refinery_vs_peft.py
	$(BIN)/python bench/insight_queries.py
	$(BIN)/python bench/console_canvas.py --sizes 50,200,500

# Long runs behind the `benchmark` marker: danlu's memory over 100,000 gateway requests
# (needs wrk: apt-get install wrk).
soak: install
	$(BIN)/python -m pytest -m benchmark tests/bench -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
