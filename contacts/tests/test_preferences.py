"""``PUT /v1/contacts/{id}/preferences`` (API.md §5): statuses, validation, activity events, concurrency."""

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create
from contacts.models import ActivityEvent, Contact
from contacts_project.testing import assert_error, assert_invalid, assert_not_found

CONTACTS = "/v1/contacts"
UNKNOWN_ID = "con_doesNotExist0000"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
# API.md §5, spelled out here so a change to the code's constants cannot hide a change to the contract.
CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")
STATUSES = ("opted_in", "opted_out", "unset")
ALL_UNSET = dict.fromkeys(CHANNELS, "unset")


def preferences_url(contact_id: str) -> str:
    return f"{CONTACTS}/{contact_id}/preferences"


def put_preferences(api, contact_id: str, body):
    return api.put(preferences_url(contact_id), body, format="json")


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def created(api, **fields) -> dict:
    response = api.post(CONTACTS, fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored(api, contact_id: str) -> dict:
    return ok(api.get(f"{CONTACTS}/{contact_id}"))


def events(contact_id: str) -> list[tuple[str, dict]]:
    """The contact's ``preference.updated`` events as (channel, data), in a stable order."""
    rows = ActivityEvent.objects.filter(contact_id=contact_id, type="preference.updated")
    return sorted(
        ((row.channel, row.data) for row in rows), key=lambda item: (item[0], json.dumps(item[1], sort_keys=True))
    )


def changes(contact_id: str) -> list[tuple]:
    """The contact's preference changes as sorted (channel, old_status, new_status, api_key_id)."""
    return sorted(
        (channel, data["old_status"], data["new_status"], data["api_key_id"]) for channel, data in events(contact_id)
    )


def key_id(client) -> str:
    return ApiKey.objects.get(prefix=client.raw_key.split("_")[1]).pk


def client_for(account) -> APIClient:
    _, raw_key = api_key_create(account=account, name="second")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.raw_key = raw_key
    return client


def backdate(contact_id: str) -> None:
    """Move ``updated_at`` into the past so a change shows as a later timestamp (no sleeping)."""
    Contact.objects.filter(pk=contact_id).update(updated_at=LONG_AGO)


def updated_at(api, contact_id: str) -> datetime:
    return datetime.fromisoformat(stored(api, contact_id)["updated_at"])


# --- Setting statuses -----------------------------------------------------------


def test_put_sets_the_sent_channels_and_returns_all_six(api):
    contact = created(api, email="ada@example.com")
    assert contact["preferences"] == ALL_UNSET

    body = ok(put_preferences(api, contact["id"], {"sms": "opted_out", "email": "opted_in"}))

    expected = {**ALL_UNSET, "sms": "opted_out", "email": "opted_in"}
    assert body == expected
    assert stored(api, contact["id"])["preferences"] == expected


def test_channels_not_sent_are_unchanged(api):
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "email": "opted_in", "voice": "opted_out"}))

    body = ok(put_preferences(api, contact["id"], {"whatsapp": "opted_in", "voice": "unset"}))

    expected = {**ALL_UNSET, "sms": "opted_out", "email": "opted_in", "whatsapp": "opted_in"}
    assert body == expected
    assert stored(api, contact["id"])["preferences"] == expected


def test_all_six_channels_in_one_request(api):
    contact = created(api, email="ada@example.com")
    wanted = {"sms": "opted_in", "whatsapp": "opted_out", "email": "opted_in", "rcs": "opted_out", "viber": "unset"}
    wanted["voice"] = "opted_in"

    assert ok(put_preferences(api, contact["id"], wanted)) == wanted
    assert stored(api, contact["id"])["preferences"] == wanted
    assert len(events(contact["id"])) == 5


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_every_status_transition_of_every_channel(api, channel, old, new):
    contact = created(api, email="ada@example.com")
    if old != "unset":
        ok(put_preferences(api, contact["id"], {channel: old}))
    before = events(contact["id"])

    body = ok(put_preferences(api, contact["id"], {channel: new}))

    assert body == {**ALL_UNSET, channel: new}
    assert stored(api, contact["id"])["preferences"] == {**ALL_UNSET, channel: new}
    added = [event for event in events(contact["id"]) if event not in before]
    if old == new:
        assert events(contact["id"]) == before
    else:
        assert [(event_channel, data["old_status"], data["new_status"]) for event_channel, data in added] == [
            (channel, old, new)
        ]


