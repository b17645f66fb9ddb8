"""``UtcTimestamptzLoader``: the connection's timestamptz loader gives what Django's own gives."""

import datetime

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from contacts_project.postgresql.base import UtcTimestamptzLoader

TIMESTAMPTZ = psycopg.postgres.types["timestamptz"].oid

READABLE = [
    "2026-11-27 23:30:01.123456+00",
    "2026-11-27 23:30:01.1+00",
    "2026-11-27 23:30:01.12345+00",
    "2026-11-27 23:30:01+00",
    "2026-06-01 12:00:00.5+05:30",  # sent back in the session's zone, UTC
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]
UNREADABLE = ["infinity", "-infinity", "0044-03-15 00:00:00+00 BC", "10000-01-01 00:00:00+00"]


def _load(literal: str, *, djangos: bool):
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        if djangos:
            register_tzloader(connection.timezone, cursor)
        cursor.execute("SELECT %s::timestamptz", [literal])
        return cursor.fetchone()[0]


def test_the_connection_reads_timestamps_with_it(db):
    connection.ensure_connection()

    assert connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT) is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        assert cursor.fetchone()[0].tzinfo is datetime.UTC


@pytest.mark.parametrize("literal", READABLE)
def test_it_reads_what_djangos_loader_reads(db, literal):
    ours, djangos = _load(literal, djangos=False), _load(literal, djangos=True)

    assert ours == djangos
    assert ours.tzinfo is djangos.tzinfo is datetime.UTC
    assert ours.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("literal", UNREADABLE)
def test_what_django_cannot_read_it_refuses_the_same_way(db, literal):
    with pytest.raises(psycopg.DataError) as djangos:
        _load(literal, djangos=True)
    with pytest.raises(psycopg.DataError) as ours:
        _load(literal, djangos=False)

    assert str(ours.value) == str(djangos.value)
