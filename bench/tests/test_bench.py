"""The benchmark suite runs end to end (tiny data set, no timing asserted) and its parts behave."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection

from bench import load
from bench.floors import evaluate
from bench.stats import percentile

ROWS = [
    "no-database view (GET /livez)",
    "get by id",
    "list, first page",
    "list, page 5,000 (cursor)",
    "list, stage + country + tag",
    "search: name prefix",
    "search: full name",
    "search: email domain",
    "search: phone last 4 digits",
    "search: phone national prefix",
    "segment count: two equalities (btree)",
    "segment members: two equalities (btree)",
    "segment count: tag OR metadata (GIN)",
    "segment members: tag OR metadata (GIN)",
    "segment count: list membership AND NOT IN",
    "segment members: list membership AND NOT IN",
    "list members page",
    "opt-outs page",
    "activity timeline page",
    "create",
    "update with metadata merge",
    "export 200 rows (CSV)",
    "import (new contacts), 200 rows",
    "re-import of the same file, 200 rows",
    "gunicorn worker 1",
    "gunicorn worker 2",
]


@pytest.mark.django_db(transaction=True)
def test_a_tiny_run_prints_and_writes_every_row(tmp_path):
    output = tmp_path / "PERFORMANCE.md"
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "bench",
        "--database", connection.settings_dict["NAME"],  # the test database: nothing to create
        "--contacts", "200", "--neighbours", "1", "--neighbour-contacts", "200",
        "--duration", "0.3", "--warmup", "0", "--requests", "5", "--load-generator", "python",
        "--output", str(output),
        stdout=out, stderr=err,
    )  # fmt: skip

    table = output.read_text(encoding="utf-8")
    assert out.getvalue().strip() == table.strip()
    lines = table.splitlines()
    for row in ROWS:
        assert any(line.startswith(f"| {row}") for line in lines), row
    assert not [line for line in lines if line.startswith("|") and "⚠️" in line], table
    assert "failed:" not in err.getvalue(), err.getvalue()
    assert "| command | `python manage.py bench" in table
    # Reads, writes and imports left nothing behind but the read data set.
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM accounts_account ORDER BY name")
        assert [name for (name,) in cursor.fetchall()] == ["bench-big", "bench-neighbour-1"]


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        self.seen.append((self.command, self.path, body, self.headers.get("Authorization")))
        payload = b'{"ok": true}'
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("generator", ["wrk", "python"])
def test_load_generators_send_the_targets_and_report_latencies(tmp_path, generator):
    if generator == "wrk" and load.wrk_path() is None:
        pytest.skip("wrk is not installed")
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    targets = load.write_targets(
        tmp_path / "targets",
        [("GET", "/v1/contacts?search=ada%20lov", None), ("POST", "/v1/contacts", json.dumps({"email": "a@b.co"}))],
    )
    try:
        result = load.run_load(
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            targets=targets,
            api_key="ck_test",
            connections=1,
            duration=1,
            max_requests=4,
            generator=generator,
        )
    finally:
        server.shutdown()

    assert result.requests >= 4
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert ("GET", "/v1/contacts?search=ada%20lov", None, "Bearer ck_test") in _Recorder.seen
    assert ("POST", "/v1/contacts", '{"email": "a@b.co"}', "Bearer ck_test") in _Recorder.seen


def test_ratios_read_the_same_way_for_ceilings_and_minimums():
    livez = SimpleNamespace(http=SimpleNamespace(rate=2000.0))
    get = SimpleNamespace(http=SimpleNamespace(rate=1000.0))
    text, ratios = evaluate("get", get, {"livez": livez, "get": get})
    assert text == "≥ 800 req/s · ≥ 50% of /livez req/s"
    assert ratios == [0.8, 1.0]

    page = SimpleNamespace(http=SimpleNamespace(p50_ms=5.0, p99_ms=45.0))
    assert evaluate("list", page, {})[1] == [0.5, 1.5]
    first = SimpleNamespace(http=SimpleNamespace(p50_ms=5.0, p99_ms=6.0))
    assert evaluate("deep", page, {"list_first": first})[1] == [0.5, 1.5, pytest.approx(5 / 6)]
    assert evaluate("deep", page, {})[1][2] is None  # no first page measured: unknown, not a pass
    assert evaluate(None, page, {}) == ("", [])


def test_percentiles_interpolate():
    assert percentile([], 50) == 0.0
    assert percentile([1.0], 99) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 99) == 99.0


@pytest.mark.django_db(transaction=True)
def test_the_sql_floor_prepares_what_the_view_prepares(account, make_contact):
    from accounts.services import api_key_create
    from bench import database, sqlfloor

    contact = make_contact(email="ada@example.com", tags=["vip"])
    _, key = api_key_create(account=account, name="bench")

    read, listing = sqlfloor.capture(
        [("GET", f"/v1/contacts/{contact.id}", None), ("GET", "/v1/contacts?tag=vip", None)], api_key=key, writes=False
    )

    # The one-object lookup is sent prepared, with its parameters; a page's query with its values bound.
    assert [(statement.prepared, statement.params) for statement in read.statements] == [
        (True, (account.pk, contact.id))
    ]
    assert [statement.prepared for statement in listing.statements] == [False]
    assert "'vip'" in listing.statements[0].sql
    result = sqlfloor.replay(
        [read, listing], dsn=database.dsn(), connections=1, duration=5, cycle=True, max_requests=20
    )
    assert result.requests == 20
