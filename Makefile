# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py demo

# A worker per core (pytest-xdist): the rule is a suite under 10 minutes, and serial it takes
# some 18 on CI's 2 cores.
# PYTEST_ARGS="-n 0" runs it in this one process.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# BENCH_SCALE=year: only the year-sized run (bench/bench_year.py), half an hour or more.
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(filter year,$(BENCH_SCALE)),year,)

screenshots: $(STAMP)
	$(BIN)/python manage.py screenshots

clean:
	rm -rf .data staticfiles
