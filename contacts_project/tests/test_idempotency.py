"""Idempotency keys on every POST: a retry gets the first answer and writes nothing twice."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models.functions import Now
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import IdempotencyRecord
from accounts.services import api_key_create
from contacts.models import ActivityEvent, Contact
from contacts.tests.test_concurrency import _in_parallel
from contacts_project.testing import assert_error, assert_invalid
from lists.models import ContactList
from segments.models import Segment

ADA = {"phone": "+1 (415) 555-2671", "first_name": "Ada"}


def post(client, path, body, key):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_gets_the_first_response_and_creates_nothing(api, account):
    first = post(api, "/v1/contacts", ADA, "create-ada-1")

    repeat = post(api, "/v1/contacts", ADA, "create-ada-1")

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert repeat.status_code == 201
    assert repeat["Idempotent-Replayed"] == "true"
    assert repeat.content == first.content
    assert repeat["Content-Type"] == first["Content-Type"]
    assert list(Contact.objects.for_account(account).values_list("id", flat=True)) == [first.json()["id"]]


def test_every_post_endpoint_replays(api, account, make_contact):
    contact = make_contact(email="ada@example.com")
    contact_list = post(api, "/v1/contacts/lists", {"name": "Newsletter"}, "list").json()
    requests = [
        (f"/v1/contacts/{contact.id}/tags", {"tags": ["vip"]}),
        (f"/v1/contacts/lists/{contact_list['id']}/members", {"contact_ids": [contact.id]}),
        (f"/v1/contacts/{contact.id}/activity", {"type": "message.sent", "channel": "sms", "message_id": "m1"}),
        (
            "/v1/contacts/segments",
            {"name": "All", "rules": {"match": "all", "conditions": [{"field": "email", "operator": "exists"}]}},
        ),
        (
            "/v1/contacts/segments/preview",
            {"rules": {"match": "all", "conditions": [{"field": "email", "operator": "exists"}]}},
        ),
    ]

    for i, (path, body) in enumerate(requests):
        first = post(api, path, body, f"key-{i}")
        repeat = post(api, path, body, f"key-{i}")
        assert (repeat.status_code, repeat.content) == (first.status_code, first.content), path
        assert repeat["Idempotent-Replayed"] == "true", path

    assert ContactList.objects.get(pk=contact_list["id"]).member_count == 1
    assert ActivityEvent.objects.filter(contact=contact).count() == 1
    assert Segment.objects.count() == 1


def test_without_the_header_every_request_runs(api, account):
    first = api.post("/v1/contacts", ADA, format="json")
    second = api.post("/v1/contacts", ADA, format="json")

    assert first.status_code == 201
    assert_error(second, 409, "client_error", ["phone"], code="duplicate")
    assert "Idempotent-Replayed" not in second
    assert IdempotencyRecord.objects.count() == 0


def test_the_same_key_for_another_request_is_422(api, account):
    first = post(api, "/v1/contacts", ADA, "k1")

    other_body = post(api, "/v1/contacts", {**ADA, "first_name": "Augusta"}, "k1")
    other_path = post(api, "/v1/contacts/lists", {"name": "Newsletter"}, "k1")

    assert first.status_code == 201
    for response in (other_body, other_path):
        assert_error(response, 422, "client_error", ["Idempotency-Key"], code="idempotency_key_reused")
    assert Contact.objects.for_account(account).count() == 1
    assert ContactList.objects.count() == 0


def test_a_repeat_while_the_first_is_running_is_409(api, account):
    post(api, "/v1/contacts", ADA, "k1")
    IdempotencyRecord.objects.update(status_code=None, response_body="")  # still running

    repeat = post(api, "/v1/contacts", ADA, "k1")
    other = post(api, "/v1/contacts", {"email": "ada@example.com"}, "k1")

    assert_error(repeat, 409, "client_error", ["Idempotency-Key"], code="idempotency_key_in_progress")
    assert repeat["Retry-After"] == "1"
    assert_error(other, 422, "client_error", ["Idempotency-Key"], code="idempotency_key_reused")


def test_a_claim_left_unfinished_past_the_lock_time_is_taken_over(api, account, settings):
    first = post(api, "/v1/contacts", ADA, "k1")
    Contact.objects.filter(pk=first.json()["id"]).delete()
    # The worker died mid-request: nothing was stored or released.
    IdempotencyRecord.objects.update(
        status_code=None, created_at=Now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS + 1)
    )

    retry = post(api, "/v1/contacts", ADA, "k1")

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert retry.json()["id"] != first.json()["id"]
    assert post(api, "/v1/contacts", ADA, "k1").content == retry.content


def test_keys_are_scoped_to_the_account(api, other_api, account, other_account):
    mine = post(api, "/v1/contacts", ADA, "shared-key")

    theirs = post(other_api, "/v1/contacts", {"email": "grace@example.com"}, "shared-key")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs
    assert Contact.objects.for_account(other_account).get().email == "grace@example.com"


def test_every_key_of_an_account_shares_its_idempotency_keys(api, account):
    _, raw_key = api_key_create(account=account, name="second")
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    first = post(api, "/v1/contacts", ADA, "k1")

    repeat = post(second, "/v1/contacts", ADA, "k1")

    assert (repeat.status_code, repeat.content, repeat["Idempotent-Replayed"]) == (201, first.content, "true")


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tinside", "caf\u00e9", "line\nbreak"])
def test_a_malformed_key_is_400_naming_the_header(api, account, key):
    response = post(api, "/v1/contacts", ADA, key)

    assert_invalid(response, "Idempotency-Key", code="invalid")
    assert Contact.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("key", ["k", "x" * 255, "a key with spaces", "~!@#$%^&*()_+{}|:<>?"])
def test_keys_of_1_to_255_printable_ascii_characters_are_accepted(api, account, key):
    first = post(api, "/v1/contacts", ADA, key)
    repeat = post(api, "/v1/contacts", ADA, key)

    assert (first.status_code, repeat.status_code, repeat["Idempotent-Replayed"]) == (201, 201, "true")
    assert IdempotencyRecord.objects.get().key == key


def test_client_errors_are_stored_and_replayed_too(api, account):
    first = post(api, "/v1/contacts", {"phone": "not a phone"}, "k1")

    repeat = post(api, "/v1/contacts", {"phone": "not a phone"}, "k1")

    assert_invalid(first, "phone")
    assert (repeat.status_code, repeat.content, repeat["Idempotent-Replayed"]) == (400, first.content, "true")


def test_a_server_error_is_not_stored_and_a_retry_runs_again(api, account, monkeypatch):
    api.raise_request_exception = False

    def broken(**kwargs):
        raise RuntimeError("bug")

    with monkeypatch.context() as patch:
        patch.setattr("contacts.api.views.contact_create", broken)
        failed = post(api, "/v1/contacts", ADA, "k1")
    assert failed.status_code == 500
    assert IdempotencyRecord.objects.count() == 0

    retry = post(api, "/v1/contacts", ADA, "k1")

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert Contact.objects.for_account(account).count() == 1


def test_a_record_older_than_24_hours_is_forgotten(api, account):
    first = post(api, "/v1/contacts", ADA, "k1")
    IdempotencyRecord.objects.update(created_at=Now() - timedelta(hours=24, seconds=1))

    # The same key with another request is new, not a 422.
    later = post(api, "/v1/contacts", {"email": "grace@example.com"}, "k1")

    assert (first.status_code, later.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in later
    assert IdempotencyRecord.objects.get().response_body == later.content.decode()


def test_other_methods_ignore_the_header(api, account, make_contact):
    contact = make_contact(email="ada@example.com")

    response = api.patch(
        f"/v1/contacts/{contact.id}", {"first_name": "Ada"}, format="json", HTTP_IDEMPOTENCY_KEY="caf\u00e9"
    )

    assert response.status_code == 200
    assert IdempotencyRecord.objects.count() == 0


def test_purge_deletes_records_past_24_hours(api, account):
    post(api, "/v1/contacts", ADA, "old")
    post(api, "/v1/contacts", {"email": "grace@example.com"}, "recent")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    out = io.StringIO()

    call_command("purge_expired", stdout=out)

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert "Deleted 1 idempotency record(s)" in out.getvalue()


@pytest.mark.many_connections
@pytest.mark.django_db(transaction=True)
def test_parallel_repeats_create_one_contact_and_get_its_response_or_409(api, account):
    responses = _in_parallel(api.raw_key, 10, lambda client, i: post(client, "/v1/contacts", ADA, "same-key"))

    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    replays = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" in r]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1
    assert len(replays) + len(in_progress) == 9
    assert all(r.content == originals[0].content for r in replays)
    for response in in_progress:
        assert_error(response, 409, "client_error", ["Idempotency-Key"], code="idempotency_key_in_progress")
    assert list(Contact.objects.for_account(account).values_list("id", flat=True)) == [originals[0].json()["id"]]
    assert post(api, "/v1/contacts", ADA, "same-key").content == originals[0].content
