# gridgov — the two commands (`make run`, `make test`) do all set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_VERSION ?= 15
ASSETS := maps/assets
STAMP := $(VENV)/.installed

.PHONY: setup os-packages venv assets run test test-only lint bench clean db-up db-down

setup: os-packages venv assets

# OS packages: PostGIS for the database, Chromium and a CJK font for the browser tests. Only when missing, only as root.
os-packages:
	@missing=""; \
	[ -x /usr/lib/postgresql/$(PG_VERSION)/bin/pg_ctl ] || missing="$$missing postgresql-$(PG_VERSION)"; \
	[ -f /usr/share/postgresql/$(PG_VERSION)/extension/postgis.control ] || missing="$$missing postgresql-$(PG_VERSION)-postgis-3"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	[ -n "$$(fc-list :lang=zh 2>/dev/null)" ] || missing="$$missing fonts-wqy-zenhei"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing OS packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "missing OS packages:$$missing — run as root: apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

assets: $(ASSETS)/node_modules/.package-lock.json

$(ASSETS)/node_modules/.package-lock.json: $(ASSETS)/package.json $(ASSETS)/package-lock.json
	cd $(ASSETS) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

run: setup
	$(VENV)/bin/gridgov db up
	$(VENV)/bin/gridgov demo load --scale demo
	$(VENV)/bin/gridgov users ensure-demo
	$(VENV)/bin/gridgov serve

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gis grids address_library supervision maps api synthetic
	$(VENV)/bin/lint-imports

test: setup lint
	$(VENV)/bin/pytest --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

test-only: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.run

db-up: venv
	$(VENV)/bin/gridgov db up

db-down: venv
	$(VENV)/bin/gridgov db down

clean:
	-$(VENV)/bin/gridgov db down
	rm -rf $(VENV) .gridgov test-artifacts $(ASSETS)/node_modules
