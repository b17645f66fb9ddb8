"""Hostile input never gives a 500: every error is the contract's shape (API.md §2).

Each test asserts the exact status, ``type`` and ``attr`` of the answer. A 400
is a ``validation_error`` whatever was wrong with the input (API.md §2's table),
whether the body failed to parse or a field failed to validate.
"""

import io
import json

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError, connection, transaction
from django.test import AsyncClient
from django.test.client import FakePayload

from contacts.models import Contact, ContactQuerySet
from contacts_project.api.errors import PayloadTooLarge
from contacts_project.api.parsers import StrictJSONParser
from contacts_project.testing import assert_error, assert_invalid

CONTACTS = "/v1/contacts"
VALID = {"email": "ada@example.com", "phone": "+14155552671"}
NUL = "\u0000"


def post_raw(client, path, body, content_type="application/json", method="POST"):
    if isinstance(body, str):
        body = body.encode()
    return client.generic(method, path, body, content_type=content_type)


def body_with_raw_metadata_value(raw_json: str) -> str:
    """A create body whose one metadata value is ``raw_json``, spliced in as written."""
    return '{"email": "ada@example.com", "metadata": {"x": ' + raw_json + "}}"


def post_json(client, path, data, method="POST"):
    return post_raw(client, path, json.dumps(data), method=method)


@pytest.fixture
def api(api):
    # A 5xx is reported through ``got_request_exception`` (for error trackers),
    # which the test client would re-raise; here the response is what counts,
    # so a 500 fails as a status code like any other wrong answer.
    api.raise_request_exception = False
    return api


@pytest.fixture
def anonymous_api(anonymous_api):
    anonymous_api.raise_request_exception = False
    return anonymous_api


@pytest.fixture
def contact(make_contact):
    return make_contact(phone="+14155552671", email="ada@example.com", tags=["vip"])


# --- NUL characters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "attr"),
    [
        ({"email": "ada@example.com", "first_name": f"A{NUL}da"}, "first_name"),
        ({"email": "ada@example.com", "last_name": NUL}, "last_name"),
        ({"email": f"ada{NUL}@example.com"}, "email"),
        ({"phone": f"+1415555{NUL}2671"}, "phone"),
        ({"email": "ada@example.com", "country": f"U{NUL}"}, "country"),
        ({"email": "ada@example.com", "lifecycle_stage": f"lead{NUL}"}, "lifecycle_stage"),
        ({"email": "ada@example.com", "metadata": {"note": f"x{NUL}y"}}, "metadata.note"),
        ({"email": "ada@example.com", "metadata": {"plan": {"name": NUL}}}, "metadata.plan.name"),
        ({"email": "ada@example.com", "metadata": {"list": ["ok", NUL]}}, "metadata.list.1"),
        ({"email": "ada@example.com", "metadata": {f"no{NUL}te": "x"}}, "metadata"),
        ({"email": "ada@example.com", "metadata": {"plan": {f"k{NUL}": 1}}}, "metadata.plan"),
        ({"email": "ada@example.com", "tags": ["vip", f"be{NUL}ta"]}, "tags.1"),
    ],
)
def test_nul_character_in_create_body_is_400_naming_the_field(api, data, attr):
    response = post_json(api, CONTACTS, data)

    assert_invalid(response, attr)
    assert Contact.objects.count() == 0


def test_nul_character_in_body_field_name_is_400(api):
    response = post_json(api, CONTACTS, {"email": "ada@example.com", f"first{NUL}name": "Ada"})

    assert_invalid(response, None)


def test_nul_character_as_whole_body_string_is_400(api):
    response = post_json(api, CONTACTS, f"a{NUL}")

    assert_invalid(response, None)


def test_nul_character_in_update_body_is_400_and_changes_nothing(api, contact):
    response = post_json(api, f"{CONTACTS}/{contact.id}", {"metadata": {"note": NUL}}, method="PATCH")

    assert_invalid(response, "metadata.note")
    contact.refresh_from_db()
    assert contact.metadata == {}


def test_nul_character_in_added_tag_is_400(api, contact):
    response = post_json(api, f"{CONTACTS}/{contact.id}/tags", {"tags": [f"a{NUL}"]})

    assert_invalid(response, "tags.0")
    contact.refresh_from_db()
    assert contact.tags == ["vip"]


