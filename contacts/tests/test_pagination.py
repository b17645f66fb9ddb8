"""Keyset pagination of ``GET /v1/contacts`` (API.md §3)."""

import base64
import datetime
import random

import pytest
from django.core import signing
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from contacts_project.api.pagination import KeysetPagination, Seek

BASE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _ids(response):
    return [contact["id"] for contact in response.json()["data"]]


def _error_attrs(response):
    body = response.json()
    assert body["type"] == "validation_error", body
    return [error["attr"] for error in body["errors"]]


def _newest_first(account, ids=None):
    """The contract's order, computed in Python from the stored keys: created_at desc, then id desc."""
    rows = Contact.objects.for_account(account).values_list("created_at", "id")
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return [contact_id for _, contact_id in sorted(rows, reverse=True)]


def _walk(api, limit, params=None, between_pages=None):
    """Follow next_cursor to the end; return every id in the order served."""
    seen = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": limit, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        response = api.get("/v1/contacts", query)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert set(body) == {"data", "next_cursor", "has_more"}
        assert len(body["data"]) <= limit
        assert (body["next_cursor"] is None) == (body["has_more"] is False)
        seen += [contact["id"] for contact in body["data"]]
        pages += 1
        assert pages < 100, "pagination does not terminate"
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]
        if between_pages is not None:
            between_pages(pages, seen)


def _valid_cursor(api, make_contact):
    for i in range(3):
        make_contact(email=f"cursor{i}@example.com")
    response = api.get("/v1/contacts", {"limit": 1})
    assert response.status_code == 200
    cursor = response.json()["next_cursor"]
    assert isinstance(cursor, str)
    assert cursor
    return cursor


def test_default_limit_is_20(api, make_contact):
    for i in range(25):
        make_contact(email=f"c{i}@example.com")

    response = api.get("/v1/contacts")

    assert response.status_code == 200
    body = response.json()
    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_limit_in_range_sizes_the_page(api, make_contact, limit):
    with transaction.atomic():
        for i in range(limit + 1):
            make_contact(email=f"c{i}@example.com")

    response = api.get("/v1/contacts", {"limit": limit})

    assert response.status_code == 200
    assert len(response.json()["data"]) == limit
    assert response.json()["has_more"] is True


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "", " 5", "1e2", "٣", "999999999999999999999"])
def test_limit_out_of_range_or_not_an_integer_is_400(api, make_contact, limit):
    make_contact(email="a@example.com")

    response = api.get("/v1/contacts", {"limit": limit})

    assert response.status_code == 400
    assert _error_attrs(response) == ["limit"]


def test_last_page_has_null_cursor_and_has_more_false(api, make_contact):
    for i in range(5):
        make_contact(email=f"c{i}@example.com")

    first = api.get("/v1/contacts", {"limit": 3}).json()
    second = api.get("/v1/contacts", {"limit": 3, "cursor": first["next_cursor"]}).json()

    assert len(first["data"]) == 3
    assert first["has_more"] is True
    assert isinstance(first["next_cursor"], str)
    assert len(second["data"]) == 2
    assert second["has_more"] is False
    assert second["next_cursor"] is None


def test_page_exactly_filled_by_the_last_rows_has_no_next_cursor(api, make_contact):
    for i in range(4):
        make_contact(email=f"c{i}@example.com")

    first = api.get("/v1/contacts", {"limit": 2}).json()
    second = api.get("/v1/contacts", {"limit": 2, "cursor": first["next_cursor"]}).json()

    assert len(second["data"]) == 2
    assert second["has_more"] is False
    assert second["next_cursor"] is None


def test_empty_collection_is_an_empty_last_page(api):
    response = api.get("/v1/contacts")

    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}


def test_cursor_with_tampered_character_is_400(api, make_contact):
    cursor = _valid_cursor(api, make_contact)

    for position in range(len(cursor)):
        flipped = "A" if cursor[position] != "A" else "B"
        tampered = cursor[:position] + flipped + cursor[position + 1 :]
        response = api.get("/v1/contacts", {"limit": 1, "cursor": tampered})
        assert response.status_code == 400, (position, tampered, response.json())
        assert _error_attrs(response) == ["cursor"]


def test_cursor_with_another_cursors_signature_is_400(api, make_contact):
    for i in range(5):
        make_contact(email=f"c{i}@example.com")
    first = api.get("/v1/contacts", {"limit": 1}).json()["next_cursor"]
    second = api.get("/v1/contacts", {"limit": 1, "cursor": first}).json()["next_cursor"]
    payload, _, _ = first.rpartition(":")
    _, _, signature = second.rpartition(":")
    assert first != second

    response = api.get("/v1/contacts", {"limit": 1, "cursor": f"{payload}:{signature}"})

    assert response.status_code == 400
    assert _error_attrs(response) == ["cursor"]


