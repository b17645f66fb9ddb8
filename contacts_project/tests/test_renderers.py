import datetime
import decimal
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from contacts_project.api.renderers import JSONRenderer

CONTACT = {
    "id": "con_fEpKYmILUpNUO9HZ",
    "phone": "+971507677565",
    "first_name": "أحمد",
    "last_name": "Müller 李",
    "tags": ["vip", "🙂"],
    "metadata": {"plan": "pro", "seats": 12, "score": 0.75, "ok": True, "none": None, "nested": {"a": [1, 2.5]}},
    "created_at": "2026-11-27T10:15:00.123000Z",
}

SAME_BYTES = [
    pytest.param(CONTACT, id="contact"),
    pytest.param({"data": [CONTACT] * 3, "next_cursor": None, "has_more": False}, id="page"),
    pytest.param({"note": "line\u2028break\u2029end", "quote": 'a"b\\c\n\t\x00'}, id="escapes"),
    pytest.param({"errors": [{"detail": ErrorDetail("Bad.", code="invalid")}]}, id="error-detail"),
    pytest.param(ReturnDict({"a": ReturnList([1, 2], serializer=None)}, serializer=None), id="return-types"),
    pytest.param({"lazy": gettext_lazy("This field is required.")}, id="lazy-string"),
    pytest.param({"amount": decimal.Decimal("12.50"), "raw": b"bytes"}, id="decimal-and-bytes"),
    pytest.param(
        {
            "at": datetime.datetime(2026, 11, 27, 10, 15, 0, 123456, tzinfo=datetime.UTC),
            "day": datetime.date(2026, 11, 27),
            "time": datetime.time(10, 15),
            "span": datetime.timedelta(hours=1),
        },
        id="dates-as-drf-writes-them",
    ),
    pytest.param({"id": uuid.UUID("12345678-1234-5678-1234-567812345678")}, id="uuid"),
    pytest.param({"big": 2**70, "negative": -(2**64)}, id="integers-beyond-64-bits"),
    pytest.param({1: "int key"}, id="non-string-key"),
    pytest.param([], id="empty-list"),
    pytest.param("text", id="bare-string"),
]


@pytest.mark.parametrize("data", SAME_BYTES)
def test_the_same_bytes_as_drfs_renderer(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_none_is_an_empty_body():
    assert JSONRenderer().render(None) == b""


def test_indented_output_when_asked_for():
    data = {"a": [1, {"b": "ü"}]}
    media_type = "application/json; indent=2"
    body = JSONRenderer().render(data, media_type, {})
    assert body == renderers.JSONRenderer().render(data, media_type, {})
    assert body.startswith(b'{\n  "a": [')


def test_an_unknown_type_fails_as_it_did():
    with pytest.raises(TypeError):
        renderers.JSONRenderer().render({"value": object()})
    with pytest.raises(TypeError):
        JSONRenderer().render({"value": object()})


def test_api_responses_are_rendered_by_it(client, monkeypatch):
    rendered = []
    monkeypatch.setattr(JSONRenderer, "render", lambda self, data, *args: rendered.append(data) or b"{}")
    response = client.get("/v1/contacts")
    assert response.status_code == 401
    assert [data["type"] for data in rendered] == ["client_error"]
