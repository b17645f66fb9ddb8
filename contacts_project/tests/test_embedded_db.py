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