def test_back_to_unset_reads_as_never_asked_everywhere(api):
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "email": "opted_in"}))

    body = ok(put_preferences(api, contact["id"], {"sms": "unset", "email": "unset"}))

    assert body == ALL_UNSET
    assert stored(api, contact["id"])["preferences"] == ALL_UNSET
    assert ok(api.get(CONTACTS))["data"][0]["preferences"] == ALL_UNSET
    assert ok(api.get(f"{CONTACTS}/optouts"))["data"] == []


# --- Invalid input: 400 and nothing changes ----------------------------------------


def _seeded(api) -> dict:
    """A contact with some statuses set and ``updated_at`` in the past."""
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_in", "email": "opted_out"}))
    backdate(contact["id"])
    return stored(api, contact["id"])


def _assert_unchanged(api, contact: dict, events_before) -> None:
    assert stored(api, contact["id"]) == contact
    assert events(contact["id"]) == events_before


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({"fax": "opted_out"}, ["fax"]),
        ({"SMS": "opted_out"}, ["SMS"]),
        ({"sms ": "opted_out"}, ["sms "]),
        ({"push": "opted_in", "sms": "opted_out"}, ["push"]),
        ({"sms": "opted_out", "email": "opted_in", "telegram": "opted_out"}, ["telegram"]),
        ({"fax": "opted_out", "pager": "unset", "sms": "unset"}, ["fax", "pager"]),
        ({"preferences": {"sms": "opted_out"}}, ["preferences"]),
        ({"": "opted_out"}, [""]),
    ],
)
def test_unknown_channel_is_400_naming_it_and_nothing_changes(api, body, attrs):
    contact = _seeded(api)
    before = events(contact["id"])

    assert_invalid(put_preferences(api, contact["id"], body), *attrs)

    _assert_unchanged(api, contact, before)


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({"sms": "opted-out"}, ["sms"]),
        ({"sms": "OPTED_OUT"}, ["sms"]),
        ({"sms": "Opted_In"}, ["sms"]),
        ({"sms": "yes"}, ["sms"]),
        ({"sms": ""}, ["sms"]),
        ({"sms": " opted_out"}, ["sms"]),
        ({"voice": "subscribed", "sms": "opted_out"}, ["voice"]),
        ({"email": "opted_in", "whatsapp": "unknown"}, ["whatsapp"]),
        ({"sms": "no", "viber": "maybe"}, ["sms", "viber"]),
    ],
)
def test_unknown_status_is_400_naming_the_channel_and_nothing_changes(api, body, attrs):
    contact = _seeded(api)
    before = events(contact["id"])

    assert_invalid(put_preferences(api, contact["id"], body), *attrs)

    _assert_unchanged(api, contact, before)


@pytest.mark.parametrize(
    "value",
    [0, 1, 1.5, True, False, None, [], ["opted_out"], {}, {"status": "opted_out"}],
    ids=["zero", "one", "float", "true", "false", "null", "empty-list", "list", "empty-object", "object"],
)
def test_status_of_the_wrong_type_is_400_naming_the_channel(api, value):
    contact = _seeded(api)
    before = events(contact["id"])

    assert_invalid(put_preferences(api, contact["id"], {"email": "opted_in", "rcs": value}), "rcs")

    _assert_unchanged(api, contact, before)


@pytest.mark.parametrize(
    "body",
    [[], [{"sms": "opted_out"}], ["sms"], "opted_out", "sms=opted_out", 5, True, None],
    ids=["empty-list", "list-of-object", "list-of-string", "string", "form-like-string", "number", "true", "null"],
)
def test_body_that_is_not_an_object_is_400_with_null_attr(api, body):
    contact = _seeded(api)
    before = events(contact["id"])

    # Sent as raw JSON: the test client would turn None into an empty body.
    response = api.put(preferences_url(contact["id"]), json.dumps(body), content_type="application/json")

    assert_invalid(response, None)

    _assert_unchanged(api, contact, before)


def test_body_that_is_not_json_is_rejected_and_nothing_changes(api):
    contact = _seeded(api)
    before = events(contact["id"])

    response = api.put(preferences_url(contact["id"]), '{"sms": "opted_out"', content_type="application/json")

    assert_invalid(response, None)
    _assert_unchanged(api, contact, before)


