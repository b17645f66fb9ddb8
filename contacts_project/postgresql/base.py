"""Django's PostgreSQL backend with a health check that costs no round trip, and prepared lookups.

``CONN_HEALTH_CHECKS`` makes Django check a persistent connection before a
request first uses it, so the first request after a database restart, or
after an operator killed the backend, reconnects instead of failing. Django
checks with ``SELECT 1``: a round trip on every request, which on a
primary-key read was one of its four statements.

An idle connection receives nothing unless the server has something to say,
and a server that ends a session says so: the backend sends its FATAL error
and closes the socket. So a socket with nothing to read is a live
connection, which ``select`` with a zero timeout tells without a round trip.
When something did arrive (the server's goodbye, or rarely a parameter change
announced by a reload), or the connection is not idle, Django's ``SELECT 1``
decides, and reads whatever was waiting.

What neither check can see is a peer that vanished without closing (a cut
network path): ``SELECT 1`` would then wait for TCP to give up, and the poll
says usable and the request's own query waits instead. Both end in the same
503 (``contacts_project.api.exceptions``).

``prepared_cursor()`` is a cursor whose statements are prepared on the server,
once per connection (psycopg keeps them by query text and parameter types,
the 100 most recent). Django sends every other statement with client-side
binding, so PostgreSQL plans it on every execution, and planning a primary-key
read of ``contacts_contact`` weighs each of its ~20 indexes: measured on the
bench data, 99 µs of PostgreSQL CPU per lookup unprepared, 21 µs prepared
(48 → 30 µs in the client). Statements whose plan should depend on their
values (a segment's count) are still planned each time.

``fetch_prepared()`` is what ``DetailLookup`` (every ``get_object()`` and the
plain read) calls: the rows of a prepared statement, run on one psycopg
cursor kept for the connection when nothing observes the queries, instead of
the cursor objects and wrapper layers ``cursor()`` builds per call. On a
primary-key read it took the client's CPU from 79 to 54 µs, and
``GET /v1/contacts/{id}`` from 50% to 52% of ``/livez``'s rate (wrk, three
runs of each, alternating).

``timestamptz`` values are read by ``UtcTimestamptzLoader`` when the
connection's time zone is UTC (``USE_TZ`` with no per-database
``TIME_ZONE``, this project's settings): the same values, parsed by
``datetime.fromisoformat`` instead of psycopg's regular expression.
"""

import datetime
import functools
import select

import psycopg
from django.db.backends.postgresql import base, operations
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapt, pq


class UtcTimestamptzLoader(BaseTzLoader):
    """Django's ``timestamptz`` loader for a UTC session, with the common case parsed in C.

    Every contact carries two timestamps, so a page of 100 loads 200 of
    them, and Django's loader parses each with psycopg's regular expression
    in Python: 6% of a list page's CPU. A UTC session sends them as
    ``2026-11-27 23:30:01.123456+00``, which ``fromisoformat`` reads, with
    ``datetime.UTC`` as its zone, as Django's loader would give it. Anything
    else (``infinity``, a BC date, a year past 9999, another offset) goes
    to Django's loader, which answers or refuses it as before.
    """

    timezone = datetime.UTC

    def load(self, data):
        try:
            value = datetime.datetime.fromisoformat(str(data, "ascii"))
        except ValueError:
            return super().load(data)
        if value.tzinfo is not datetime.UTC:
            return super().load(data)
        return value


@functools.lru_cache
def _with_utc_timestamps(adapters: adapt.AdaptersMap) -> adapt.AdaptersMap:
    """Django's adapters for the connection, with ``UtcTimestamptzLoader`` for ``timestamptz``."""
    adapters = adapt.AdaptersMap(adapters)
    adapters.register_loader("timestamptz", UtcTimestamptzLoader)
    return adapters


class PreparedCursor(base.ServerBindingCursor):
    """A server-binding cursor that prepares what it executes (psycopg caches the statements per connection)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        # Django reads a client-side cursor's own text; a prepared one holds
        # $1 placeholders, so the values are bound here for the query log.
        if isinstance(cursor, PreparedCursor):
            return self.compose_sql(sql, params)
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # fetch_prepared()'s and fetch_all()'s cursors (by ``prepared``), on the current connection.
        self._kept_cursors = {}

    def get_connection_params(self):
        params = super().get_connection_params()
        # Django passes None, which turns preparing off for the whole connection,
        # even for a statement executed with prepare=True. psycopg's default
        # instead: its client-side cursors, Django's, never prepare anything.
        if params.get("prepare_threshold") is None:
            params["prepare_threshold"] = 5
        # Django's create_cursor() registers its own loader on any cursor whose
        # connection's loader has another ``timezone``; this one's is UTC.
        if self.timezone is datetime.UTC and "context" in params:
            params["context"] = _with_utc_timestamps(params["context"])
        return params

    def prepared_cursor(self):
        """``cursor()`` (health check, error wrapping, query logging and execute wrappers included), prepared."""
        wrapper = self.cursor()
        wrapper.cursor.close()
        wrapper.cursor = PreparedCursor(self.connection)
        return wrapper

    def fetch_prepared(self, sql: str, params: list) -> list[tuple]:
        """Every row of ``sql`` prepared on the server: ``prepared_cursor()``'s answer, with less client CPU.

        When nothing observes the queries (no ``execute_wrapper``, no query
        log), the statement runs on one psycopg cursor kept for the
        connection, skipping the per-call cursor objects and wrapper layers
        that ``cursor()`` builds; the health check, thread and broken-
        transaction checks and the error wrapping are the same.
        """
        return self._fetch_kept(sql, params, prepared=True)

    def fetch_all(self, sql: str, params: list) -> list[tuple]:
        """Every row of ``sql``, bound as ``cursor()`` binds it, on a kept cursor as ``fetch_prepared()`` runs it.

        For a hot statement whose plan should depend on its values, so is not
        prepared: a segment's count, where building and closing the cursor
        and its wrapper took about 6% of a segment read in process (py-spy).
        """
        return self._fetch_kept(sql, params, prepared=False)

    def _fetch_kept(self, sql: str, params: list, *, prepared: bool) -> list[tuple]:
        if self.execute_wrappers or self.queries_logged:
            with self.prepared_cursor() if prepared else self.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        self.validate_no_broken_transaction()
        with self.wrap_database_errors:
            cursor = self._kept_cursors.get(prepared)
            if cursor is None or cursor.connection is not self.connection or cursor.closed:
                # create_cursor(): the cursor cursor() would wrap, time zone loader included.
                cursor = self._kept_cursors[prepared] = (
                    PreparedCursor(self.connection) if prepared else self.create_cursor()
                )
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _close(self):
        self._kept_cursors = {}
        return super()._close()

    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        pgconn = connection.pgconn
        if pgconn.status == pq.ConnStatus.OK and pgconn.transaction_status == pq.TransactionStatus.IDLE:
            try:
                readable, _, _ = select.select([pgconn.socket], [], [], 0)
            except (OSError, ValueError, psycopg.Error):
                return False
            if not readable:
                return True
        return super().is_usable()