def test_raw_nul_byte_inside_a_json_string_is_400(api):
    # A literal control character inside a JSON string is not JSON at all.
    response = post_raw(api, CONTACTS, b'{"email": "ada@example.com", "first_name": "A\x00da"}')

    assert_invalid(response, None)


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ("search=%00", "search"),
        ("search=ada%00", "search"),
        ("lifecycle_stage=%00", "lifecycle_stage"),
        ("country=%00", "country"),
        ("tag=%00", "tag"),
        ("created_after=%00", "created_after"),
        ("limit=%00", "limit"),
        ("cursor=%00", "cursor"),
    ],
)
def test_nul_character_in_query_parameter_is_400(api, contact, query, attr):
    response = api.get(f"{CONTACTS}?{query}")

    assert_invalid(response, attr)


def test_nul_character_as_a_query_parameter_name_is_400_with_null_attr(api, contact):
    # The parameter has no name left to report once the NUL is gone.
    response = api.get(f"{CONTACTS}?%00=1")

    assert_invalid(response, None)


def test_nul_character_in_one_of_repeated_query_values_is_400(api, contact):
    response = api.get(f"{CONTACTS}?search=ada&search=%00")

    assert_invalid(response, "search")


def test_nul_character_in_tag_path_segment_is_400(api, contact):
    response = api.delete(f"{CONTACTS}/{contact.id}/tags/%00")

    assert_invalid(response, "tag")
    contact.refresh_from_db()
    assert contact.tags == ["vip"]


def test_nul_character_inside_tag_path_segment_is_400(api, contact):
    response = api.delete(f"{CONTACTS}/{contact.id}/tags/vi%00p")

    assert_invalid(response, "tag")
    contact.refresh_from_db()
    assert contact.tags == ["vip"]


@pytest.mark.parametrize("limit", ["9" * 5000, "1" + "0" * 4400])
def test_limit_with_thousands_of_digits_is_400(api, contact, limit):
    # Python refuses to convert integers of more than 4,300 digits from text.
    response = api.get(f"{CONTACTS}?limit={limit}")

    assert_invalid(response, "limit")


# --- Unicode that is not UTF-8 ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "ada@example.com", "first_name": "\xff"}',
        b'{"email": "ada@example.com", "first_name": "\xc3"}',  # truncated sequence
        b'{"email": "ada@example.com", "first_name": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"email": "ada@example.com", "first_name": "\xc0\xaf"}',  # overlong "/"
        b"\xfe\xff\x00{\x00}",  # UTF-16 with a byte order mark
    ],
)
def test_invalid_utf8_body_is_400(api, body):
    response = post_raw(api, CONTACTS, body)

    assert_invalid(response, None)
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "attr"),
    [
        ({"email": "ada@example.com", "first_name": "\ud800"}, "first_name"),
        ({"email": "ada@example.com", "metadata": {"note": "a\udfffb"}}, "metadata.note"),
        ({"email": "ada@example.com", "metadata": {"\ud83d": 1}}, "metadata"),
        ({"email": "ada@example.com", "tags": ["\udc00"]}, "tags.0"),
    ],
)
def test_lone_surrogate_escape_is_400(api, data, attr):
    # "\ud800" is valid JSON syntax but no Unicode character; it cannot be stored as UTF-8.
    response = post_json(api, CONTACTS, data)

    assert_invalid(response, attr)
    assert Contact.objects.count() == 0


def test_lone_surrogate_in_search_is_not_a_500(api, contact):
    response = api.get(f"{CONTACTS}?search=%ED%A0%80")

    assert response.status_code == 200
    assert response.json()["data"] == []


# --- Malformed JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{",
        '{"email": ',
        '{"email": "ada@example.com",}',
        "{'email': 'ada@example.com'}",
        '{"email": "ada@example.com"} {}',
        '{"email": "ada@example.com"',
    ],
)
def test_invalid_json_is_400(api, body):
    response = post_raw(api, CONTACTS, body)

    assert_invalid(response, None)


def test_empty_body_is_400_asking_for_an_identifier(api):
    response = post_raw(api, CONTACTS, b"")

    assert_invalid(response, "phone")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 400 + ".5e999"])
def test_non_finite_numbers_are_400(api, literal):
    response = post_raw(api, CONTACTS, body_with_raw_metadata_value(literal))

    assert_invalid(response, None)
    assert Contact.objects.count() == 0