@pytest.mark.parametrize("cut", [1, 5, 10, "half"])
def test_truncated_cursor_is_400(api, make_contact, cut):
    cursor = _valid_cursor(api, make_contact)
    truncated = cursor[: len(cursor) // 2] if cut == "half" else cursor[:-cut]

    response = api.get("/v1/contacts", {"limit": 1, "cursor": truncated})

    assert response.status_code == 400
    assert _error_attrs(response) == ["cursor"]


def test_random_or_malformed_cursors_are_400(api, make_contact):
    make_contact(email="a@example.com")
    rng = random.Random(1234)
    candidates = [
        "",
        " ",
        ":",
        "::",
        "abc",
        "null",
        "[]",
        '["2026-01-01T00:00:00+00:00", "con_x"]',
        "%00",
        "abc\x00def",
        "é" * 10,
        "." + "A" * 200,
        *(base64.urlsafe_b64encode(rng.randbytes(n)).decode() for n in (1, 16, 48, 96)),
        *(base64.b64encode(rng.randbytes(n)).decode() for n in (33, 64)),
    ]

    for cursor in candidates:
        response = api.get("/v1/contacts", {"cursor": cursor})
        assert response.status_code == 400, (cursor, response.content)
        assert _error_attrs(response) == ["cursor"]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        ["2026-01-01T00:00:00+00:00"],
        ["2026-01-01T00:00:00+00:00", "con_a", "extra"],
        ["not a date", "con_a"],
        [12, "con_a"],
        {"created_at": "2026-01-01T00:00:00+00:00", "id": "con_a"},
        "con_a",
    ],
)
def test_well_signed_cursor_with_a_wrong_shape_is_400(api, make_contact, payload):
    """Even a payload that passes the signature (a leaked secret, an old format) never reaches the SQL."""
    make_contact(email="a@example.com")
    ordering = ("-created_at", "-id")
    cursor = signing.dumps(payload, salt=KeysetPagination._salt(ordering), compress=True)

    response = api.get("/v1/contacts", {"cursor": cursor})

    assert response.status_code == 400
    assert _error_attrs(response) == ["cursor"]


def test_contacts_are_listed_newest_first_then_by_id_desc(api, account, make_contact):
    contacts = [make_contact(email=f"c{i}@example.com") for i in range(12)]
    # Three timestamps, four contacts each, assigned out of creation order, so
    # only the created_at-then-id rule explains the expected order.
    for i, contact in enumerate(contacts):
        Contact.objects.filter(pk=contact.pk).update(created_at=BASE + datetime.timedelta(hours=(i * 7) % 3))
    stored = dict(Contact.objects.for_account(account).values_list("id", "created_at"))
    expected = sorted(stored, key=lambda contact_id: (stored[contact_id], contact_id), reverse=True)

    response = api.get("/v1/contacts", {"limit": 100})

    assert response.status_code == 200
    assert _ids(response) == expected
    assert _walk(api, 5) == expected


def test_walk_over_250_contacts_sharing_created_at_yields_each_once_in_order(api, account, make_contact):
    with transaction.atomic():
        created = [make_contact(email=f"bulk{i}@example.com") for i in range(250)]
    # created_at defaults to STATEMENT_TIMESTAMP(), so rows of one transaction
    # can still differ by microseconds; a bulk insert gives them all one value.
    Contact.objects.for_account(account).update(created_at=BASE)
    assert len({contact.created_at for contact in Contact.objects.for_account(account)}) == 1

    walked = _walk(api, 7)

    assert len(walked) == 250
    assert set(walked) == {contact.id for contact in created}
    assert walked == sorted(walked, reverse=True)
    assert walked == _newest_first(account)