def test_empty_object_is_200_with_the_map_unchanged_and_no_event(api):
    contact = _seeded(api)
    before = events(contact["id"])

    body = ok(put_preferences(api, contact["id"], {}))

    assert body == {**ALL_UNSET, "sms": "opted_in", "email": "opted_out"}
    _assert_unchanged(api, contact, before)


# --- Activity events ---------------------------------------------------------------


def test_one_event_per_changed_channel_with_old_new_and_the_key(api):
    contact = created(api, email="ada@example.com")

    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "email": "opted_in", "whatsapp": "unset"}))

    recorded = ActivityEvent.objects.filter(contact_id=contact["id"])
    assert {event.type for event in recorded} == {"preference.updated"}
    assert {event.account_id for event in recorded} == {Contact.objects.get(pk=contact["id"]).account_id}
    assert changes(contact["id"]) == [
        ("email", "unset", "opted_in", key_id(api)),
        ("sms", "unset", "opted_out", key_id(api)),
    ]


def test_events_show_in_the_activity_timeline(api):
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_out"}))
    ok(put_preferences(api, contact["id"], {"sms": "opted_in", "voice": "opted_out"}))

    timeline = ok(api.get(f"{CONTACTS}/{contact['id']}/activity", {"type": "preference.updated", "limit": 100}))

    assert timeline["has_more"] is False
    seen = sorted(
        (event["type"], event["channel"], event["data"]["old_status"], event["data"]["new_status"])
        for event in timeline["data"]
    )
    assert seen == [
        ("preference.updated", "sms", "opted_out", "opted_in"),
        ("preference.updated", "sms", "unset", "opted_out"),
        ("preference.updated", "voice", "unset", "opted_out"),
    ]
    assert {event["data"]["api_key_id"] for event in timeline["data"]} == {key_id(api)}


def test_each_event_records_the_key_that_made_the_request(api, account):
    contact = created(api, email="ada@example.com")
    second = client_for(account)
    assert key_id(second) != key_id(api)

    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "rcs": "opted_in"}))
    ok(put_preferences(second, contact["id"], {"sms": "opted_in", "viber": "opted_out"}))

    assert changes(contact["id"]) == sorted(
        [
            ("sms", "unset", "opted_out", key_id(api)),
            ("rcs", "unset", "opted_in", key_id(api)),
            ("sms", "opted_out", "opted_in", key_id(second)),
            ("viber", "unset", "opted_out", key_id(second)),
        ]
    )


def test_no_event_for_channels_sent_with_their_current_status(api):
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "email": "opted_in"}))
    before = events(contact["id"])

    body = ok(
        put_preferences(
            api, contact["id"], {"sms": "opted_out", "email": "opted_in", "voice": "unset", "rcs": "opted_in"}
        )
    )

    assert body == {**ALL_UNSET, "sms": "opted_out", "email": "opted_in", "rcs": "opted_in"}
    added = [event for event in events(contact["id"]) if event not in before]
    assert [(channel, data["old_status"], data["new_status"]) for channel, data in added] == [
        ("rcs", "unset", "opted_in")
    ]


def test_a_repeated_write_is_a_no_op_without_event_or_updated_at_change(api):
    contact = created(api, email="ada@example.com")
    statuses = {"sms": "opted_out", "email": "opted_in", "whatsapp": "unset"}
    first = ok(put_preferences(api, contact["id"], statuses))
    backdate(contact["id"])
    before = events(contact["id"])
    assert len(before) == 2

    second = ok(put_preferences(api, contact["id"], statuses))

    assert second == first
    assert events(contact["id"]) == before
    assert updated_at(api, contact["id"]) == LONG_AGO


def test_updated_at_advances_on_a_change_only(api):
    contact = created(api, email="ada@example.com")
    backdate(contact["id"])

    ok(put_preferences(api, contact["id"], {"sms": "unset", "email": "unset"}))
    assert updated_at(api, contact["id"]) == LONG_AGO

    ok(put_preferences(api, contact["id"], {"sms": "opted_in"}))
    assert updated_at(api, contact["id"]) > LONG_AGO
    backdate(contact["id"])

    ok(put_preferences(api, contact["id"], {"sms": "opted_in"}))
    assert updated_at(api, contact["id"]) == LONG_AGO

    ok(put_preferences(api, contact["id"], {"sms": "unset"}))
    assert updated_at(api, contact["id"]) > LONG_AGO
    assert stored(api, contact["id"])["created_at"] == contact["created_at"]


# --- The contact object --------------------------------------------------------------


