# One entry point for every check; CI runs the same targets (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench soak clean

# Everything danlu and its tests need, in a virtual environment of its own.
# llama-cpp-python compiles from source the first time (10-20 min on 2 cores);
# pip caches the wheel, so later installs take seconds.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/danlu serve

test: install
	$(BIN)/python -m pytest

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

# Long runs behind the `benchmark` marker: danlu's memory over 100,000 gateway requests
# (needs wrk: apt-get install wrk).
soak: install
	$(BIN)/python -m pytest -m benchmark tests/bench -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