def test_ten_thousand_digit_integer_is_400(api):
    response = post_raw(api, CONTACTS, body_with_raw_metadata_value("7" * 10_000))

    assert_invalid(response, None)
    assert Contact.objects.count() == 0


def test_json_nested_100000_deep_is_400(api):
    response = post_raw(api, CONTACTS, "[" * 100_000 + "]" * 100_000)

    assert_invalid(response, None)


def test_json_objects_nested_100000_deep_is_400(api):
    response = post_raw(api, CONTACTS, '{"a":' * 100_000 + "1" + "}" * 100_000)

    assert_invalid(response, None)


def test_json_nested_100_deep_is_400(api):
    response = post_raw(api, CONTACTS, "[" * 100 + "]" * 100)

    assert_invalid(response, None)


@pytest.mark.parametrize(("depth", "status"), [(64, 201), (65, 400)])
def test_json_nesting_limit_is_64_levels(api, settings, depth, status):
    # The body object is level 1, metadata 2, metadata.x 3: x holds depth - 2 nested arrays.
    assert settings.API_MAX_JSON_DEPTH == 64
    nested = "[" * (depth - 2) + "]" * (depth - 2)

    response = post_raw(api, CONTACTS, body_with_raw_metadata_value(nested))

    assert response.status_code == status, response.content
    if status == 400:
        assert_invalid(response, None)


def test_metadata_nested_100_deep_is_400(api):
    deep = "[" * 100 + "]" * 100
    response = post_raw(api, CONTACTS, body_with_raw_metadata_value(deep))

    assert_invalid(response, None)
    assert Contact.objects.count() == 0


def test_metadata_nested_a_few_levels_is_accepted(api):
    nested = {"a": [{"b": [{"c": {"d": [1, 2, {"e": None}]}}]}]}

    response = post_json(api, CONTACTS, {"email": "ada@example.com", "metadata": {"nested": nested}})

    assert response.status_code == 201, response.json()
    assert response.json()["metadata"] == {"nested": nested}


@pytest.mark.parametrize("body", ["[]", '[{"email": "ada@example.com"}]', '"ada@example.com"', "12", "true", "null"])
def test_body_that_is_not_an_object_is_400_on_create(api, body):
    response = post_raw(api, CONTACTS, body)

    assert_invalid(response, None)
    assert Contact.objects.count() == 0


@pytest.mark.parametrize("body", ["[]", '"x"', "12", "null"])
def test_body_that_is_not_an_object_is_400_on_update(api, contact, body):
    response = post_raw(api, f"{CONTACTS}/{contact.id}", body, method="PATCH")

    assert_invalid(response, None)


@pytest.mark.parametrize("body", ["[]", '["vip"]', '"vip"', "null"])
def test_body_that_is_not_an_object_is_400_on_add_tags(api, contact, body):
    response = post_raw(api, f"{CONTACTS}/{contact.id}/tags", body)

    assert_invalid(response, None)


# --- Wrong JSON types ---------------------------------------------------------

WRONG_TYPES = [
    ("phone", 14155552671, "phone"),
    ("phone", ["+14155552671"], "phone"),
    ("phone", {"number": "+14155552671"}, "phone"),
    ("phone", True, "phone"),
    ("email", 123, "email"),
    ("email", ["ada@example.com"], "email"),
    ("email", {"address": "ada@example.com"}, "email"),
    ("email", False, "email"),
    ("first_name", 1, "first_name"),
    ("first_name", ["Ada"], "first_name"),
    ("last_name", {}, "last_name"),
    ("last_name", 1.5, "last_name"),
    ("country", 1, "country"),
    ("country", ["US"], "country"),
    ("lifecycle_stage", True, "lifecycle_stage"),
    ("lifecycle_stage", 7, "lifecycle_stage"),
    ("lifecycle_stage", None, "lifecycle_stage"),
    ("lifecycle_stage", ["lead"], "lifecycle_stage"),
    ("tags", "vip", "tags"),
    ("tags", {"vip": True}, "tags"),
    ("tags", 3, "tags"),
    ("tags", None, "tags"),
    ("tags", [1], "tags.0"),
    ("tags", ["vip", None], "tags.1"),
    ("tags", ["vip", ["beta"]], "tags.1"),
    ("tags", [{"name": "vip"}], "tags.0"),
    ("tags", [True], "tags.0"),
    ("metadata", [], "metadata"),
    ("metadata", [["plan", "pro"]], "metadata"),
    ("metadata", "plan=pro", "metadata"),
    ("metadata", 5, "metadata"),
    ("metadata", True, "metadata"),
    ("metadata", None, "metadata"),
]


