"""The activity timeline (API.md §6): recording events, receipt dedupe, the paginated timeline."""

import datetime
import json
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import signing
from django.db import connection, transaction
from rest_framework.test import APIClient

from contacts.api.filters import ActivityFilter
from contacts.constants import CHANNELS
from contacts.models import ActivityEvent, Contact
from contacts_project.api.pagination import KeysetPagination, Seek
from contacts_project.testing import assert_invalid, assert_not_found

T0 = datetime.datetime(2026, 11, 27, 10, 15, tzinfo=datetime.UTC)
EVENT_FIELDS = {"id", "type", "channel", "occurred_at", "message_id", "data", "created_at"}
MESSAGE_TYPES = [
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.failed",
    "message.received",
]
CLIENT_TYPES = [*MESSAGE_TYPES, "agent.interaction"]
MISSING_CONTACT = "con_AAAAAAAAAAAAAAAA"
DATA_MAX_BYTES = 8 * 1024


def _url(contact_id):
    return f"/v1/contacts/{contact_id}/activity"


def _post(api, contact_id, body):
    return api.post(_url(contact_id), body, format="json")


def _record(api, contact_id, **body):
    """Record an event through the API (an sms delivery unless told otherwise); return it."""
    body = {"type": "message.delivered", "channel": "sms", **body}
    response = _post(api, contact_id, body)
    assert response.status_code == 201, response.content
    return response.json()


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp in UTC as the API writes it."""
    assert text.endswith("Z"), text
    moment = datetime.datetime.fromisoformat(text)
    assert moment.utcoffset() == datetime.timedelta(0), text
    return moment


def _db_now() -> datetime.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def _ids(response):
    return [event["id"] for event in response.json()["data"]]


def _newest_first(contact_id):
    """The timeline's order computed in Python from the stored keys: occurred_at desc, then id desc."""
    rows = ActivityEvent.objects.filter(contact_id=contact_id).values_list("occurred_at", "id")
    return [event_id for _, event_id in sorted(rows, reverse=True)]


def _walk(api, contact_id, limit, params=None, between_pages=None):
    """Follow next_cursor to the end; return every id in the order served."""
    seen = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": limit, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        response = api.get(_url(contact_id), query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"data", "next_cursor", "has_more"}
        assert len(body["data"]) <= limit
        assert (body["next_cursor"] is None) == (body["has_more"] is False)
        seen += [event["id"] for event in body["data"]]
        pages += 1
        assert pages < 200, "pagination does not terminate"
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]
        if between_pages is not None:
            between_pages(pages)


@pytest.fixture
def contact(make_contact):
    return make_contact(email="ada@example.com", first_name="Ada")


# --- POST: the event object ----------------------------------------------------------


def test_post_returns_201_with_the_event_object(api, account, contact):
    body = {
        "type": "message.delivered",
        "channel": "sms",
        "occurred_at": "2026-11-27T10:15:00Z",
        "message_id": "msg_123",
        "data": {"any": "json", "nested": {"list": [1, 2.5, None, True, "x"]}},
    }
    before = _db_now()

    response = _post(api, contact.id, body)

    after = _db_now()
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith("application/json")
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert re.fullmatch(r"act_[A-Za-z0-9]{16,}", event["id"]), event["id"]
    assert event["type"] == "message.delivered"
    assert event["channel"] == "sms"
    assert _parse(event["occurred_at"]) == T0
    assert event["message_id"] == "msg_123"
    assert event["data"] == body["data"]
    assert before <= _parse(event["created_at"]) <= after
    stored = ActivityEvent.objects.get(pk=event["id"])
    assert (stored.account_id, stored.contact_id) == (account.id, contact.id)
    assert (stored.type, stored.channel, stored.occurred_at, stored.message_id, stored.data) == (
        "message.delivered",
        "sms",
        T0,
        "msg_123",
        body["data"],
    )


def test_posted_event_reads_back_the_same_in_the_timeline(api, contact):
    event = _record(api, contact.id, message_id="msg_1", data={"k": "v"}, occurred_at="2026-11-27T10:15:00.5Z")

    response = api.get(_url(contact.id))

    assert response.status_code == 200
    assert response.json() == {"data": [event], "next_cursor": None, "has_more": False}


def test_event_without_optional_fields_has_null_message_id_and_empty_data(api, contact):
    response = _post(api, contact.id, {"type": "message.sent", "channel": "email"})

    assert response.status_code == 201, response.content
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert event["message_id"] is None
    assert event["data"] == {}


