# Jastipin — `make run` (installs, migrates, seeds the demo, serves) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck i18n-check i18n-sync migrate demo install clean bench lock

# Exact versions with hashes from the lock file, then the package itself without
# resolving anything again. `make lock` rewrites the lock files after pyproject changes.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

lock:
	test -x $(VENV)-lock/bin/pip-compile || ($(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/pip install --quiet pip-tools)
	$(VENV)-lock/bin/pip-compile $(LOCK_FLAGS) -o requirements.lock pyproject.toml
	$(VENV)-lock/bin/pip-compile $(LOCK_FLAGS) --extra dev -o requirements-dev.lock pyproject.toml

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
	$(BIN)/python scripts/bench_memory.py

clean:
	rm -rf $(VENV) $(VENV)-lock var .pytest_cache .mypy_cache .ruff_cache
