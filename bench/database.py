"""The bench's database: a database of its own on the configured server.

A 1.9M-contact data set does not belong in the development database, so the
bench creates ``contacts_bench`` (``--database``) beside it on the same server
(the embedded PostgreSQL by default, or ``DATABASE_URL``'s), migrates it, and
points this process's connection at it, the way Django's test runner points
its connection at a test database. Every subprocess (gunicorn, import,
export, psql) gets the same database through ``database_url()`` / ``dsn()``.
"""

from urllib.parse import quote

from django.core.management import call_command
from django.db import connection


def current_name() -> str:
    return connection.settings_dict["NAME"]


def use_database(name: str, *, migrate: bool = True) -> None:
    """Create ``name`` on the current server when missing, switch to it, and migrate it."""
    # The bench's own connection runs builds, VACUUM and COPY: no web timeout.
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["options"] = "-c statement_timeout=0"
    if name != current_name():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
        connection.close()
        connection.settings_dict["NAME"] = name
    connection.close()  # reconnect with the options above
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)


def database_url() -> str:
    """A ``DATABASE_URL`` for the current database (a Unix socket directory is percent-encoded)."""
    settings = connection.settings_dict
    user = quote(settings.get("USER") or "", safe="")
    password = settings.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host = quote(settings.get("HOST") or "", safe="")
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(settings['NAME'], safe='')}"


def dsn() -> dict:
    """Keyword arguments of ``psycopg.connect`` for the current database."""
    settings = connection.settings_dict
    params = {"dbname": settings["NAME"], "user": settings.get("USER") or None}
    for key, name in (("HOST", "host"), ("PORT", "port"), ("PASSWORD", "password")):
        if settings.get(key):
            params[name] = str(settings[key])
    return {key: value for key, value in params.items() if value is not None}


def psql_environment() -> dict[str, str]:
    """libpq environment variables naming the current database (for psql)."""
    names = {"dbname": "PGDATABASE", "user": "PGUSER", "host": "PGHOST", "port": "PGPORT", "password": "PGPASSWORD"}
    return {names[key]: value for key, value in dsn().items()}


def server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    return f"PostgreSQL {version.split()[0]} (shared_buffers {shared_buffers})"