@pytest.mark.parametrize("type_", CLIENT_TYPES)
def test_every_client_type_is_accepted(api, contact, type_):
    response = _post(api, contact.id, {"type": type_, "channel": "whatsapp"})

    assert response.status_code == 201, response.content
    assert response.json()["type"] == type_
    assert ActivityEvent.objects.get(pk=response.json()["id"]).type == type_


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_is_accepted(api, contact, channel):
    response = _post(api, contact.id, {"type": "message.sent", "channel": channel})

    assert response.status_code == 201, response.content
    assert response.json()["channel"] == channel


def test_preference_updated_is_rejected_and_nothing_is_stored(api, contact):
    response = _post(api, contact.id, {"type": "preference.updated", "channel": "sms"})

    assert_invalid(response, "type")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


@pytest.mark.parametrize("type_", ["message.bounced", "", "MESSAGE.SENT", "message", 7, None, ["message.sent"]])
def test_unknown_or_malformed_type_is_400(api, contact, type_):
    response = _post(api, contact.id, {"type": type_, "channel": "sms"})

    assert_invalid(response, "type")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


def test_missing_type_is_400(api, contact):
    assert_invalid(_post(api, contact.id, {"channel": "sms"}), "type")


@pytest.mark.parametrize("type_", MESSAGE_TYPES)
@pytest.mark.parametrize("channel", ["missing", None])
def test_channel_is_required_for_every_message_type(api, contact, type_, channel):
    body = {"type": type_} if channel == "missing" else {"type": type_, "channel": channel}

    assert_invalid(_post(api, contact.id, body), "channel")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


@pytest.mark.parametrize("body", [{"type": "agent.interaction"}, {"type": "agent.interaction", "channel": None}])
def test_channel_is_optional_for_agent_interaction(api, contact, body):
    response = _post(api, contact.id, body)

    assert response.status_code == 201, response.content
    assert response.json()["channel"] is None
    assert ActivityEvent.objects.get(pk=response.json()["id"]).channel is None


def test_agent_interaction_keeps_a_channel_when_given(api, contact):
    response = _post(api, contact.id, {"type": "agent.interaction", "channel": "voice"})

    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "voice"


@pytest.mark.parametrize("channel", ["fax", "", "telegram", 1, ["sms"]])
@pytest.mark.parametrize("type_", ["message.sent", "agent.interaction"])
def test_unknown_channel_is_400(api, contact, type_, channel):
    assert_invalid(_post(api, contact.id, {"type": type_, "channel": channel}), "channel")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


# --- occurred_at ---------------------------------------------------------------------


def test_occurred_at_defaults_to_now(api, contact):
    before = _db_now()

    event = _record(api, contact.id)

    after = _db_now()
    assert before <= _parse(event["occurred_at"]) <= after
    assert ActivityEvent.objects.get(pk=event["id"]).occurred_at == _parse(event["occurred_at"])


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2026-11-27T10:15:00Z", T0),
        ("2026-11-27T10:15:00.123456Z", T0 + datetime.timedelta(microseconds=123456)),
        ("2026-11-27T10:15:00.5Z", T0 + datetime.timedelta(milliseconds=500)),
        ("2026-11-27T12:15:00+02:00", T0),
        ("2026-11-27T05:45:00.25-04:30", T0 + datetime.timedelta(milliseconds=250)),
        ("2026-11-27T10:15:00+00:00", T0),
        ("2026-11-26T17:34:00-16:41", T0),  # an offset PostgreSQL itself would refuse
    ],
)
def test_occurred_at_accepts_rfc3339_with_offset_and_fractional_seconds(api, contact, sent, expected):
    event = _record(api, contact.id, occurred_at=sent)

    assert _parse(event["occurred_at"]) == expected
    assert ActivityEvent.objects.get(pk=event["id"]).occurred_at == expected


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        ("0028-07-16T06:35:45Z", "0028-07-16T06:35:45.000000Z"),
        ("0999-12-31T23:59:59.5+00:00", "0999-12-31T23:59:59.500000Z"),
        ("2026-11-27T10:15:00Z", "2026-11-27T10:15:00.000000Z"),
    ],
)
def test_occurred_at_is_answered_as_rfc3339_whatever_the_year(api, contact, sent, answered):
    event = _record(api, contact.id, occurred_at=sent)

    assert event["occurred_at"] == answered
    assert _filtered(api, contact) == [event["id"]]
    assert api.get(_url(contact.id)).json()["data"][0]["occurred_at"] == answered


