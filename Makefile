# amqplite: two commands set everything up.
#   make run   start the broker on config/amqplite.yaml (ARGS="--port 5673" to override)
#   make test  create .venv, install everything, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-long fuzz lint format bench bench-micro clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/amqplite serve --config config/amqplite.yaml $(ARGS)

# The dashboard test drives a real headless Chromium; install Debian's package when missing
# (CI runs as root). Without it that one test skips with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium could not be installed; the dashboard test will be skipped" )

# In CI (CI=true) or with AMQPLITE_WITH_RABBITMQ=1, a real RabbitMQ is installed and started
# so the conformance scenarios run against the reference as well as against amqplite.
test: $(STAMP) chromium
	@extra=""; \
	if [ "$${CI:-}" = true ] || [ "$${AMQPLITE_WITH_RABBITMQ:-}" = 1 ]; then \
	  extra=$$(bash tests/support/start_rabbitmq.sh); fi; \
	env $$extra $(PY) -m pytest -q -m "not long"

test-long: $(STAMP)
	$(PY) -m pytest -q -m long

# The long fuzz campaigns (tests/hostile/test_fuzz.py; figures in docs/reliability.md):
# FUZZ_INPUTS inputs through the codec in-process, FUZZ_LIVE_INPUTS connections to a live broker.
FUZZ_INPUTS ?= 1000000
FUZZ_LIVE_INPUTS ?= 20000
fuzz: $(STAMP)
	AMQPLITE_FUZZ_INPUTS=$(FUZZ_INPUTS) AMQPLITE_FUZZ_LIVE_INPUTS=$(FUZZ_LIVE_INPUTS) \
	  $(PY) -m pytest -q -s -p no:cacheprovider -m fuzz tests/hostile/test_fuzz.py

lint: $(STAMP)
	$(VENV)/bin/ruff check amqplite tests examples
	$(VENV)/bin/ruff format --check amqplite tests examples
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format amqplite tests examples
	$(VENV)/bin/ruff check --fix amqplite tests examples

# Load test against a broker (see docs/performance.md), e.g.
#   make bench BENCH_ARGS="e2e --url amqp://guest:guest@127.0.0.1:5673/ --compare amqp://guest:guest@127.0.0.1:5672/"
bench: $(STAMP)
	$(VENV)/bin/amqplite bench $(BENCH_ARGS)

# In-process micro-benchmarks of the hot functions; MICRO_ARGS="--compare-ref HEAD~1" for ratios.
bench-micro: $(STAMP)
	$(PY) -m amqplite.bench.micro $(MICRO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis data
