# speechattn: every target sets itself up on a fresh machine (Python 3.11 + Debian packages).
#   make demo   run the main job on the embedded offline corpus
#   make test   ruff + the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the project needs: speech synthesizers and WordNet's example sentences for the
# offline corpus, Chromium for the report's browser test.
DEB_PACKAGES := espeak-ng flite wordnet-base chromium
DEMO ?= full
EXP ?= exp/demo
ARGS ?=

.PHONY: setup sysdeps test lint demo lock clean

setup: $(STAMP) sysdeps

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements.lock -e '.[dev,bench]'
	@touch $@

sysdeps:
	@bash scripts/sysdeps.sh $(DEB_PACKAGES)

lint: $(STAMP)
	$(BIN)/ruff check speechattn recipes tests benchmarks scripts

test: setup lint
	$(BIN)/python -m pytest -q --durations=12 --doctest-modules tests speechattn $(ARGS)

demo: setup
	$(BIN)/python -m speechattn demo --mode $(DEMO) --exp $(EXP) $(ARGS)

lock: $(STAMP)
	@{ head -3 requirements.lock; $(BIN)/uv pip freeze --python $(BIN)/python | grep -v -E '^(uv|speechattn)==|^-e '; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