@pytest.mark.parametrize(
    "occurred_at",
    [
        "yesterday",
        "",
        "2026-11-27T10:15:00",  # no offset: no instant
        "0001-01-01T00:00:00+10:00",  # before year 1 in UTC
        "2026-02-30T10:00:00Z",
        "2026-11-27T25:00:00Z",
        "2026-13-01T00:00:00Z",
        "27/11/2026 10:15",
        "2026-11-27T10:15:00Zjunk",
        12,
        1764238500.0,
        True,
        ["2026-11-27T10:15:00Z"],
        {"at": "2026-11-27T10:15:00Z"},
    ],
)
def test_malformed_occurred_at_is_400(api, contact, occurred_at):
    response = _post(api, contact.id, {"type": "message.sent", "channel": "sms", "occurred_at": occurred_at})

    assert_invalid(response, "occurred_at")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


# --- data ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[], [{"a": 1}], "text", "{}", 12, 1.5, True, None])
def test_data_must_be_an_object(api, contact, data):
    response = _post(api, contact.id, {"type": "message.sent", "channel": "sms", "data": data})

    assert_invalid(response, "data")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


def _data_of_size(size: int) -> dict:
    data = {"k": "x" * (size - len('{"k":""}'))}
    assert len(json.dumps(data, separators=(",", ":")).encode()) == size
    return data


def test_data_of_8192_bytes_is_accepted(api, contact):
    data = _data_of_size(DATA_MAX_BYTES)

    event = _record(api, contact.id, data=data)

    assert event["data"] == data
    assert ActivityEvent.objects.get(pk=event["id"]).data == data


def test_data_of_8193_bytes_is_400(api, contact):
    response = _post(
        api, contact.id, {"type": "message.sent", "channel": "sms", "data": _data_of_size(DATA_MAX_BYTES + 1)}
    )

    assert_invalid(response, "data")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


# --- other fields ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["fired_at", "contact_id", "account", "messageId"])
def test_unknown_body_field_is_400_naming_it(api, contact, field):
    response = _post(api, contact.id, {"type": "message.sent", "channel": "sms", field: "x"})

    assert_invalid(response, field)
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


def test_read_only_fields_are_ignored(api, contact):
    before = _db_now()

    response = _post(
        api,
        contact.id,
        {"type": "message.sent", "channel": "sms", "id": "act_chosenbyclient01", "created_at": "2000-01-01T00:00:00Z"},
    )

    assert response.status_code == 201, response.content
    event = response.json()
    assert event["id"] != "act_chosenbyclient01"
    assert not ActivityEvent.objects.filter(pk="act_chosenbyclient01").exists()
    assert _parse(event["created_at"]) >= before


def test_message_id_of_255_characters_is_accepted(api, contact):
    message_id = "m" * 255

    event = _record(api, contact.id, message_id=message_id)

    assert event["message_id"] == message_id


@pytest.mark.parametrize("message_id", ["m" * 256, "m" * 1000])
def test_message_id_over_255_characters_is_400(api, contact, message_id):
    response = _post(api, contact.id, {"type": "message.sent", "channel": "sms", "message_id": message_id})

    assert_invalid(response, "message_id")
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