def test_walk_while_contacts_are_created_and_deleted_yields_each_stable_contact_once(api, account, make_contact):
    initial = [make_contact(email=f"c{i}@example.com") for i in range(60)]
    for i, contact in enumerate(initial):
        Contact.objects.filter(pk=contact.pk).update(created_at=BASE + datetime.timedelta(minutes=i // 3))
    initial_ids = {contact.id for contact in initial}
    deleted = set()
    deleted_unseen = set()
    added = []
    counter = iter(range(10_000))

    def mutate(page, seen):
        # A contact just served (the cursor's own row), one not yet served,
        # and new contacts both older and newer than the cursor position.
        unseen = [contact_id for contact_id in _newest_first(account) if contact_id in initial_ids - set(seen)]
        for contact_id in (seen[-1], *unseen[-1:]):
            Contact.objects.filter(pk=contact_id).delete()
            deleted.add(contact_id)
        deleted_unseen.update(unseen[-1:])
        for minutes in (-5, 10, 30, 90):
            contact = make_contact(email=f"new{next(counter)}@example.com")
            Contact.objects.filter(pk=contact.pk).update(created_at=BASE + datetime.timedelta(minutes=minutes))
            added.append(contact.id)

    walked = _walk(api, 7, between_pages=mutate)

    stable = initial_ids - deleted
    assert len(deleted) > 10
    assert len(walked) == len(set(walked)), "a contact was served twice"
    assert stable <= set(walked)
    assert set(walked) <= initial_ids | set(added)
    assert deleted_unseen
    assert deleted_unseen.isdisjoint(walked), "a contact deleted before its page was served"
    keys = dict(Contact.objects.values_list("id", "created_at"))
    served_still_present = [contact_id for contact_id in walked if contact_id in keys]
    assert served_still_present == sorted(
        served_still_present, key=lambda contact_id: (keys[contact_id], contact_id), reverse=True
    )


def test_cursor_combines_with_filters(api, account, make_contact):
    wanted = []
    for i in range(30):
        stage = "customer" if i % 3 == 0 else "lead"
        tags = ["vip"] if i % 2 == 0 else []
        contact = make_contact(email=f"c{i}@example.com", lifecycle_stage=stage, tags=tags, first_name="Ada")
        if stage == "customer" and tags:
            wanted.append(contact.id)
    make_contact(email="grace@example.com", lifecycle_stage="customer", tags=["vip"], first_name="Grace")

    walked = _walk(api, 2, params={"lifecycle_stage": "customer", "tag": "vip", "search": "ada"})

    assert len(wanted) == 5
    assert walked == _newest_first(account, wanted)


def test_cursor_is_bound_to_position_not_to_filters(api, account, make_contact):
    """A cursor from one query resumes strictly after its position under other filters too."""
    for i in range(6):
        make_contact(email=f"c{i}@example.com", lifecycle_stage="customer")
    ordered = _newest_first(account)
    first = api.get("/v1/contacts", {"limit": 2}).json()

    response = api.get("/v1/contacts", {"limit": 100, "cursor": first["next_cursor"], "lifecycle_stage": "customer"})

    assert response.status_code == 200
    assert _ids(response) == ordered[2:]


@pytest.mark.parametrize("bad", [{"limit": "0"}, {"cursor": "junk"}])
def test_bad_pagination_parameter_with_filters_is_still_400(api, make_contact, bad):
    make_contact(email="a@example.com", first_name="Ada")

    response = api.get("/v1/contacts", {"search": "ada", "lifecycle_stage": "lead", **bad})

    assert response.status_code == 400
    assert _error_attrs(response) == list(bad)


def test_list_runs_a_constant_number_of_queries_whatever_the_page_size(
    api, make_contact, django_assert_num_queries, hot_api_key
):
    with transaction.atomic():
        for i in range(60):
            make_contact(email=f"c{i}@example.com", tags=["a", "b"], metadata={"i": i})
    api.get("/v1/contacts", {"limit": 1})  # warm-up: nothing cached differs between the measured calls

    with django_assert_num_queries(1):
        small = api.get("/v1/contacts", {"limit": 5})
    with django_assert_num_queries(1):
        large = api.get("/v1/contacts", {"limit": 50})
    with django_assert_num_queries(1):
        deep = api.get("/v1/contacts", {"limit": 50, "cursor": small.json()["next_cursor"]})

    assert len(small.json()["data"]) == 5
    assert len(large.json()["data"]) == 50
    assert len(deep.json()["data"]) == 50


def test_no_count_query_is_run_per_page(api, make_contact):
    for i in range(30):
        make_contact(email=f"c{i}@example.com")
    first = api.get("/v1/contacts", {"limit": 10}).json()

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/v1/contacts", {"limit": 10, "cursor": first["next_cursor"]})

    assert response.status_code == 200
    assert [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()] == []


@pytest.mark.django_db
@pytest.mark.parametrize("descending", [True, False])
def test_seek_keeps_the_rows_strictly_after_the_position_in_either_direction(account, make_contact, descending):
    contacts = [make_contact(email=f"seek{i}@example.com") for i in range(6)]
    # Ties on created_at are broken by id: three rows share one moment.
    Contact.objects.filter(pk__in=[contact.pk for contact in contacts[:3]]).update(created_at=BASE)
    keys = sorted(Contact.objects.for_account(account).values_list("created_at", "id"), reverse=descending)
    ordering = ("-created_at", "-id") if descending else ("created_at", "id")
    for index, position in enumerate(keys):
        after = Contact.objects.for_account(account).filter(Seek(ordering, list(position))).order_by(*ordering)
        assert list(after.values_list("created_at", "id")) == keys[index + 1 :]