@pytest.mark.parametrize(("field", "value", "attr"), WRONG_TYPES)
def test_wrong_json_type_on_create_is_400_naming_the_field(api, field, value, attr):
    response = post_json(api, CONTACTS, {**VALID, field: value})

    assert_invalid(response, attr)
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(("field", "value", "attr"), WRONG_TYPES)
def test_wrong_json_type_on_update_is_400_naming_the_field(api, contact, field, value, attr):
    response = post_json(api, f"{CONTACTS}/{contact.id}", {field: value}, method="PATCH")

    assert_invalid(response, attr)
    contact.refresh_from_db()
    assert (contact.email, contact.tags, contact.metadata) == ("ada@example.com", ["vip"], {})


@pytest.mark.parametrize(
    ("value", "attr"),
    [("vip", "tags"), ({"vip": 1}, "tags"), ([1], "tags.0"), (["ok", None], "tags.1"), ([], "tags"), (None, "tags")],
)
def test_wrong_json_type_on_add_tags_is_400(api, contact, value, attr):
    response = post_json(api, f"{CONTACTS}/{contact.id}/tags", {"tags": value})

    assert_invalid(response, attr)


# --- Body size ------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    """A valid create body of exactly ``size`` bytes (padded with JSON whitespace)."""
    body = json.dumps({"email": "ada@example.com"}).encode()
    return body + b" " * (size - len(body))


def test_body_over_the_limit_is_413(api, settings):
    response = post_raw(api, CONTACTS, _body_of_size(settings.API_MAX_BODY_BYTES + 1))

    assert_error(response, 413, "client_error", [None], code="payload_too_large")
    assert Contact.objects.count() == 0


def test_body_far_over_the_limit_is_413_on_update(api, contact, settings):
    body = b'{"metadata": {"x": "' + b"a" * (2 * settings.API_MAX_BODY_BYTES) + b'"}}'

    response = post_raw(api, f"{CONTACTS}/{contact.id}", body, method="PATCH")

    assert_error(response, 413, "client_error", [None], code="payload_too_large")


def test_body_over_the_limit_is_413_without_a_key(anonymous_api, settings):
    response = post_raw(anonymous_api, CONTACTS, _body_of_size(settings.API_MAX_BODY_BYTES + 1))

    assert_error(response, 413, "client_error", [None], code="payload_too_large")


def test_body_of_exactly_the_limit_is_accepted(api, settings):
    response = post_raw(api, CONTACTS, _body_of_size(settings.API_MAX_BODY_BYTES))

    assert response.status_code == 201, response.json()


def test_lowered_limit_applies(api, settings):
    settings.API_MAX_BODY_BYTES = 100

    assert post_raw(api, CONTACTS, _body_of_size(101)).status_code == 413
    assert post_raw(api, CONTACTS, _body_of_size(100)).status_code == 201


class _EndlessStream(io.RawIOBase):
    """A request body with no length: it never ends, and counts what is read."""

    def __init__(self):
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b" " * len(buffer)
        self.bytes_read += len(buffer)
        return len(buffer)


def test_parser_bounds_a_body_read_without_a_length(settings):
    settings.API_MAX_BODY_BYTES = 1000
    stream = _EndlessStream()

    with pytest.raises(PayloadTooLarge):
        StrictJSONParser().parse(stream)
    assert stream.bytes_read <= 1001


def test_body_longer_than_its_declared_length_is_413(api, settings):
    # Under ASGI the body is not cut at Content-Length, so a client that declares
    # 20 bytes and sends more passes the middleware; the parser must bound it.
    settings.API_MAX_BODY_BYTES = 1000
    body = _body_of_size(5000)
    scope = {
        "method": "POST",
        "path": CONTACTS,
        "query_string": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"20"),
            (b"authorization", f"Bearer {api.raw_key}".encode()),
        ],
        "_body_file": FakePayload(body),
    }

    response = async_to_sync(AsyncClient().request)(**scope)

    assert_error(response, 413, "client_error", [None], code="payload_too_large")
    assert Contact.objects.count() == 0