@pytest.mark.parametrize("body", [[], "event", 12, None])
def test_body_that_is_not_an_object_is_400_not_500(api, contact, body):
    response = api.post(_url(contact.id), json.dumps(body), content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["type"] == "validation_error"
    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()


# --- receipt dedupe --------------------------------------------------------------------


def test_same_message_id_and_type_again_returns_the_stored_event_with_200(api, contact):
    first = _record(
        api, contact.id, type="message.delivered", message_id="msg_1", occurred_at="2026-11-27T10:15:00Z", data={"n": 1}
    )

    response = _post(
        api,
        contact.id,
        {
            "type": "message.delivered",
            "channel": "whatsapp",
            "message_id": "msg_1",
            "occurred_at": "2026-11-28T00:00:00Z",
            "data": {"n": 2, "retry": True},
        },
    )

    assert response.status_code == 200, response.content
    assert response.json() == first
    assert list(ActivityEvent.objects.filter(contact_id=contact.id).values_list("id", "channel", "data")) == [
        (first["id"], "sms", {"n": 1})
    ]
    assert _ids(api.get(_url(contact.id))) == [first["id"]]


def test_identical_retry_returns_200_with_the_stored_event_every_time(api, contact):
    first = _record(api, contact.id, message_id="msg_1", data={"status": "DELIVRD"})

    for _ in range(3):
        response = _post(api, contact.id, {"type": "message.delivered", "channel": "sms", "message_id": "msg_1"})
        assert response.status_code == 200, response.content
        assert response.json() == first

    assert ActivityEvent.objects.filter(contact_id=contact.id).count() == 1


def test_same_message_id_with_another_type_is_a_new_event(api, contact):
    sent = _record(api, contact.id, type="message.sent", message_id="msg_1")
    delivered = _record(api, contact.id, type="message.delivered", message_id="msg_1")
    opened = _record(api, contact.id, type="message.opened", message_id="msg_1")

    assert len({sent["id"], delivered["id"], opened["id"]}) == 3
    assert ActivityEvent.objects.filter(contact_id=contact.id, message_id="msg_1").count() == 3


def test_same_message_id_and_type_on_another_contact_is_a_new_event(api, contact, make_contact):
    other = make_contact(email="grace@example.com")
    first = _record(api, contact.id, message_id="msg_1")

    response = _post(api, other.id, {"type": "message.delivered", "channel": "sms", "message_id": "msg_1"})

    assert response.status_code == 201, response.content
    assert response.json()["id"] != first["id"]
    assert ActivityEvent.objects.filter(contact_id=contact.id).count() == 1
    assert ActivityEvent.objects.filter(contact_id=other.id).count() == 1


def test_events_without_message_id_never_dedupe(api, contact):
    body = {"type": "message.delivered", "channel": "sms", "occurred_at": "2026-11-27T10:15:00Z", "data": {"a": 1}}

    responses = [_post(api, contact.id, body) for _ in range(3)]
    responses.append(_post(api, contact.id, {**body, "message_id": None}))

    assert [response.status_code for response in responses] == [201] * 4
    assert len({response.json()["id"] for response in responses}) == 4
    assert ActivityEvent.objects.filter(contact_id=contact.id).count() == 4


def test_invalid_retry_is_still_400(api, contact):
    _record(api, contact.id, message_id="msg_1")

    response = _post(api, contact.id, {"type": "message.delivered", "message_id": "msg_1"})

    assert_invalid(response, "channel")


# --- 404 ---------------------------------------------------------------------------------


def test_unknown_contact_is_404(api):
    assert_not_found(_post(api, MISSING_CONTACT, {"type": "message.sent", "channel": "sms"}))
    assert_not_found(api.get(_url(MISSING_CONTACT)))
    assert not ActivityEvent.objects.exists()


def test_another_accounts_contact_is_404_and_nothing_is_recorded(api, other_api, contact):
    event = _record(api, contact.id, message_id="msg_1")

    for body in (
        {"type": "message.sent", "channel": "sms"},
        {"type": "message.delivered", "channel": "sms", "message_id": "msg_1"},
    ):
        response = _post(other_api, contact.id, body)
        assert_not_found(response)
        assert event["id"].encode() not in response.content
    response = other_api.get(_url(contact.id))
    assert_not_found(response)
    assert event["id"].encode() not in response.content
    assert list(ActivityEvent.objects.values_list("id", flat=True)) == [event["id"]]


def test_deleted_contact_is_404(api, contact):
    _record(api, contact.id)
    assert api.delete(f"/v1/contacts/{contact.id}").status_code == 204

    assert_not_found(api.get(_url(contact.id)))
    assert_not_found(_post(api, contact.id, {"type": "message.sent", "channel": "sms"}))


def test_no_key_is_401(anonymous_api, contact):
    assert anonymous_api.get(_url(contact.id)).status_code == 401
    assert anonymous_api.post(
        _url(contact.id), {"type": "message.sent", "channel": "sms"}, format="json"
    ).status_code == (401)
    assert not ActivityEvent.objects.exists()


# --- concurrency -------------------------------------------------------------------------


def _in_parallel(raw_key, count, send):
    """Run ``send(client)`` in ``count`` threads, each with its own connection, released together."""
    barrier = threading.Barrier(count)

    def run(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=30)
            return send(client)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.many_connections
@pytest.mark.django_db(transaction=True)
def test_parallel_retries_of_one_receipt_store_one_event(api, contact):
    body = {"type": "message.delivered", "channel": "sms", "message_id": "msg_race", "data": {"status": "DELIVRD"}}

    responses = _in_parallel(api.raw_key, 20, lambda client: _post(client, contact.id, body))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 19 + [201]
    created = next(response.json() for response in responses if response.status_code == 201)
    assert [response.json() for response in responses if response.status_code == 200] == [created] * 19
    assert list(ActivityEvent.objects.filter(contact_id=contact.id).values_list("id", flat=True)) == [created["id"]]


# --- GET: order and pagination -----------------------------------------------------------


def _at(event_id, moment):
    ActivityEvent.objects.filter(pk=event_id).update(occurred_at=moment)


def test_timeline_is_newest_occurred_at_first_then_id_desc(api, contact):
    # Posted out of time order; three timestamps shared by four events each,
    # so only the occurred_at-then-id rule explains the expected order.
    events = [
        _record(api, contact.id, occurred_at=_rfc3339(T0 + datetime.timedelta(hours=(i * 7) % 3))) for i in range(12)
    ]
    expected = [
        event["id"]
        for event in sorted(events, key=lambda event: (_parse(event["occurred_at"]), event["id"]), reverse=True)
    ]

    response = api.get(_url(contact.id), {"limit": 100})

    assert response.status_code == 200
    assert _ids(response) == expected
    assert _ids(response) == _newest_first(contact.id)
    assert _walk(api, contact.id, 5) == expected


def test_timeline_orders_by_occurred_at_not_by_when_recorded(api, contact):
    old = _record(api, contact.id, occurred_at="2020-01-01T00:00:00Z")
    new = _record(api, contact.id, occurred_at="2030-01-01T00:00:00Z")
    middle = _record(api, contact.id, occurred_at="2026-01-01T00:00:00Z")

    assert _ids(api.get(_url(contact.id))) == [new["id"], middle["id"], old["id"]]


def test_timeline_shows_only_that_contacts_events(api, contact, make_contact):
    other = make_contact(email="grace@example.com")
    mine = [_record(api, contact.id) for _ in range(3)]
    _record(api, other.id)

    assert set(_ids(api.get(_url(contact.id)))) == {event["id"] for event in mine}


def test_keyset_walk_with_limit_3_yields_each_event_once_even_when_many_share_occurred_at(api, contact):
    with transaction.atomic():
        events = [_record(api, contact.id, message_id=f"msg_{i}") for i in range(31)]
    # Most events share one occurred_at (as a bulk import of receipts would); a
    # few are before and after it.
    for i, event in enumerate(events):
        offset = datetime.timedelta(minutes=i - 24) * (1 if i % 2 else -1)
        _at(event["id"], T0 if i < 25 else T0 + offset)
    assert ActivityEvent.objects.filter(contact_id=contact.id, occurred_at=T0).count() == 25

    walked = _walk(api, contact.id, 3)

    assert len(walked) == 31
    assert set(walked) == {event["id"] for event in events}
    assert walked == _newest_first(contact.id)


def test_walk_while_events_are_recorded_and_deleted_yields_each_stable_event_once(api, contact):
    stable = [_record(api, contact.id, occurred_at=_rfc3339(T0 - datetime.timedelta(minutes=i))) for i in range(20)]
    doomed = [
        _record(api, contact.id, occurred_at=_rfc3339(T0 - datetime.timedelta(minutes=i, seconds=30))) for i in range(5)
    ]
    added = []

    def meddle(page):
        # Newer, older and in-between events appear; some not yet seen disappear.
        for offset in (
            datetime.timedelta(hours=1),
            -datetime.timedelta(hours=1),
            -datetime.timedelta(minutes=10, seconds=15),
        ):
            added.append(
                _record(api, contact.id, occurred_at=_rfc3339(T0 + offset + datetime.timedelta(seconds=page)))["id"]
            )
        if page <= len(doomed):
            ActivityEvent.objects.filter(pk=doomed[-page]["id"]).delete()

    walked = _walk(api, contact.id, 3, between_pages=meddle)

    assert len(walked) == len(set(walked))
    assert set(walked) >= {event["id"] for event in stable}
    assert set(walked) <= {event["id"] for event in stable + doomed} | set(added)
    stable_ids = {event["id"] for event in stable}
    assert [event_id for event_id in walked if event_id in stable_ids] == [event["id"] for event in stable]


def test_default_page_is_20_with_a_cursor(api, contact):
    with transaction.atomic():
        for i in range(25):
            _record(api, contact.id, message_id=f"msg_{i}")

    body = api.get(_url(contact.id)).json()

    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)
    assert body["next_cursor"]
    rest = api.get(_url(contact.id), {"cursor": body["next_cursor"]}).json()
    assert len(rest["data"]) == 5
    assert rest["has_more"] is False
    assert rest["next_cursor"] is None


