# Steward: `make run` (embedded demo) and `make test` (real servers + every test) work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
LOCK := requirements/dev.lock
STAMP := $(VENV)/.installed

# Type-checked packages (settings in pyproject's [tool.mypy]); PYTHONPATH lets the Django plugin import the settings.
MYPY_PATHS := steward ledger accounts catalog lineage sources governance workspaces connectors compliance interop frontend steward_client
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install run test test-fast services services-stop browser bench lint fmt lock schema docs migrate clean

NPM_STAMP := frontend/node_modules/.installed

install: $(STAMP) $(NPM_STAMP)

$(NPM_STAMP): frontend/package-lock.json
	@npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	@touch $(NPM_STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q "uv==$(UV_VERSION)"
	@$(UV) pip install -q --python $(PY) -r $(LOCK)
	@$(UV) pip install -q --python $(PY) --no-deps -e .
	@touch $(STAMP)
	@echo "[install] virtualenv ready in $(VENV)"

run: install
	@bash scripts/run.sh

services:
	@bash scripts/services/all.sh start

services-stop:
	@bash scripts/services/all.sh stop

# Debian's chromium for the end-to-end browser tests (tests/browser).
browser:
	@bash scripts/browser.sh

test: install services browser
	@$(VENV)/bin/pytest

# Skips nothing; just does not (re)start servers: for a developer whose servers are already up.
test-fast: install
	@$(VENV)/bin/pytest -x -q

bench: install services
	@$(PY) bench/search.py --backend database,elasticsearch
	@$(PY) bench/lineage.py
	@$(PY) bench/authorize.py --profile
	@$(PY) bench/peers/opa.py
	@$(PY) bench/workspaces.py
	@$(PY) bench/compliance.py
	@$(PY) bench/crawl.py

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(PY) manage.py makemigrations --check --dry-run -v0
	@$(VENV)/bin/mypy $(MYPY_PATHS)

fmt: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

lock: install
	@$(UV) pip compile -q pyproject.toml --extra dev -o requirements/dev.lock --python-version 3.11
	@$(UV) pip compile -q pyproject.toml -o requirements/base.lock --python-version 3.11

schema: install
	@STEWARD_STATE_DIR=$$(mktemp -d) $(PY) manage.py spectacular --file docs/openapi.yaml --validate --fail-on-warn
	@git diff --stat -- docs/openapi.yaml

docs: install schema
	@$(PY) scripts/readme_config.py

migrate: install
	@$(PY) manage.py migrate

clean:
	@rm -rf .state