# --- Content type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"email": "ada@example.com"}'),
        ("application/x-www-form-urlencoded", "email=ada%40example.com"),
        (
            "multipart/form-data; boundary=BoUnDaRy",
            '--BoUnDaRy\r\nContent-Disposition: form-data; name="email"\r\n\r\nada@example.com\r\n--BoUnDaRy--\r\n',
        ),
        ("application/xml", "<contact><email>ada@example.com</email></contact>"),
        ("application/octet-stream", '{"email": "ada@example.com"}'),
    ],
)
def test_non_json_content_type_is_415(api, content_type, body):
    response = post_raw(api, CONTACTS, body, content_type=content_type)

    assert_error(response, 415, "client_error", [None], code="unsupported_media_type")
    assert Contact.objects.count() == 0


def test_non_json_content_type_is_415_on_update(api, contact):
    response = post_raw(api, f"{CONTACTS}/{contact.id}", "first_name=Eve", "application/x-www-form-urlencoded", "PATCH")

    assert_error(response, 415, "client_error", [None], code="unsupported_media_type")
    contact.refresh_from_db()
    assert contact.first_name == ""


def test_non_json_content_type_is_415_on_add_tags(api, contact):
    response = post_raw(api, f"{CONTACTS}/{contact.id}/tags", "tags=a", "text/plain")

    assert_error(response, 415, "client_error", [None], code="unsupported_media_type")


# --- Unknown query parameters -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "attrs"),
    [
        ("get", "", "lifecyle_stage=customer", ["lifecyle_stage"]),  # a typo never answers everything
        ("get", "", "limit=5&page=2&sort=name", ["page", "sort"]),
        ("get", "/{id}", "search=ada", ["search"]),  # a single contact takes no parameters
        ("get", "/{id}/activity", "search=ada&type=message.sent", ["search"]),  # the timeline's filters only
        ("get", "/optouts", "country=US", ["country"]),
        ("post", "", "limit=5", ["limit"]),
        ("patch", "/{id}", "force=1", ["force"]),
        ("delete", "/{id}", "cascade=true", ["cascade"]),
    ],
)
def test_unknown_query_parameter_is_400_naming_it_and_changes_nothing(api, contact, method, path, query, attrs):
    url = f"{CONTACTS}{path.format(id=contact.id)}?{query}"

    body = {"email": "eve@example.com"} if method in {"post", "patch"} else None

    response = getattr(api, method)(url, body, format="json")

    assert_invalid(response, *attrs, code="unknown_parameter")
    assert list(Contact.objects.values_list("id", "email")) == [(contact.id, "ada@example.com")]