def test_empty_timeline_is_an_empty_last_page(api, contact):
    response = api.get(_url(contact.id))

    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "1e1", " 5", "\u0661"])
def test_limit_out_of_range_or_not_an_integer_is_400(api, contact, limit):
    _record(api, contact.id)

    assert_invalid(api.get(_url(contact.id), {"limit": limit}), "limit")


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(api, contact, limit):
    for i in range(3):
        _record(api, contact.id, message_id=f"msg_{i}")

    response = api.get(_url(contact.id), {"limit": limit})

    assert response.status_code == 200
    assert len(response.json()["data"]) == min(limit, 3)


def _cursor(api, contact):
    for i in range(3):
        _record(api, contact.id, message_id=f"msg_{i}")
    cursor = api.get(_url(contact.id), {"limit": 1}).json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def test_malformed_or_tampered_cursor_is_400(api, contact):
    cursor = _cursor(api, contact)
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]

    for bad in ["garbage", "", "x" * 500, cursor[:-1], cursor + "A", flipped, cursor[::-1], "%00", "null"]:
        response = api.get(_url(contact.id), {"cursor": bad})
        assert_invalid(response, "cursor")


def test_cursor_of_another_collection_is_400(api, contact, make_contact):
    for i in range(3):
        make_contact(email=f"c{i}@example.com")
    contacts_cursor = api.get("/v1/contacts", {"limit": 1}).json()["next_cursor"]
    assert isinstance(contacts_cursor, str)
    _record(api, contact.id)

    assert_invalid(api.get(_url(contact.id), {"cursor": contacts_cursor}), "cursor")


