"""The load test runs end to end on a tiny data set (a few seconds, no timing asserted) and reports every field."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from bench import load
from bench.loadtest import MIX

pytestmark = pytest.mark.skipif(load.wrk_path() is None, reason="wrk is not installed")


@pytest.mark.django_db(transaction=True)
def test_a_short_run_with_an_import_reports_every_field(tmp_path):
    name = connection.settings_dict["NAME"]  # the test database: nothing to create
    call_command(
        "bench", "--database", name, "--contacts", "300", "--neighbours", "1", "--neighbour-contacts", "200",
        "--build-only", stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    output = tmp_path / "load.json"
    out, err = io.StringIO(), io.StringIO()

    failure = None
    try:
        call_command(
            "loadtest", "--database", name, "--duration", "3", "--warmup", "0", "--connections", "2",
            "--with-import", "--import-rows", "150", "--import-delay", "0.2", "--json", str(output),
            stdout=out, stderr=err,
        )  # fmt: skip
    except CommandError as error:
        failure = str(error)
    # p99 on a shared machine is not asserted; anything but a broken guarantee is a failure.
    assert failure is None or failure.startswith("Guarantees broken"), failure

    report = json.loads(output.read_text(encoding="utf-8"))
    whole = report["whole"]
    assert whole["requests"] > 0
    assert whole["rate"] > 0
    assert whole["p50_ms"] <= whole["p99_ms"] <= whole["max_ms"]
    assert set(whole["statuses"]) <= {"2xx", "3xx", "4xx", "5xx"}
    assert whole["statuses"].get("5xx", 0) == 0, report["error_answers"]
    assert set(report["socket_errors"]) == {"connect", "read", "write", "timeout"}
    assert [item["label"] for item in report["kinds"]] == [kind for kind, _, _ in MIX]
    assert sum(item["requests"] for item in report["kinds"]) == whole["requests"]
    assert report["wrk"]["requests"] >= whole["requests"]
    imported = report["import_result"]
    assert imported["rows"] == 150
    assert imported["error"] is None, imported
    assert imported["rate"] > 0
    assert report["during_import"]["label"] == "while the import ran"
    assert isinstance(report["passed"], bool)
    table = out.getvalue()
    assert "| whole run (" in table
    assert "| while the import ran (" in table
    assert "Import: 150 rows" in table
    # The scratch accounts (writes, import) are gone; only the read data set remains.
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM accounts_account ORDER BY name")
        assert [row for (row,) in cursor.fetchall()] == ["bench-big", "bench-neighbour-1"]


@pytest.mark.django_db
def test_a_missing_data_set_says_how_to_build_it():
    with pytest.raises(CommandError, match=r"manage.py bench --build-only"):
        call_command("loadtest", "--database", "loadtest_no_such_database", "--duration", "1")