def test_head_of_a_page_takes_the_page_parameters(api, contact):
    assert api.head(f"{CONTACTS}?limit=1&search=ada").status_code == 200
    assert api.head(f"{CONTACTS}?sort=name").status_code == 400  # a HEAD answer has no body to name it


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contacts?limit=1&search=ada&lifecycle_stage=lead&country=US&tag=vip&created_after=2000-01-01T00:00:00Z",
        "/v1/contacts/{id}/activity?limit=1&type=message.sent&channel=sms&since=2000-01-01T00:00:00Z",
        "/v1/contacts/lists?limit=1",
        "/v1/contacts/lists/{list}/members?limit=1",
        "/v1/contacts/segments?limit=1",
        "/v1/contacts/segments/{segment}/members?limit=1",
        "/v1/contacts/optouts?channel=sms&search=ada&limit=1",
    ],
)
def test_documented_query_parameters_are_accepted(api, contact, path):
    list_id = api.post("/v1/contacts/lists", {"name": "Newsletter"}, format="json").json()["id"]
    rules = {"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]}
    segment_id = api.post("/v1/contacts/segments", {"name": "VIPs", "rules": rules}, format="json").json()["id"]

    response = api.get(path.format(id=contact.id, list=list_id, segment=segment_id))

    assert response.status_code == 200, response.content


# --- Routes and methods -------------------------------------------------------

NOT_FOUND = {"type": "client_error", "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}]}


@pytest.mark.parametrize(
    "path",
    ["/v1/nope", "/v1/", "/v1/contacts/", "/v1/contacts/xyz", "/v1/contacts/xyz/tags", "/v1/contacts%00", "/v1/nope/"],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_route_under_v1_is_404_in_the_error_format(api, settings, path, debug):
    settings.DEBUG = debug

    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_route_is_404_for_every_method(api, method):
    response = getattr(api, method)("/v1/nope", {"email": "ada@example.com"}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/v1/nope", "/v1/contacts/not-a-contact-id", "/v1/contacts/lists/x/members/y"])
def test_unknown_route_is_404_for_writes_from_a_client_that_has_no_csrf_cookie(api, method, path):
    # APIClient skips the CSRF check unless asked; real API clients never have
    # a CSRF cookie, and the catch-all 404 view must not answer them with 403.
    api.handler.enforce_csrf_checks = True

    response = getattr(api, method)(path, {"email": "ada@example.com"}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_unknown_route_is_404_without_a_key(anonymous_api):
    response = anonymous_api.get("/v1/contacts/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_contact_id_is_404_in_the_error_format(api, settings, debug):
    settings.DEBUG = debug

    response = api.get(f"{CONTACTS}/con_doesnotexist")

    assert_error(response, 404, "client_error", [None], code="not_found")


def test_contact_of_another_account_is_404(other_api, contact):
    response = other_api.get(f"{CONTACTS}/{contact.id}")

    assert_error(response, 404, "client_error", [None], code="not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", CONTACTS, {"GET", "POST"}),
        ("patch", CONTACTS, {"GET", "POST"}),
        ("delete", CONTACTS, {"GET", "POST"}),
        ("post", "{detail}", {"GET", "PUT", "PATCH", "DELETE"}),
        ("get", "{detail}/tags", {"POST"}),
        ("put", "{detail}/tags/vip", {"DELETE"}),
    ],
)
def test_method_not_allowed_is_405(api, contact, method, path, allowed):
    path = path.format(detail=f"{CONTACTS}/{contact.id}")

    response = getattr(api, method)(path, {}, format="json")

    assert_error(response, 405, "client_error", [None], code="method_not_allowed")
    assert allowed <= {name.strip() for name in response["Allow"].split(",")}
    assert method.upper() not in {name.strip() for name in response["Allow"].split(",")}


# --- Database failures ----------------------------------------------------------


def _assert_unavailable(response):
    assert_error(response, 503, "server_error", [None])
    assert int(response["Retry-After"]) >= 1


def test_statement_past_statement_timeout_is_503(api, contact, monkeypatch):
    def slow_search(self, text, *, accounts):
        # A savepoint keeps the test's transaction usable after the cancel;
        # SET LOCAL ends with it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(5)")
        return self

    monkeypatch.setattr(ContactQuerySet, "search", slow_search)

    response = api.get(f"{CONTACTS}?search=ada")

    _assert_unavailable(response)
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_operational_error_in_a_list_view_is_503(api, contact, monkeypatch):
    def lost_connection(self, text, *, accounts):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ContactQuerySet, "search", lost_connection)

    _assert_unavailable(api.get(f"{CONTACTS}?search=ada"))


def test_operational_error_in_a_write_is_503(api, monkeypatch):
    def lost_connection(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("contacts.api.views.contact_create", lost_connection)

    _assert_unavailable(post_json(api, CONTACTS, {"email": "ada@example.com"}))


def test_operational_error_during_authentication_is_503(api, monkeypatch):
    def lost_connection(prefix):
        raise OperationalError("terminating connection due to administrator command")

    # The key lookup every authenticated request makes (one SQL statement).
    monkeypatch.setattr("accounts.authentication.active_key_by_prefix", lost_connection)

    _assert_unavailable(api.get(CONTACTS))


def test_healthz_is_ok_without_a_key(anonymous_api, db):
    response = anonymous_api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


class _DeadConnection:
    def cursor(self):
        raise OperationalError("connection refused")


def test_healthz_is_503_when_the_database_does_not_answer(anonymous_api, monkeypatch):
    monkeypatch.setattr("contacts_project.api.views.connection", _DeadConnection())

    response = anonymous_api.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert int(response["Retry-After"]) >= 1


def test_operational_error_outside_the_api_is_503_too(client, db, monkeypatch):
    """The admin and other plain Django views answer an outage like the API does."""

    def lost_connection(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("django.contrib.auth.views.LoginView.get", lost_connection)
    client.raise_request_exception = False

    _assert_unavailable(client.get("/admin/login/"))