@pytest.mark.parametrize(
    "payload",
    [
        ["not a date", "act_x"],
        [12, "act_x"],
        ["2026-11-27T10:15:00Z"],
        [],
        {"occurred_at": "2026-11-27T10:15:00Z", "id": "act_x"},
        None,
        "act_x",
        ["2026-11-27T10:15:00Z", "act_x", "extra"],
    ],
)
def test_well_signed_cursor_with_a_wrong_shape_is_400(api, contact, payload):
    _record(api, contact.id)
    cursor = signing.dumps(payload, salt=KeysetPagination._salt(("-occurred_at", "-id")), compress=True)

    assert_invalid(api.get(_url(contact.id), {"cursor": cursor}), "cursor")


def test_timeline_runs_a_constant_number_of_queries_whatever_the_page_size(
    api, contact, make_contact, django_assert_num_queries, hot_api_key
):
    other = make_contact(email="grace@example.com")
    with transaction.atomic():
        for i in range(60):
            _record(api, contact.id, message_id=f"msg_{i}", data={"i": i})
            _record(api, other.id, message_id=f"msg_{i}")
    api.get(_url(contact.id), {"limit": 1})  # warm-up

    with django_assert_num_queries(2):
        small = api.get(_url(contact.id), {"limit": 5})
    with django_assert_num_queries(2):
        large = api.get(_url(contact.id), {"limit": 50})
    with django_assert_num_queries(2):
        deep = api.get(_url(contact.id), {"limit": 50, "cursor": small.json()["next_cursor"]})
    with django_assert_num_queries(2):
        filtered = api.get(_url(contact.id), {"limit": 50, "type": "message.delivered", "channel": "sms"})

    assert len(small.json()["data"]) == 5
    assert len(large.json()["data"]) == 50
    assert len(deep.json()["data"]) == 50
    assert len(filtered.json()["data"]) == 50


# --- GET: filters -------------------------------------------------------------------------


def _timeline(api, contact):
    """Six events an hour apart from T0, of mixed types and channels; returns them oldest first."""
    specs = [
        ("message.sent", "sms"),
        ("message.delivered", "sms"),
        ("message.sent", "email"),
        ("agent.interaction", None),
        ("message.opened", "email"),
        ("message.delivered", "whatsapp"),
    ]
    return [
        _record(api, contact.id, type=type_, channel=channel, occurred_at=_rfc3339(T0 + datetime.timedelta(hours=i)))
        for i, (type_, channel) in enumerate(specs)
    ]


def _filtered(api, contact, **params):
    response = api.get(_url(contact.id), {"limit": 100, **params})
    assert response.status_code == 200, response.content
    return _ids(response)


def _newest_ids(events):
    return [event["id"] for event in reversed(events)]


def test_type_filter_is_exact(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, type="message.sent") == _newest_ids([events[0], events[2]])
    assert _filtered(api, contact, type="message.delivered") == _newest_ids([events[1], events[5]])
    assert _filtered(api, contact, type="agent.interaction") == [events[3]["id"]]
    assert _filtered(api, contact, type="message.failed") == []


