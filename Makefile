# Every target creates and uses .venv by itself.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SAMPLE  = .etl4all/sample
SOURCE ?= $(SAMPLE)
ARGS   ?=

.PHONY: venv run sample test test-fast lint docs bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: the whole job on the embedded defaults (sample files, offline geocoder, DuckDB);
## sample files are generated only for the default SOURCE, never into a folder you name
run: venv
	@if [ "$(SOURCE)" = "$(SAMPLE)" ] && [ ! -d $(SAMPLE) ]; then \
	  $(BIN)/etl4all sample $(SAMPLE) --files 5 --points 20000 --dirty-rate 0.02 --duplicate-rate 0.05; \
	fi
	$(BIN)/etl4all run $(SOURCE) $(ARGS)

## test: the whole test suite (needs MariaDB, PostgreSQL, Redis and RabbitMQ on loopback), on
## four pytest-xdist workers (most tests wait on servers and subprocesses, not the CPU): the
## fault scenarios, which wait out real outages, run in two queues of one worker each while
## the other workers run the rest
test: venv
	$(BIN)/pytest -n 4 --dist loadgroup $(ARGS)

## test-fast: unit tests only, no services
test-fast: venv
	$(BIN)/pytest -m "not mysql and not postgres and not redis and not rabbitmq and not slow" $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy etl4all

## docs: the documentation site (mkdocs.yml, docs/) into site/; --strict fails on a broken
## link or anchor between the pages
docs: venv
	$(BIN)/mkdocs build --strict

## bench: every benchmark against the DESIGN.md budget (~30 min; needs MariaDB, and RabbitMQ
## and Redis for scale.py); writes bench/results/*.json and docs/BENCHMARKS.md. Installs the
## bench extra (dlt, geopy: the anchors of bench/e2e.py) into .venv; `make test` never needs it
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run_all.py $(ARGS)

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

clean:
	rm -rf $(VENV) .etl4all etl4all.duckdb .pytest_cache .mypy_cache .ruff_cache site
