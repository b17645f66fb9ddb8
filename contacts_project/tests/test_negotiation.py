"""Content negotiation (contacts_project.api.negotiation): JSON, with DRF's answers kept for everything else."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation

from contacts_project.testing import assert_error


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_plain_accepts_answer_json_without_drfs_parsing(api, accept, monkeypatch):
    parsed = []
    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer", lambda *args: parsed.append(args))
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = api.get("/v1/contacts", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert parsed == []


@pytest.mark.parametrize("accept", ["application/json; q=0.9, text/html; q=0.1", "application/*", "text/html, */*"])
def test_other_accepts_that_json_satisfies_still_get_json(api, accept):
    response = api.get("/v1/contacts", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_an_accept_json_cannot_satisfy_is_406(api):
    response = api.get("/v1/contacts", HTTP_ACCEPT="text/csv")

    assert_error(response, 406, "client_error", [None], code="not_acceptable")


def test_the_schema_still_negotiates_its_formats(anonymous_api, db):
    assert anonymous_api.get("/v1/schema", {"format": "json"})["Content-Type"].startswith(
        "application/vnd.oai.openapi+json"
    )
    assert anonymous_api.get("/v1/schema")["Content-Type"].startswith("application/vnd.oai.openapi")
