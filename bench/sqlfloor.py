"""The database floor of an operation: the SQL its view runs, replayed directly with psycopg.

``capture`` sends requests through the whole Django stack in this process
(the test client: same URL, same body, same key), after one unrecorded
warm-up request, and records every statement the database connection
executes, with its parameters bound (``connection.execute_wrapper``). A write is captured inside a transaction
that is rolled back, so nothing persists and its statements can be replayed
once, for real.

``replay`` then runs those statements with a plain psycopg connection, one
captured request after another, on as many connections as the HTTP load
used, and times each request's statements together: what the operation costs
the database, with no HTTP, no Django and no DRF. Each statement is sent
as the view sent it: with its values bound in the text (Django's client-side
binding), or, for the statements the view prepares on the server (the
one-object lookup, ``prepared_cursor()``), prepared once per connection with
its parameters, so the floor gets the same planning savings the view does.
"""

import threading
import time
from dataclasses import dataclass

import psycopg
from django.db import connection, transaction
from django.test import Client, override_settings

from bench.stats import percentile
from contacts_project.postgresql.base import PreparedCursor

# A threshold no replay reaches: None would turn off even prepare=True.
PREPARE_EXPLICITLY = 1_000_000_000


@dataclass(frozen=True)
class Statement:
    sql: str  # with the values bound, or with %s placeholders when prepared
    params: tuple | None = None
    prepared: bool = False


@dataclass(frozen=True)
class CapturedRequest:
    statements: tuple[Statement, ...]
    transactional: bool  # replayed inside BEGIN … COMMIT, as the view's atomic block ran


@dataclass(frozen=True)
class SqlResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statements_per_request: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class UnexpectedStatus(Exception):
    pass


def capture(lines: list[tuple[str, str, str | None]], *, api_key: str, writes: bool) -> list[CapturedRequest]:
    """The bound SQL of each request in ``lines`` (``(method, path, body)``), run in this process."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}", HTTP_X_FORWARDED_PROTO="https")
    # As a busy worker runs them: its key already remembered and its rate-limit
    # hits batched (a warm-up request does the key lookup and the first
    # counter write, which the measured requests then no longer pay).
    if lines:
        with override_settings(ALLOWED_HOSTS=["*"]), transaction.atomic():
            _send(client, *lines[0])
            transaction.set_rollback(True)
    captured = []
    for method, path, body in lines:
        statements: list[Statement] = []

        def record(execute, sql, params, many, context, statements=statements):
            if many:
                statements.extend(Statement(connection.ops.compose_sql(sql, one)) for one in params)
            elif isinstance(context["cursor"].cursor, PreparedCursor):
                statements.append(Statement(sql, tuple(params or ()), prepared=True))
            else:
                statements.append(Statement(connection.ops.compose_sql(sql, params) if params else sql))
            return execute(sql, params, many, context)

        with override_settings(ALLOWED_HOSTS=["*"]), connection.execute_wrapper(record):
            if writes:
                with transaction.atomic():
                    response = _send(client, method, path, body)
                    transaction.set_rollback(True)
            else:
                response = _send(client, method, path, body)
        if response.status_code not in (200, 201):
            raise UnexpectedStatus(f"{method} {path} answered {response.status_code}: {response.content[:300]!r}")
        captured.append(CapturedRequest(tuple(statements), transactional=writes))
    return captured


def _send(client: Client, method: str, path: str, body: str | None):
    return client.generic(method, path, data=body or "", content_type="application/json" if body else None)


def replay(
    requests: list[CapturedRequest],
    *,
    dsn: dict,
    connections: int,
    duration: float,
    cycle: bool,
    max_requests: int = 0,
) -> SqlResult:
    """Run the captured requests for ``duration`` seconds on ``connections`` psycopg connections.

    Reads cycle through the captured requests (at most ``max_requests`` in
    all when it is set); writes (``cycle=False``) run each once, since
    replaying an INSERT twice would only hit the unique index.
    """
    deadline = time.perf_counter() + duration
    lock = threading.Lock()
    position = 0
    latencies: list[float] = []

    def next_request() -> CapturedRequest | None:
        nonlocal position
        with lock:
            if (not cycle and position >= len(requests)) or (max_requests and position >= max_requests):
                return None
            request = requests[position % len(requests)]
            position += 1
            return request

    def work() -> None:
        # No automatic preparation: each statement says whether it is prepared.
        with psycopg.connect(**dsn, autocommit=True, prepare_threshold=PREPARE_EXPLICITLY) as conn:
            mine = []
            while time.perf_counter() < deadline and (request := next_request()) is not None:
                started = time.perf_counter()
                _run(conn, request)
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    samples = sorted(latencies)
    statements = sum(len(request.statements) for request in requests) / max(len(requests), 1)
    return SqlResult(
        requests=len(samples),
        seconds=elapsed,
        p50_ms=percentile(samples, 50) * 1000,
        p99_ms=percentile(samples, 99) * 1000,
        statements_per_request=statements,
    )


def _run(conn: psycopg.Connection, request: CapturedRequest) -> None:
    with conn.cursor() as cursor:
        if request.transactional:
            with conn.transaction():
                _execute_all(cursor, request.statements)
        else:
            _execute_all(cursor, request.statements)


def _execute_all(cursor, statements: tuple[Statement, ...]) -> None:
    for statement in statements:
        cursor.execute(statement.sql, statement.params, prepare=statement.prepared)
        if cursor.description is not None:
            cursor.fetchall()  # Django reads every row it asked for