def test_contact_get_and_list_show_the_statuses(api):
    ada = created(api, email="ada@example.com")
    grace = created(api, email="grace@example.com")
    ok(put_preferences(api, ada["id"], {"whatsapp": "opted_in", "voice": "opted_out"}))

    listed = {contact["id"]: contact["preferences"] for contact in ok(api.get(CONTACTS))["data"]}

    assert listed == {ada["id"]: {**ALL_UNSET, "whatsapp": "opted_in", "voice": "opted_out"}, grace["id"]: ALL_UNSET}
    assert stored(api, ada["id"])["preferences"] == listed[ada["id"]]
    assert stored(api, grace["id"])["preferences"] == ALL_UNSET


def test_list_shows_statuses_without_a_query_per_contact(
    api, account, make_contact, django_assert_num_queries, hot_api_key
):
    from contacts.services import contact_set_preferences

    with transaction.atomic():
        for i in range(30):
            contact = make_contact(email=f"c{i}@example.com")
            contact_set_preferences(
                account=account,
                contact_id=contact.pk,
                statuses={CHANNELS[i % 6]: STATUSES[i % 3], CHANNELS[(i + 1) % 6]: "opted_out"},
                api_key_id=None,
            )
    api.get(CONTACTS, {"limit": 1})  # warm-up

    # One query, the page: the same for 3 contacts and for 30.
    with django_assert_num_queries(1):
        small = ok(api.get(CONTACTS, {"limit": 3}))
    with django_assert_num_queries(1):
        large = ok(api.get(CONTACTS, {"limit": 30}))

    assert len(small["data"]) == 3
    assert len(large["data"]) == 30
    expected = {contact.pk: contact.preference_map for contact in Contact.objects.for_account(account)}
    assert {contact["id"]: contact["preferences"] for contact in large["data"]} == expected
    assert sum("opted_out" in preferences.values() for preferences in expected.values()) == 30


def test_read_only_preferences_in_a_contact_write_are_ignored(api):
    contact = created(api, email="ada@example.com", preferences={"sms": "opted_out"})
    assert contact["preferences"] == ALL_UNSET

    body = ok(
        api.put(f"{CONTACTS}/{contact['id']}", {"first_name": "Ada", "preferences": {"sms": "opted_in"}}, format="json")
    )

    assert body["preferences"] == ALL_UNSET
    assert events(contact["id"]) == []


# --- Not found -------------------------------------------------------------------------


@pytest.mark.parametrize("contact_id", [UNKNOWN_ID, "con_", "con_x"])
def test_unknown_contact_is_404(api, contact_id):
    assert_not_found(put_preferences(api, contact_id, {"sms": "opted_out"}))


def test_contact_of_another_account_is_404_and_unchanged(api, other_api):
    theirs = created(other_api, email="ada@example.com")
    ok(put_preferences(other_api, theirs["id"], {"email": "opted_in"}))
    before = events(theirs["id"])

    assert_not_found(put_preferences(api, theirs["id"], {"sms": "opted_out", "email": "opted_out"}))
    assert_not_found(put_preferences(api, theirs["id"], {}))

    assert stored(other_api, theirs["id"])["preferences"] == {**ALL_UNSET, "email": "opted_in"}
    assert events(theirs["id"]) == before


def test_deleted_contact_is_404(api):
    contact = created(api, email="ada@example.com")
    assert api.delete(f"{CONTACTS}/{contact['id']}").status_code == 204

    assert_not_found(put_preferences(api, contact["id"], {"sms": "opted_in"}))
    assert not ActivityEvent.objects.filter(contact_id=contact["id"]).exists()


# --- Who may write, and how ---------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-key", "Bearer ck_abcdefghijkl_" + "x" * 32])
def test_without_a_valid_key_is_401_and_nothing_changes(api, authorization):
    contact = created(api, email="ada@example.com")
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    assert_error(put_preferences(client, contact["id"], {"sms": "opted_out"}), 401, "client_error", [None])

    assert stored(api, contact["id"])["preferences"] == ALL_UNSET
    assert events(contact["id"]) == []


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_other_methods_on_preferences_are_405(api, method):
    contact = created(api, email="ada@example.com")

    response = getattr(api, method)(preferences_url(contact["id"]), {"sms": "opted_out"}, format="json")

    assert_error(response, 405, "client_error", [None], code="method_not_allowed")
    assert stored(api, contact["id"])["preferences"] == ALL_UNSET