def test_channel_filter_is_exact(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, channel="sms") == _newest_ids(events[0:2])
    assert _filtered(api, contact, channel="email") == _newest_ids([events[2], events[4]])
    assert _filtered(api, contact, channel="whatsapp") == [events[5]["id"]]
    assert _filtered(api, contact, channel="voice") == []


def test_since_is_inclusive(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, since="2026-11-27T12:15:00Z") == _newest_ids(events[2:])
    assert _filtered(api, contact, since="2026-11-27T12:15:00.000001Z") == _newest_ids(events[3:])
    # The same instant with an offset.
    assert _filtered(api, contact, since="2026-11-27T14:15:00+02:00") == _newest_ids(events[2:])


def test_until_is_exclusive(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, until="2026-11-27T12:15:00Z") == _newest_ids(events[:2])
    assert _filtered(api, contact, until="2026-11-27T12:15:00.000001Z") == _newest_ids(events[:3])
    assert _filtered(api, contact, until="2026-11-27T07:15:00-05:00") == _newest_ids(events[:2])
    # An offset PostgreSQL refuses (beyond ±15:59) is converted to UTC first, not a 500.
    assert _filtered(api, contact, until="2026-11-26T19:34:00-16:41") == _newest_ids(events[:2])


def test_since_and_until_make_a_half_open_window(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, since="2026-11-27T11:15:00Z", until="2026-11-27T14:15:00Z") == _newest_ids(
        events[1:4]
    )
    assert _filtered(api, contact, since="2026-11-27T12:15:00Z", until="2026-11-27T12:15:00Z") == []


def test_filters_combine(api, contact):
    events = _timeline(api, contact)

    assert _filtered(api, contact, type="message.delivered", channel="sms") == [events[1]["id"]]
    assert _filtered(api, contact, type="message.sent", channel="email", since="2026-11-27T11:15:00Z") == [
        events[2]["id"]
    ]
    assert _filtered(api, contact, type="message.sent", until="2026-11-27T12:15:00Z") == [events[0]["id"]]
    assert _filtered(
        api, contact, channel="email", since="2026-11-27T10:15:00Z", until="2026-11-27T15:15:00Z", type="message.opened"
    ) == [events[4]["id"]]
    assert _filtered(api, contact, type="message.delivered", channel="email") == []


def test_filters_combine_with_the_cursor(api, contact):
    with transaction.atomic():
        events = [
            _record(
                api,
                contact.id,
                type="message.sent" if i % 2 else "message.delivered",
                occurred_at=_rfc3339(T0 + datetime.timedelta(minutes=i)),
            )
            for i in range(20)
        ]
    expected = [event["id"] for event in reversed(events) if event["type"] == "message.sent"]

    assert _walk(api, contact.id, 3, {"type": "message.sent"}) == expected
    assert (
        _walk(api, contact.id, 2, {"type": "message.sent", "since": _rfc3339(T0 + datetime.timedelta(minutes=10))})
        == (expected[:5])
    )


def test_preference_changes_appear_in_the_timeline_as_preference_updated(api, contact):
    _record(api, contact.id, occurred_at="2020-01-01T00:00:00Z")
    response = api.put(f"/v1/contacts/{contact.id}/preferences", {"sms": "opted_out"}, format="json")
    assert response.status_code == 200, response.content

    response = api.get(_url(contact.id), {"type": "preference.updated"})

    assert response.status_code == 200
    [event] = response.json()["data"]
    assert set(event) == EVENT_FIELDS
    assert (event["type"], event["channel"]) == ("preference.updated", "sms")
    assert _filtered(api, contact, channel="sms", type="preference.updated") == [event["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"type": "message.bounced"},
        {"type": "MESSAGE.SENT"},
        {"channel": "fax"},
        {"channel": "SMS "},
        {"since": "yesterday"},
        {"since": "2026-02-30T00:00:00Z"},
        {"until": "2026-11-27T25:00:00Z"},
        {"until": "not a date"},
        {"since": ""},
        {"type": ""},
        {"channel": ""},
        {"until": "2026-11-27T12:15:00"},
        {"since": "0001-01-01T00:00:00+10:00"},
    ],
)
def test_malformed_filter_is_400_naming_the_parameter(api, contact, params):
    _record(api, contact.id)

    assert_invalid(api.get(_url(contact.id), params), *params)


def test_several_malformed_filters_are_all_named(api, contact):
    response = api.get(_url(contact.id), {"type": "nope", "channel": "fax", "since": "x", "until": "y"})

    assert_invalid(response, "type", "channel", "since", "until")


