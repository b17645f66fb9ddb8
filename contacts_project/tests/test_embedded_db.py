import os

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
