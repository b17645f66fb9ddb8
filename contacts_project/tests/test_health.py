"""The liveness probe: answers without a key and without the database."""

import json
import os
import subprocess
import sys

from django.conf import settings
from django.db import OperationalError
from django.test import override_settings


def test_livez_is_ok_without_a_key_and_without_the_database(anonymous_api):
    # No `db` fixture: pytest-django fails any query this test would make.
    response = anonymous_api.get("/livez")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_livez_ignores_a_bad_key(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")

    assert anonymous_api.get("/livez").status_code == 200


def test_livez_answers_head_for_probes(anonymous_api):
    assert anonymous_api.head("/livez").status_code == 200


def test_livez_refuses_writes(anonymous_api):
    assert anonymous_api.post("/livez").status_code == 405


class _DeadConnection:
    def cursor(self):
        raise OperationalError("connection refused")


def test_livez_stays_ok_while_healthz_reports_the_database_down(anonymous_api, monkeypatch):
    monkeypatch.setattr("contacts_project.api.views.connection", _DeadConnection())

    assert anonymous_api.get("/livez").status_code == 200
    assert anonymous_api.get("/healthz").status_code == 503


def _production_redirect_exemptions() -> list[str]:
    """``SECURE_REDIRECT_EXEMPT`` as settings.py computes it with debug off (in a fresh interpreter)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contacts_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "production-like-test-key-" + "x" * 40,
        # A URL, never connected to: keeps the embedded server out of it.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
    }
    code = "import json; from django.conf import settings; print(json.dumps(settings.SECURE_REDIRECT_EXEMPT))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_probes_are_not_redirected_to_https_in_production(anonymous_api, db):
    exempt = _production_redirect_exemptions()

    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=exempt):
        assert anonymous_api.get("/livez").status_code == 200
        assert anonymous_api.get("/healthz").status_code == 200
        assert anonymous_api.get("/v1/contacts").status_code == 301