def test_malformed_filter_with_a_valid_cursor_is_still_400(api, contact):
    cursor = _cursor(api, contact)

    assert_invalid(api.get(_url(contact.id), {"cursor": cursor, "since": "soon"}), "since")
    assert_invalid(api.get(_url(contact.id), {"limit": 0, "type": "message.sent"}), "limit")


# --- deletion --------------------------------------------------------------------------


def test_deleting_the_contact_deletes_its_events(api, contact, make_contact):
    other = make_contact(email="grace@example.com")
    for i in range(3):
        _record(api, contact.id, message_id=f"msg_{i}")
    api.put(f"/v1/contacts/{contact.id}/preferences", {"email": "opted_in"}, format="json")
    kept = _record(api, other.id, message_id="msg_0")
    assert ActivityEvent.objects.filter(contact_id=contact.id).count() == 4

    assert api.delete(f"/v1/contacts/{contact.id}").status_code == 204

    assert not ActivityEvent.objects.filter(contact_id=contact.id).exists()
    assert list(ActivityEvent.objects.values_list("id", flat=True)) == [kept["id"]]
    assert _ids(api.get(_url(other.id))) == [kept["id"]]


# --- query plans ---------------------------------------------------------------------------

COMMON_TYPES = ["message.sent", "message.delivered", "message.opened", "message.received"]
COMMON_CHANNELS = ["sms", "whatsapp", "email"]


def _bulk_events(account, contacts, per_contact, seed):
    rng = random.Random(seed)
    rows = []
    for contact in contacts:
        for i in range(per_contact):
            rows.append(
                ActivityEvent(
                    account=account,
                    contact=contact,
                    type="message.failed" if i % 100 == 0 else rng.choice(COMMON_TYPES),
                    channel="voice" if i % 90 == 0 else rng.choice(COMMON_CHANNELS),
                    occurred_at=T0 - datetime.timedelta(minutes=i, seconds=rng.randrange(60)),
                    message_id=f"msg_{i}",
                    data={"i": i},
                )
            )
    ActivityEvent.objects.bulk_create(rows, batch_size=1000)


def _plan(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_timeline_pages_are_served_by_an_activity_index_not_a_sequential_scan(account, other_account):
    contacts = [Contact.objects.create(account=account, email=f"c{i}@example.com", phone=None) for i in range(4)]
    theirs = [Contact.objects.create(account=other_account, email=f"t{i}@example.com") for i in range(2)]
    _bulk_events(account, contacts, 1000, seed=1)
    _bulk_events(other_account, theirs, 1000, seed=2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_activityevent")
    contact = contacts[1]
    # The rows the view starts from: the account's events of the contact.
    events = ActivityEvent.objects.for_account(account).filter(contact=contact)
    filters = {
        "no filter": {},
        "rare type": {"type": "message.failed"},
        "common type": {"type": "message.delivered"},
        "rare channel": {"channel": "voice"},
        "common channel": {"channel": "sms"},
        "since": {"since": "2026-11-27T00:00:00Z"},
        "until": {"until": "2026-11-26T20:00:00Z"},
        "since and until": {"since": "2026-11-26T20:00:00Z", "until": "2026-11-27T02:00:00+00:00"},
        "type and channel": {"type": "message.sent", "channel": "email"},
        "type and window": {"type": "message.opened", "since": "2026-11-26T20:00:00Z", "until": "2026-11-27T08:00:00Z"},
    }
    middle = events.order_by("-occurred_at", "-id")[500]

    queries = {}
    for name, params in filters.items():
        filterset = ActivityFilter(data=params, queryset=events)
        assert filterset.is_valid(), filterset.errors
        queryset = filterset.qs
        assert queryset.exists(), name
        # The page the API runs: newest first, one row more than the default limit.
        queries[f"first page, {name}"] = queryset.order_by("-occurred_at", "-id")[:21]
        # A deep page: the keyset seek as KeysetPagination writes it.
        deep = queryset.filter(Seek(("-occurred_at", "-id"), [middle.occurred_at, middle.id]))
        queries[f"deep page, {name}"] = deep.order_by("-occurred_at", "-id")[:21]
    plans = {name: _plan(queryset) for name, queryset in queries.items()}

    assert {name: plan for name, plan in plans.items() if "Seq Scan on contacts_activityevent" in plan} == {}
    # An activity_* index, and not only the receipt constraint's (contact, message_id, type),
    # which cannot serve the order: every page would sort all of the contact's events.
    timeline_index = re.compile(r"\bactivity_(?!receipt\b)\w+")
    assert {name: plan for name, plan in plans.items() if not timeline_index.search(plan)} == {}
