# `make demo` and `make test` each set everything up from a fresh clone first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup dev demo test lint bench screenshots clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# What tests need, plus the linter (the `dev` extra).
dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/sluice-tui demo

test: setup
	$(PY) -m pytest --basetemp=$(VENV)/test-tmp -n 4 --dist loadfile --durations=10

lint: dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV)

screenshots: setup
	$(PY) -m sluice_tui.demo.screenshots screenshots

# Each prints its figures and the ratio against Celery's own components.
bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PY) -m bench.ingest
	$(PY) -m bench.memory
	$(PY) -m bench.scaling
	$(PY) -m bench.drain
	$(PY) -m bench.journal
	$(PY) -m bench.ui
	$(PY) -m bench.long_retry
	$(PY) -m bench.detail
	$(PY) -m bench.cluster_views
	$(PY) -m bench.sustained
	$(PY) -m pytest -m bench tests/test_bench.py tests/test_bench_sustained.py tests/test_journal_core.py
