# Jastipin — `make run` (installs, migrates, seeds the demo, serves) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck i18n-check i18n-sync migrate demo install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/jastipin db upgrade

demo: migrate
	$(BIN)/jastipin demo

run: demo
	$(BIN)/jastipin serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

i18n-check: $(STAMP)
	$(BIN)/python scripts/i18n.py check

i18n-sync: $(STAMP)
	$(BIN)/python scripts/i18n.py sync

test: $(STAMP) lint typecheck i18n-check
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench_webhook.py
	$(BIN)/python scripts/bench_broadcast.py --recipients 10000 --cap 80 --cap 1000
	$(BIN)/python scripts/bench_rush.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
