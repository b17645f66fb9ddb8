"""Database faults the service rides out without a restart (API.md §2, §10).

These requests go through the project's WSGI application as a server would
run it, not through Django's test client: the test client switches off the
per-request connection bookkeeping (``close_old_connections`` on request
start and finish) that CONN_MAX_AGE and CONN_HEALTH_CHECKS rely on, which is
exactly what is under test here. Hence committed data (transactional tests).
"""

import io
import json
import socket
import sys
import time
from wsgiref.util import setup_testing_defaults

import psycopg
import pytest
from django.db import connection

from contacts_project.postgresql import base as backend
from contacts_project.wsgi import application


def wsgi_get(path: str, raw_key: str | None = None):
    """GET ``path`` through the WSGI application: ``(status, headers, body)``."""
    path, _, query = path.partition("?")
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    if raw_key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    setup_testing_defaults(environ)
    environ["wsgi.errors"] = sys.stderr
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    response = application(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()  # request_finished: where Django recycles (or keeps) the connection
    return started["status"], started["headers"], json.loads(body)


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def terminate_backend(pid: int) -> None:
    """Kill the backend ``pid`` from another session, as an operator or a failover would."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        # pg_terminate_backend only signals: wait for the backend to be gone,
        # which is when "between requests" is over.
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still running"
            time.sleep(0.01)


def dead_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_request_after_the_apps_connection_was_killed_succeeds(api, make_contact):
    contact = make_contact(email="ada@example.com")
    assert wsgi_get(f"/v1/contacts/{contact.id}", api.raw_key)[0] == 200
    killed = backend_pid()  # kept open between requests (CONN_MAX_AGE)

    terminate_backend(killed)
    status, _, body = wsgi_get(f"/v1/contacts/{contact.id}", api.raw_key)

    # CONN_HEALTH_CHECKS: the dead connection is noticed and replaced before the request uses it.
    assert status == 200, body
    assert body["id"] == contact.id
    assert backend_pid() != killed


@pytest.mark.django_db(transaction=True)
def test_unreachable_database_is_503_and_recovery_needs_no_restart(api, make_contact):
    contact = make_contact(email="ada@example.com")
    assert wsgi_get(f"/v1/contacts/{contact.id}", api.raw_key)[0] == 200
    reachable = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}

    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=dead_port())
    try:
        answers = [
            wsgi_get(f"/v1/contacts/{contact.id}", api.raw_key),
            wsgi_get("/v1/contacts?search=ada", api.raw_key),
            wsgi_get("/healthz"),
        ]
    finally:
        connection.close()
        connection.settings_dict.update(reachable)

    for status, headers, body in answers[:2]:
        assert status == 503, body
        assert int(headers["Retry-After"]) >= 1
        assert body["type"] == "server_error"
        assert [error["code"] for error in body["errors"]] == ["service_unavailable"]
    assert answers[2][0] == 503
    assert answers[2][2] == {"status": "unavailable"}
    assert int(answers[2][1]["Retry-After"]) >= 1
    # Back: the same process, the same settings object, answers again.
    status, _, body = wsgi_get(f"/v1/contacts/{contact.id}", api.raw_key)
    assert status == 200, body
    assert body["id"] == contact.id
    assert wsgi_get("/healthz")[0] == 200


@pytest.mark.django_db(transaction=True)
def test_the_health_check_of_a_live_connection_needs_no_round_trip(monkeypatch):
    round_trips = []
    monkeypatch.setattr(
        backend.base.DatabaseWrapper, "is_usable", lambda self: round_trips.append(self) or True, raising=True
    )
    connection.ensure_connection()

    assert connection.is_usable() is True
    assert round_trips == []


@pytest.mark.django_db(transaction=True)
def test_the_health_check_sees_a_killed_backend():
    connection.ensure_connection()
    assert connection.is_usable() is True

    terminate_backend(backend_pid())

    assert connection.is_usable() is False
    connection.close()  # what Django does with an unusable connection; the next query reconnects
