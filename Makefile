# gridgov — the two commands (`make run`, `make test`) do all set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_VERSION ?= 15
ASSETS := maps/assets
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# `make lock` only: the uv release that writes the lock, and the interpreter and platform it locks for (this machine
# kind: CPython 3.11.7 on x86_64 Linux; soupsieve, through libpysal and beautifulsoup4, needs 3.11.5 or later).
UV_VERSION ?= 0.13.8
LOCK_PYTHON ?= 3.11.7
LOCK_PLATFORM ?= x86_64-unknown-linux-gnu

.PHONY: setup os-packages venv lock assets run test test-only test-at lint fmt bench clean db-up db-down

setup: os-packages venv assets

# OS packages: PostGIS for the database, Chromium and a CJK font for the browser tests, libfaketime for the clock runs. Only when missing, only as root.
os-packages:
	@missing=""; \
	[ -x /usr/lib/postgresql/$(PG_VERSION)/bin/pg_ctl ] || missing="$$missing postgresql-$(PG_VERSION)"; \
	[ -f /usr/share/postgresql/$(PG_VERSION)/extension/postgis.control ] || missing="$$missing postgresql-$(PG_VERSION)-postgis-3"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	[ -n "$$(fc-list :lang=zh 2>/dev/null)" ] || missing="$$missing fonts-wqy-zenhei"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
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

# The venv is requirements.lock, every package (transitive ones, pip, setuptools and wheel included) at its locked
# version, each file checked against the lock's hashes; then the project itself, editable, with no dependency
# resolution, no build isolation and no index, so nothing unpinned is ever downloaded. First, a lock that no longer
# matches pyproject.toml stops everything (tools/check_lock.py, system python3, before the venv is touched).
# pip is pinned in the lock rather than upgraded to whatever is newest: the venv's bundled pip installs the locked
# one along with the rest, so every machine ends with the same pip.
$(STAMP): pyproject.toml $(LOCK) tools/check_lock.py
	@$(PYTHON) tools/check_lock.py
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation --no-index -e .
	@touch $(STAMP)

# Refresh requirements.lock after changing a dependency in pyproject.toml. uv (a pinned release, in a throwaway venv,
# never in .venv) resolves pyproject.toml with every extra plus the build requirements and pip, keeps the versions the
# lock already has unless pyproject.toml now needs others (`make lock UPGRADE=1`: the newest of everything), writes
# the sha256 of every file of each pinned version, and tools/check_lock.py records pyproject's digest in the header.
lock:
	@set -o pipefail; tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/uv" && "$$tmp/uv/bin/pip" install -q uv==$(UV_VERSION) && \
	$(PYTHON) tools/check_lock.py --inputs | "$$tmp/uv/bin/uv" pip compile pyproject.toml - --all-extras \
	  --generate-hashes --python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) \
	  --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) -o $(LOCK) >/dev/null && \
	$(PYTHON) tools/check_lock.py --stamp && echo "$(LOCK) written; \`make setup\` installs it"

assets: $(ASSETS)/node_modules/.package-lock.json

$(ASSETS)/node_modules/.package-lock.json: $(ASSETS)/package.json $(ASSETS)/package-lock.json
	cd $(ASSETS) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

run: setup
	$(VENV)/bin/gridgov db up
	$(VENV)/bin/gridgov demo load --scale demo
	$(VENV)/bin/gridgov demo simulate --days 30 --review-backlog-days 5
	$(VENV)/bin/gridgov users ensure-demo
	$(VENV)/bin/gridgov serve

lint: venv assets
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gis grids address_library supervision planning maps api synthetic
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture
	cd maps && assets/node_modules/.bin/eslint --config assets/eslint.config.js static

# Format and fix what can be fixed mechanically (the pre-commit hooks run the same on the files of a commit).
fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint
	$(VENV)/bin/pytest --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

# The tests whose answers involve dates and times, run with the machine's clock (Python, PostgreSQL and Chromium
# alike) set to INSTANT and the machine's zone to GRIDGOV_TEST_TZ:
#   make test-at INSTANT=2027-02-10T10:00+08:00 [GRIDGOV_TEST_TZ=America/Los_Angeles] [PYTEST_ARGS=tests]
DATE_SENSITIVE_TESTS := tests/supervision tests/maps tests/synthetic tests/gis tests/e2e tests/api/test_workflow_api.py \
	tests/api/test_serve_jobs.py tests/api/test_auth.py tests/api/test_heatmap_api.py tests/api/test_cli_db.py \
	tests/api/test_permissions.py tests/api/test_openapi_schemas.py tests/api/test_kpi.py tests/api/test_tiles.py \
	tests/api/test_live.py tests/api/test_open311.py tests/api/test_csv_export.py tests/api/test_task_photos.py \
	tests/planning tests/api/test_workload_api.py tests/api/test_staffing_api.py tests/api/test_grid_versions_api.py \
	tests/api/test_inspections_api.py tests/api/test_public_inspections.py tests/api/test_inspection_results_api.py \
	tests/api/test_public_pages.py tests/api/test_credit_api.py tests/api/test_routes_api.py \
	tests/api/test_inspection_pages.py tests/api/test_inspection_directory_api.py tests/security/test_attack_writes.py
test-at: setup
	@[ -n "$(INSTANT)" ] || { echo "usage: make test-at INSTANT=2027-02-10T10:00+08:00"; exit 2; }
	tools/run-at "$(INSTANT)" $(VENV)/bin/pytest --junitxml=test-artifacts/junit-at.xml $(or $(PYTEST_ARGS),$(DATE_SENSITIVE_TESTS))

test-only: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# `make bench ONLY="Geocoder accuracy"`: only the sections whose name contains ONLY (after the demo load).
bench: setup
	$(PY) -m benchmarks.run $(if $(ONLY),--only "$(ONLY)")

db-up: venv
	$(VENV)/bin/gridgov db up

db-down: venv
	$(VENV)/bin/gridgov db down

clean:
	-$(VENV)/bin/gridgov db down
	rm -rf $(VENV) .gridgov test-artifacts $(ASSETS)/node_modules
