# amqplite: two commands set everything up.
#   make run   start the broker on config/amqplite.yaml
#   make test  create .venv, install everything, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-long lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/amqplite serve --config config/amqplite.yaml

test: $(STAMP)
	$(PY) -m pytest -q -m "not long"

test-long: $(STAMP)
	$(PY) -m pytest -q -m long

lint: $(STAMP)
	$(VENV)/bin/ruff check amqplite tests examples
	$(VENV)/bin/ruff format --check amqplite tests examples
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format amqplite tests examples
	$(VENV)/bin/ruff check --fix amqplite tests examples

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis data