def test_clients_cannot_post_a_preference_updated_event(api):
    contact = created(api, email="ada@example.com")

    response = api.post(
        f"{CONTACTS}/{contact['id']}/activity",
        {"type": "preference.updated", "channel": "sms", "data": {"old_status": "unset", "new_status": "opted_out"}},
        format="json",
    )

    assert_invalid(response, "type")
    assert events(contact["id"]) == []
    assert stored(api, contact["id"])["preferences"] == ALL_UNSET


# --- Concurrency -----------------------------------------------------------------------


def _in_parallel(raw_key, count, send):
    """Run ``send(client, i)`` for i in 0..count-1 in ``count`` threads started together, each on its own connection."""
    barrier = threading.Barrier(count)

    def run(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=30)
            return send(client, i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.many_connections
@pytest.mark.django_db(transaction=True)
def test_parallel_puts_on_different_channels_all_land(api):
    contact = created(api, email="ada@example.com")
    wanted = {"sms": "opted_out", "whatsapp": "opted_in", "email": "opted_out", "rcs": "opted_in"}
    wanted |= {"viber": "opted_out", "voice": "opted_in"}

    responses = _in_parallel(
        api.raw_key, 6, lambda client, i: put_preferences(client, contact["id"], {CHANNELS[i]: wanted[CHANNELS[i]]})
    )

    assert [response.status_code for response in responses] == [200] * 6
    for i, response in enumerate(responses):
        assert response.json()[CHANNELS[i]] == wanted[CHANNELS[i]]
    assert stored(api, contact["id"])["preferences"] == wanted
    assert [(channel, data["old_status"], data["new_status"]) for channel, data in events(contact["id"])] == sorted(
        (channel, "unset", status) for channel, status in wanted.items()
    )


@pytest.mark.many_connections
@pytest.mark.django_db(transaction=True)
def test_parallel_puts_record_one_event_per_real_change(api):
    contact = created(api, email="ada@example.com")
    ok(put_preferences(api, contact["id"], {"sms": "opted_out", "voice": "opted_in"}))
    # 24 writers, four per channel, all writing the same status to their channel:
    # sms is already opted_out (no change), the other five change exactly once.
    wanted = {**dict.fromkeys(CHANNELS, "opted_out"), "email": "opted_in"}

    responses = _in_parallel(
        api.raw_key,
        24,
        lambda client, i: put_preferences(client, contact["id"], {CHANNELS[i % 6]: wanted[CHANNELS[i % 6]]}),
    )

    assert [response.status_code for response in responses] == [200] * 24
    assert stored(api, contact["id"])["preferences"] == wanted
    changes = [(channel, data["old_status"], data["new_status"]) for channel, data in events(contact["id"])]
    assert sorted(changes) == sorted(
        [
            ("sms", "unset", "opted_out"),  # the seeding write
            ("voice", "unset", "opted_in"),  # the seeding write
            ("whatsapp", "unset", "opted_out"),
            ("email", "unset", "opted_in"),
            ("rcs", "unset", "opted_out"),
            ("viber", "unset", "opted_out"),
            ("voice", "opted_in", "opted_out"),
        ]
    )


@pytest.mark.many_connections
@pytest.mark.django_db(transaction=True)
def test_parallel_puts_flipping_one_channel_leave_an_unbroken_event_chain(api):
    contact = created(api, email="ada@example.com")
    statuses = ("opted_in", "opted_out", "unset")

    responses = _in_parallel(
        api.raw_key, 18, lambda client, i: put_preferences(client, contact["id"], {"sms": statuses[i % 3]})
    )

    assert [response.status_code for response in responses] == [200] * 18
    final = stored(api, contact["id"])["preferences"]
    assert final == {**ALL_UNSET, "sms": final["sms"]}
    # Each write saw the status the previous one left: the events, in the order
    # they were written, chain from "unset" to the stored status with no gap and
    # no event that changed nothing.
    chain = list(
        ActivityEvent.objects.filter(contact_id=contact["id"], type="preference.updated")
        .order_by("created_at")
        .values_list("data__old_status", "data__new_status")
    )
    assert chain
    assert len(chain) <= 18
    assert chain[0][0] == "unset"
    assert chain[-1][1] == final["sms"]
    for (_, new), (old, _) in itertools.pairwise(chain):
        assert old == new, chain
    assert all(old != new for old, new in chain), chain
