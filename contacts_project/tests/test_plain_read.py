"""The plain read of one object (contacts_project.api.viewsets.PlainRead) answers as DRF's dispatch does."""

import pytest
from django.db import OperationalError
from rest_framework.renderers import TemplateHTMLRenderer
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import ApiKey
from contacts.api.views import ContactViewSet
from contacts_project.api import ratelimit
from contacts_project.api.viewsets import DetailLookup, PlainRead
from contacts_project.testing import assert_error
from lists.api.views import ContactListViewSet
from lists.models import ContactList
from segments.api.views import SegmentViewSet
from segments.models import Segment

# Differ between two requests in a row: the second has one request fewer left,
# and a second may pass between them.
CHANGING_HEADERS = {"RateLimit-Remaining", "RateLimit-Reset"}


@pytest.fixture
def drf_calls(monkeypatch):
    """How many requests reached DRF's dispatch (the plain read answers without it)."""
    calls = []
    dispatch = APIView.dispatch

    def counting(view, request, *args, **kwargs):
        calls.append(request.method)
        return dispatch(view, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", counting)
    return calls


def _through_drf(monkeypatch, client, path):
    """``client.get(path)`` answered by DRF's dispatch, as before the plain read."""
    with monkeypatch.context() as patch:
        patch.setattr(PlainRead, "respond", lambda *args: None)
        return client.get(path)


@pytest.fixture
def objects(account, make_contact):
    """One contact, list and segment of ``account``, by path."""
    contact = make_contact(
        phone="+905321234567",
        email="zeynep@example.com",
        first_name="Zeynep",
        last_name='Çelik \u2028 "quoted"',
        tags=["vip", "ünïcode", 'a"b\\c'],
        metadata={"plan": "pro", "nested": {"list": [1, 2.5, None, True]}, "emoji": "🎉"},
    )
    contact_list = ContactList.objects.create(account=account, name="Newsletter")
    segment = Segment.objects.create(
        account=account,
        name="Turks",
        rules={"match": "all", "conditions": [{"field": "country", "operator": "eq", "value": "TR"}]},
    )
    return {
        "contact": f"/v1/contacts/{contact.id}",
        "list": f"/v1/contacts/lists/{contact_list.id}",
        "segment": f"/v1/contacts/segments/{segment.id}",
    }


def _headers(response) -> dict:
    return {name: value for name, value in response.items() if name not in CHANGING_HEADERS}


@pytest.mark.parametrize("kind", ["contact", "list", "segment"])
def test_a_plain_read_answers_exactly_what_drf_answers(api, objects, kind, drf_calls, monkeypatch):
    path = objects[kind]

    plain = api.get(path)
    assert drf_calls == []
    through_drf = _through_drf(monkeypatch, api, path)
    assert drf_calls == ["GET"]

    assert (plain.status_code, through_drf.status_code) == (200, 200)
    assert plain.content == through_drf.content
    assert _headers(plain) == _headers(through_drf)
    assert plain["Allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
    assert "Vary" not in plain
    assert int(plain["RateLimit-Remaining"]) == int(through_drf["RateLimit-Remaining"]) + 1
    assert 0 <= int(plain["RateLimit-Reset"]) - int(through_drf["RateLimit-Reset"]) <= 1


@pytest.mark.parametrize("accept", ["", "*/*", "application/json"])
def test_the_accept_headers_clients_send_are_plain(api, objects, accept, drf_calls):
    response = api.get(objects["contact"], HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert drf_calls == []


def test_a_plain_read_counts_against_the_rate_limit_once(api, objects, drf_calls, settings):
    settings.RATE_LIMIT_PER_MINUTE = 2
    path = objects["contact"]

    responses = [api.get(path) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 429]
    assert [response["RateLimit-Remaining"] for response in responses] == ["1", "0", "0"]
    assert responses[2]["Retry-After"]
    # The third was counted by the plain read, then answered by DRF without counting it again.
    assert drf_calls == ["GET"]
    api_key = ApiKey.objects.get(prefix=ApiKey.split_key(api.raw_key)[0])
    usage = ratelimit.rate_limit_peek(f"key:{api_key.pk}", limit=2, window=ratelimit.API_WINDOW_SECONDS)
    assert usage.count == 3


def test_another_accounts_id_is_answered_404_by_drf(other_api, api, objects, drf_calls):
    other = other_api.get(objects["contact"])
    missing = api.get("/v1/contacts/con_missing")

    assert_error(other, 404, "client_error", [None], code="not_found")
    assert other.json() == missing.json()
    assert drf_calls == ["GET", "GET"]


@pytest.mark.parametrize(
    ("headers", "status", "attrs"),
    [
        ({"HTTP_AUTHORIZATION": "Bearer ck_000000000000_00000000000000000000000000000000"}, 401, [None]),
        ({"HTTP_AUTHORIZATION": "Bearer ck_ünicode"}, 401, [None]),
        ({"HTTP_AUTHORIZATION": ""}, 401, [None]),
        ({"HTTP_ACCEPT": "text/html"}, 406, [None]),
    ],
)
def test_what_a_plain_read_does_not_answer_drf_answers(api, objects, drf_calls, headers, status, attrs):
    client = APIClient()
    client.credentials(**{"HTTP_AUTHORIZATION": f"Bearer {api.raw_key}", **headers})

    response = client.get(objects["contact"])

    assert_error(response, status, "client_error", attrs)
    assert drf_calls == ["GET"]


def test_a_query_parameter_or_head_goes_through_drf(api, objects, drf_calls):
    unknown = api.get(objects["contact"], {"fields": "id"})
    head = api.head(objects["contact"])

    assert_error(unknown, 400, "validation_error", ["fields"], code="unknown_parameter")
    assert (head.status_code, head.content) == (200, b"")
    assert drf_calls == ["GET", "HEAD"]


def test_a_database_outage_during_a_plain_read_is_a_503(api, objects, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection to server was lost")

    monkeypatch.setattr(DetailLookup, "get", unavailable)

    response = api.get(objects["contact"])

    assert_error(response, 503, "server_error", [None], code="service_unavailable")
    assert response["Retry-After"] == "1"


def test_viewsets_with_other_parts_keep_drfs_dispatch():
    class Open(ContactViewSet):
        permission_classes = []

    class Html(ContactViewSet):
        renderer_classes = [TemplateHTMLRenderer]

    assert PlainRead.of(ContactViewSet) is not None
    assert PlainRead.of(ContactListViewSet) is not None
    assert PlainRead.of(SegmentViewSet) is not None
    assert PlainRead.of(Open) is None
    assert PlainRead.of(Html) is None
