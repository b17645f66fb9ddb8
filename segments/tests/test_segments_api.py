"""The segment endpoints of API.md §8, the ``segment`` filter of §4, and their errors (§2) and pagination (§3)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from contacts_project.testing import assert_error, assert_invalid, assert_not_found
from segments.models import Segment

CONTACTS = "/v1/contacts"
SEGMENTS = "/v1/contacts/segments"
PREVIEW = "/v1/contacts/segments/preview"
LISTS = "/v1/contacts/lists"
UNKNOWN_SEGMENT = "seg_doesNotExist0000"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
SEGMENT_KEYS = {"id", "name", "rules", "contact_count", "created_at", "updated_at"}
LISTED_SEGMENT_KEYS = SEGMENT_KEYS - {"contact_count"}

US = {"field": "country", "operator": "eq", "value": "US"}
VIP = {"field": "tags", "operator": "contains", "value": "vip"}


def all_of(*conditions) -> dict:
    return {"match": "all", "conditions": list(conditions)}


def any_of(*conditions) -> dict:
    return {"match": "any", "conditions": list(conditions)}


# The example of API.md §8, verbatim.
SPEC_EXAMPLE_RULES = all_of(
    US,
    VIP,
    any_of(
        {"field": "lifecycle_stage", "operator": "in", "value": ["customer", "lead"]},
        {"field": "metadata.plan", "operator": "eq", "value": "pro"},
    ),
)


def segment_url(segment_id: str) -> str:
    return f"{SEGMENTS}/{segment_id}"


def members_url(segment_id: str) -> str:
    return f"{SEGMENTS}/{segment_id}/members"


def call(api, method, url, body=None):
    """Send ``body`` as JSON to the write methods; reads and deletes take none."""
    if method in ("put", "patch", "post"):
        return getattr(api, method)(url, body or {}, format="json")
    return getattr(api, method)(url)


def ok(response, status=200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def create_segment(api, name="US VIPs", rules=None) -> dict:
    return ok(api.post(SEGMENTS, {"name": name, "rules": rules or all_of(US, VIP)}, format="json"), 201)


def read_segment(api, segment_id) -> dict:
    return ok(api.get(segment_url(segment_id)))


def create_list(api, name="Newsletter") -> dict:
    return ok(api.post(LISTS, {"name": name}, format="json"), 201)


def parse_time(value: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)", value), value
    return datetime.fromisoformat(value)


def set_created_at(instance_or_id, when, model=Contact):
    pk = getattr(instance_or_id, "pk", instance_or_id)
    assert model.objects.filter(pk=pk).update(created_at=when) == 1


def newest_first(account, ids) -> list[str]:
    """The contract's order, computed from the stored keys: created_at desc, then id desc."""
    rows = Contact.objects.for_account(account).filter(pk__in=ids).values_list("created_at", "id")
    assert len(rows) == len(set(ids))
    return [contact_id for _, contact_id in sorted(rows, reverse=True)]


def ids_of(response) -> list[str]:
    return [item["id"] for item in ok(response)["data"]]


def walk(api, url, limit, params=None) -> list[str]:
    """Follow ``next_cursor`` to the end; every id in the order served."""
    seen = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        body = ok(api.get(url, query))
        assert set(body) == {"data", "next_cursor", "has_more"}, body
        assert len(body["data"]) <= limit
        assert (body["next_cursor"] is None) == (body["has_more"] is False), body
        if body["has_more"]:
            assert len(body["data"]) == limit
        seen += [item["id"] for item in body["data"]]
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]
    raise AssertionError("pagination does not terminate")


# --- Create ---------------------------------------------------------------------


def test_create_returns_201_with_the_detail_object(api, account, other_account, make_contact):
    matching_customer = make_contact(email="a@example.com", country="US", tags=["vip"], lifecycle_stage="customer")
    matching_pro = make_contact(
        email="b@example.com", country="US", tags=["beta", "vip"], lifecycle_stage="churned", metadata={"plan": "pro"}
    )
    make_contact(
        email="c@example.com", country="US", tags=["vip"], lifecycle_stage="churned", metadata={"plan": "free"}
    )
    make_contact(email="d@example.com", country="GB", tags=["vip"], lifecycle_stage="customer")
    make_contact(email="e@example.com", country="US", lifecycle_stage="customer")
    make_contact(account=other_account, email="a@example.com", country="US", tags=["vip"], lifecycle_stage="customer")

    response = api.post(SEGMENTS, {"name": "US VIP customers", "rules": SPEC_EXAMPLE_RULES}, format="json")

    body = ok(response, 201)
    assert set(body) == SEGMENT_KEYS
    assert re.fullmatch(r"seg_[A-Za-z0-9]+", body["id"]), body["id"]
    assert body["name"] == "US VIP customers"
    assert body["rules"] == SPEC_EXAMPLE_RULES
    assert body["contact_count"] == 2
    stored = Segment.objects.get(pk=body["id"])
    assert stored.account_id == account.pk
    assert stored.rules == SPEC_EXAMPLE_RULES
    assert parse_time(body["created_at"]) == stored.created_at
    assert parse_time(body["updated_at"]) == stored.updated_at
    assert read_segment(api, body["id"]) == body
    assert set(walk(api, members_url(body["id"]), 100)) == {matching_customer.pk, matching_pro.pk}


def test_create_ids_are_distinct(api):
    first = create_segment(api, name="One")
    second = create_segment(api, name="Two")

    assert first["id"] != second["id"]


@pytest.mark.parametrize("name", ["x", "x" * 100, "Zoë's ✓ segment"])
def test_create_accepts_names_of_1_to_100_characters(api, name):
    body = create_segment(api, name=name)

    assert body["name"] == name
    assert Segment.objects.get(pk=body["id"]).name == name


@pytest.mark.parametrize("name", ["", "x" * 101, None, 12, ["a"]])
def test_create_rejects_a_bad_name(api, name):
    response = api.post(SEGMENTS, {"name": name, "rules": all_of(US)}, format="json")

    assert_invalid(response, "name")
    assert not Segment.objects.exists()


def test_create_requires_name_and_rules(api):
    response = api.post(SEGMENTS, {}, format="json")

    assert_error(response, 400, "validation_error", ["name", "rules"])


@pytest.mark.parametrize(
    ("rules", "attr"),
    [(None, "rules"), ("all", "rules"), (5, "rules"), ([], "rules"), ([US], "rules"), ({}, "rules.match")],
)
def test_create_rejects_rules_that_are_not_a_group(api, rules, attr):
    response = api.post(SEGMENTS, {"name": "Bad", "rules": rules}, format="json")

    assert_invalid(response, attr)
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    ("rules", "attr"),
    [
        (all_of({"field": "country", "operator": "eq", "value": "U\x00S"}), "rules.conditions.0.value"),
        (all_of({"field": "metadata.pl\x00an", "operator": "exists"}), "rules.conditions.0.field"),
    ],
)
def test_create_rejects_nul_characters_in_rules(api, rules, attr):
    assert_invalid(api.post(SEGMENTS, {"name": "NUL", "rules": rules}, format="json"), attr)
    assert_invalid(api.post(PREVIEW, {"rules": rules}, format="json"), attr)
    assert not Segment.objects.exists()


def test_create_rejects_a_body_that_is_not_an_object(api):
    response = api.post(SEGMENTS, [{"name": "US VIPs", "rules": all_of(US)}], format="json")

    assert_invalid(response, None)
    assert not Segment.objects.exists()


def test_create_with_a_name_taken_in_another_case_is_409_naming_the_holder(api):
    existing = create_segment(api, name="US VIPs")

    response = api.post(SEGMENTS, {"name": "us vips", "rules": all_of(VIP)}, format="json")

    error = assert_error(response, 409, "client_error", ["name"], code="duplicate")
    assert existing["id"] in error["detail"]
    assert list(Segment.objects.values_list("id", flat=True)) == [existing["id"]]


def test_the_same_name_is_fine_in_another_account(api, other_api, account, other_account):
    ours = create_segment(api, name="US VIPs")

    theirs = create_segment(other_api, name="us vips")

    assert theirs["id"] != ours["id"]
    assert Segment.objects.get(pk=ours["id"]).account_id == account.pk
    assert Segment.objects.get(pk=theirs["id"]).account_id == other_account.pk


def test_create_rejects_an_unknown_body_field(api):
    response = api.post(SEGMENTS, {"name": "US VIPs", "rules": all_of(US), "nmae": "typo"}, format="json")

    assert_invalid(response, "nmae")
    assert not Segment.objects.exists()


def test_create_ignores_read_only_fields(api, make_contact):
    make_contact(email="a@example.com", country="US")
    sent = {
        "id": "seg_chosenByTheClient",
        "name": "US",
        "rules": all_of(US),
        "contact_count": 99,
        "created_at": "2001-01-01T00:00:00Z",
        "updated_at": "2001-01-01T00:00:00Z",
    }

    body = ok(api.post(SEGMENTS, sent, format="json"), 201)

    assert body["id"] != "seg_chosenByTheClient"
    assert body["contact_count"] == 1
    assert parse_time(body["created_at"]) > datetime(2001, 1, 2, tzinfo=UTC)
    assert parse_time(body["updated_at"]) > datetime(2001, 1, 2, tzinfo=UTC)
    assert not Segment.objects.filter(pk="seg_chosenByTheClient").exists()


def nested(depth: int) -> dict:
    """A group nested ``depth`` groups deep (the outermost counts as 1)."""
    group = all_of(US)
    for _ in range(depth - 1):
        group = all_of(group)
    return group


def with_conditions(count: int) -> dict:
    """``count`` conditions in groups of at most 40."""
    groups = []
    while count:
        size = min(40, count)
        groups.append(any_of(*[{"field": "first_name", "operator": "eq", "value": f"n{i}"} for i in range(size)]))
        count -= size
    return any_of(*groups)


INVALID_RULES = [
    pytest.param(all_of(), "rules.conditions", id="empty-group"),
    pytest.param({"match": "all"}, "rules.conditions", id="no-conditions"),
    pytest.param({"match": "all", "conditions": US}, "rules.conditions", id="conditions-not-a-list"),
    pytest.param({"conditions": [US]}, "rules.match", id="no-match"),
    pytest.param({"match": "some", "conditions": [US]}, "rules.match", id="bad-match"),
    pytest.param({"match": "all", "conditions": [US], "limit": 5}, "rules.limit", id="unknown-group-key"),
    pytest.param(all_of(*[US] * 51), "rules.conditions", id="51-items"),
    pytest.param(nested(6), "rules" + ".conditions.0" * 5, id="6-deep"),
    pytest.param(with_conditions(201), "rules.conditions.5.conditions.0", id="201-conditions"),
    pytest.param(all_of("country"), "rules.conditions.0", id="condition-not-an-object"),
    pytest.param(all_of(US, {**VIP, "colour": "red"}), "rules.conditions.1.colour", id="unknown-condition-key"),
    pytest.param(all_of({"operator": "eq", "value": "US"}), "rules.conditions.0.field", id="no-field"),
    pytest.param(all_of({"field": 7, "operator": "eq", "value": "US"}), "rules.conditions.0.field", id="field-int"),
    pytest.param(
        all_of({"field": "favourite_colour", "operator": "eq", "value": "red"}),
        "rules.conditions.0.field",
        id="unknown-field",
    ),
    pytest.param(
        all_of(US, {"field": "country", "operator": "gt", "value": "US"}),
        "rules.conditions.1.operator",
        id="operator-of-another-field",
    ),
    pytest.param(all_of({"field": "country", "value": "US"}), "rules.conditions.0.operator", id="no-operator"),
    pytest.param(
        all_of({"field": "country", "operator": "eq", "value": 5}), "rules.conditions.0.value", id="value-int"
    ),
    pytest.param(
        all_of({"field": "country", "operator": "eq", "value": None}), "rules.conditions.0.value", id="value-null"
    ),
    pytest.param(all_of({"field": "country", "operator": "eq"}), "rules.conditions.0.value", id="value-missing"),
    pytest.param(
        all_of({"field": "country", "operator": "exists", "value": "US"}),
        "rules.conditions.0.value",
        id="exists-with-value",
    ),
    pytest.param(
        all_of({"field": "lifecycle_stage", "operator": "in", "value": "lead"}),
        "rules.conditions.0.value",
        id="in-not-a-list",
    ),
    pytest.param(
        all_of({"field": "lifecycle_stage", "operator": "not_in", "value": []}),
        "rules.conditions.0.value",
        id="not-in-empty",
    ),
    pytest.param(
        all_of({"field": "tags", "operator": "contains", "value": ["vip"]}),
        "rules.conditions.0.value",
        id="tags-contains-list",
    ),
    pytest.param(
        all_of({"field": "tags", "operator": "contains_any", "value": "vip"}),
        "rules.conditions.0.value",
        id="tags-contains-any-string",
    ),
    pytest.param(
        all_of({"field": "tags", "operator": "eq", "value": "vip"}), "rules.conditions.0.operator", id="tags-eq"
    ),
    pytest.param(
        all_of({"field": "lists", "operator": "contains", "value": 12}), "rules.conditions.0.value", id="list-int"
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "gt", "value": "yesterday"}),
        "rules.conditions.0.value",
        id="timestamp-words",
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "gt", "value": "2026-13-45T00:00:00Z"}),
        "rules.conditions.0.value",
        id="timestamp-impossible",
    ),
    pytest.param(
        all_of({"field": "updated_at", "operator": "lt", "value": 1700000000}),
        "rules.conditions.0.value",
        id="timestamp-int",
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "within_last", "value": "30 days"}),
        "rules.conditions.0.value",
        id="duration-words",
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "within_last", "value": "45s"}),
        "rules.conditions.0.value",
        id="duration-seconds",
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "not_within_last", "value": 30}),
        "rules.conditions.0.value",
        id="duration-int",
    ),
    pytest.param(
        all_of({"field": "created_at", "operator": "eq", "value": "2026-01-01T00:00:00Z"}),
        "rules.conditions.0.operator",
        id="date-eq",
    ),
    pytest.param(
        all_of({"field": "metadata.seats", "operator": "gt", "value": {"n": 1}}),
        "rules.conditions.0.value",
        id="metadata-gt-object",
    ),
    pytest.param(
        all_of({"field": "metadata.seats", "operator": "lte", "value": True}),
        "rules.conditions.0.value",
        id="metadata-lte-bool",
    ),
    pytest.param(
        all_of({"field": "metadata.", "operator": "eq", "value": 1}), "rules.conditions.0.field", id="metadata-no-key"
    ),
    pytest.param(
        all_of({"field": "metadata.plan", "operator": "starts_with", "value": "p"}),
        "rules.conditions.0.operator",
        id="metadata-starts-with",
    ),
    pytest.param(
        all_of({"field": "preferences.fax", "operator": "eq", "value": "opted_in"}),
        "rules.conditions.0.field",
        id="unknown-channel",
    ),
    pytest.param(
        all_of({"field": "preferences.sms", "operator": "eq", "value": "maybe"}),
        "rules.conditions.0.value",
        id="unknown-status",
    ),
    pytest.param(
        all_of(US, VIP, any_of({"field": "favourite_colour", "operator": "eq", "value": "red"})),
        "rules.conditions.2.conditions.0.field",
        id="nested-unknown-field",
    ),
    pytest.param(
        all_of(US, VIP, any_of({"field": "metadata.plan", "operator": "eq", "value": "pro"}, {**VIP, "operator": "x"})),
        "rules.conditions.2.conditions.1.operator",
        id="nested-bad-operator",
    ),
    pytest.param(all_of(US, any_of()), "rules.conditions.1.conditions", id="nested-empty-group"),
    pytest.param(all_of(US, {"match": "either", "conditions": [US]}), "rules.conditions.1.match", id="nested-match"),
]


@pytest.mark.parametrize(("rules", "attr"), INVALID_RULES)
def test_create_with_invalid_rules_is_400_pointing_into_the_rules(api, rules, attr):
    response = api.post(SEGMENTS, {"name": "Bad", "rules": rules}, format="json")

    assert_invalid(response, attr)
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(nested(5), id="5-deep"),
        pytest.param(all_of(*[US] * 50), id="50-items"),
        pytest.param(with_conditions(200), id="200-conditions"),
    ],
)
def test_create_accepts_rules_at_the_limits(api, make_contact, rules):
    make_contact(email="a@example.com", country="US", first_name="n7")

    body = create_segment(api, rules=rules)

    assert body["rules"] == rules
    assert body["contact_count"] == 1


@pytest.mark.parametrize("whose", ["unknown", "other account's"])
def test_a_lists_condition_with_a_list_id_not_of_the_account_is_400(api, other_api, whose):
    list_id = "lst_doesNotExist0000" if whose == "unknown" else create_list(other_api)["id"]
    rules = all_of(US, VIP, {"field": "lists", "operator": "contains", "value": list_id})

    response = api.post(SEGMENTS, {"name": "Listed", "rules": rules}, format="json")

    assert_invalid(response, "rules.conditions.2.value")
    assert not Segment.objects.filter(name="Listed").exists()


def test_a_lists_condition_with_a_list_of_the_account_counts_its_members(api, make_contact):
    member = make_contact(email="a@example.com")
    make_contact(email="b@example.com")
    contact_list = create_list(api)
    ok(api.post(f"{LISTS}/{contact_list['id']}/members", {"contact_ids": [member.pk]}, format="json"))

    body = create_segment(api, rules=all_of({"field": "lists", "operator": "contains", "value": contact_list["id"]}))

    assert body["contact_count"] == 1
    assert walk(api, members_url(body["id"]), 10) == [member.pk]


# --- List -----------------------------------------------------------------------


def test_list_is_paginated_newest_first_without_contact_count(api, other_api):
    segments = [create_segment(api, name=f"Segment {i}") for i in range(5)]
    foreign = create_segment(other_api, name="Foreign")
    # Distinct creation times in an order unlike creation (and id) order.
    for segment, days_ago in zip(segments, [3, 1, 5, 2, 4], strict=True):
        set_created_at(segment["id"], timezone.now() - timedelta(days=days_ago), model=Segment)
    expected = [segments[i]["id"] for i in (1, 3, 0, 4, 2)]

    first = ok(api.get(SEGMENTS, {"limit": 2}))

    assert [item["id"] for item in first["data"]] == expected[:2]
    assert first["has_more"] is True
    for item in first["data"]:
        assert set(item) == LISTED_SEGMENT_KEYS
    listed = {item["id"]: item for item in first["data"]}
    assert listed[segments[1]["id"]]["name"] == "Segment 1"
    assert listed[segments[1]["id"]]["rules"] == all_of(US, VIP)
    assert walk(api, SEGMENTS, 2) == expected
    assert foreign["id"] not in walk(api, SEGMENTS, 100)


def test_list_breaks_created_at_ties_by_id_descending(api):
    ids = [create_segment(api, name=f"Segment {i}")["id"] for i in range(4)]
    Segment.objects.filter(pk__in=ids).update(created_at=LONG_AGO)

    assert walk(api, SEGMENTS, 3) == sorted(ids, reverse=True)


def test_list_of_an_account_without_segments_is_empty(api, other_api):
    create_segment(other_api)

    assert ok(api.get(SEGMENTS)) == {"data": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
@pytest.mark.parametrize("endpoint", ["list", "members"])
def test_bad_pagination_parameters_are_400(api, params, attr, endpoint):
    url = SEGMENTS if endpoint == "list" else members_url(create_segment(api)["id"])

    assert_invalid(api.get(url, params), attr)


def test_list_default_page_is_20(api):
    for i in range(21):
        create_segment(api, name=f"Segment {i}")

    body = ok(api.get(SEGMENTS))

    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)


# --- Detail ---------------------------------------------------------------------


def test_detail_contact_count_is_exact_and_follows_contact_changes(api, other_api, make_contact):
    segment = create_segment(api, rules=all_of(US, VIP))
    make_contact(email="gb@example.com", country="GB", tags=["vip"])
    ok(other_api.post(CONTACTS, {"email": "them@example.com", "country": "US", "tags": ["vip"]}, format="json"), 201)

    def count():
        return read_segment(api, segment["id"])["contact_count"]

    assert count() == 0
    first = ok(api.post(CONTACTS, {"email": "a@example.com", "country": "US", "tags": ["vip"]}, format="json"), 201)
    assert count() == 1
    second = ok(api.post(CONTACTS, {"email": "b@example.com", "country": "US"}, format="json"), 201)
    assert count() == 1
    ok(api.post(f"{CONTACTS}/{second['id']}/tags", {"tags": ["vip"]}, format="json"))
    assert count() == 2
    ok(api.patch(f"{CONTACTS}/{first['id']}", {"country": "GB"}, format="json"))
    assert count() == 1
    ok(api.put(f"{CONTACTS}/{first['id']}", {"country": "us"}, format="json"))
    assert count() == 2
    ok(api.delete(f"{CONTACTS}/{second['id']}/tags/vip"))
    assert count() == 1
    assert api.delete(f"{CONTACTS}/{first['id']}").status_code == 204
    assert count() == 0


# --- Update ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_renames_and_keeps_the_rules(api, make_contact, method):
    make_contact(email="a@example.com", country="US", tags=["vip"])
    segment = create_segment(api, name="Old name", rules=all_of(US, VIP))

    body = ok(getattr(api, method)(segment_url(segment["id"]), {"name": "New name"}, format="json"))

    assert set(body) == SEGMENT_KEYS
    assert body["id"] == segment["id"]
    assert body["name"] == "New name"
    assert body["rules"] == all_of(US, VIP)
    assert body["contact_count"] == 1
    assert body["created_at"] == segment["created_at"]
    assert read_segment(api, segment["id"]) == body


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_replaces_the_rules_and_recounts(api, make_contact, method):
    make_contact(email="a@example.com", country="US", tags=["vip"])
    make_contact(email="b@example.com", country="GB", tags=["vip"])
    make_contact(email="c@example.com", country="GB")
    segment = create_segment(api, name="VIPs", rules=all_of(US, VIP))
    assert segment["contact_count"] == 1
    new_rules = any_of(VIP, {"field": "country", "operator": "eq", "value": "gb"})

    body = ok(getattr(api, method)(segment_url(segment["id"]), {"rules": new_rules}, format="json"))

    assert body["name"] == "VIPs"
    assert body["rules"] == new_rules
    assert body["contact_count"] == 3
    assert Segment.objects.get(pk=segment["id"]).rules == new_rules
    assert read_segment(api, segment["id"]) == body


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("rules", "attr"),
    [
        (all_of(US, {"field": "country", "operator": "gt", "value": "US"}), "rules.conditions.1.operator"),
        (all_of({"field": "country", "operator": "eq", "value": 5}), "rules.conditions.0.value"),
        ({"match": "some", "conditions": [US]}, "rules.match"),
        ("US", "rules"),
        (None, "rules"),
        (
            all_of(US, VIP, any_of({"field": "nope", "operator": "eq", "value": 1})),
            "rules.conditions.2.conditions.0.field",
        ),
        (
            all_of(US, {"field": "lists", "operator": "contains", "value": "lst_doesNotExist0000"}),
            "rules.conditions.1.value",
        ),
    ],
)
def test_update_with_invalid_rules_is_400_and_changes_nothing(api, method, rules, attr):
    segment = create_segment(api, name="Kept", rules=all_of(US, VIP))

    response = getattr(api, method)(segment_url(segment["id"]), {"name": "Renamed", "rules": rules}, format="json")

    assert_invalid(response, attr)
    assert read_segment(api, segment["id"]) == segment
    stored = Segment.objects.get(pk=segment["id"])
    assert stored.name == "Kept"
    assert stored.rules == all_of(US, VIP)


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("name", ["", "x" * 101, None, 7])
def test_update_with_a_bad_name_is_400_and_changes_nothing(api, method, name):
    segment = create_segment(api, name="Kept")

    response = getattr(api, method)(segment_url(segment["id"]), {"name": name}, format="json")

    assert_invalid(response, "name")
    assert read_segment(api, segment["id"]) == segment


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_a_name_taken_in_another_case_is_409(api, method):
    holder = create_segment(api, name="US VIPs")
    segment = create_segment(api, name="Others")

    response = getattr(api, method)(segment_url(segment["id"]), {"name": "us VIPS"}, format="json")

    error = assert_error(response, 409, "client_error", ["name"], code="duplicate")
    assert holder["id"] in error["detail"]
    assert segment["id"] not in error["detail"]
    assert read_segment(api, segment["id"]) == segment


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_its_own_name_in_another_case_is_fine(api, method):
    segment = create_segment(api, name="us vips")

    body = ok(getattr(api, method)(segment_url(segment["id"]), {"name": "US VIPs"}, format="json"))

    assert body["name"] == "US VIPs"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_a_name_used_in_another_account_is_fine(api, other_api, method):
    create_segment(other_api, name="Taken elsewhere")
    segment = create_segment(api, name="Mine")

    body = ok(getattr(api, method)(segment_url(segment["id"]), {"name": "taken elsewhere"}, format="json"))

    assert body["name"] == "taken elsewhere"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_rejects_an_unknown_body_field(api, method):
    segment = create_segment(api, name="Kept")

    response = getattr(api, method)(segment_url(segment["id"]), {"name": "Renamed", "ruels": {}}, format="json")

    assert_invalid(response, "ruels")
    assert read_segment(api, segment["id"]) == segment


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_client_can_put_back_what_it_read(api, make_contact, method):
    make_contact(email="a@example.com", country="US", tags=["vip"])
    segment = create_segment(api, name="Before")
    Segment.objects.filter(pk=segment["id"]).update(created_at=LONG_AGO, updated_at=LONG_AGO)
    read = read_segment(api, segment["id"])
    assert read["contact_count"] == 1

    sent = {
        **read,
        "name": "After",
        "id": "seg_forgedByTheClient",
        "contact_count": 1000,
        "created_at": "2001-01-01T00:00:00Z",
        "updated_at": "2001-01-01T00:00:00Z",
    }
    body = ok(getattr(api, method)(segment_url(segment["id"]), sent, format="json"))

    assert body["id"] == segment["id"]
    assert body["name"] == "After"
    assert body["rules"] == read["rules"]
    assert body["contact_count"] == 1
    assert parse_time(body["created_at"]) == LONG_AGO
    assert parse_time(body["updated_at"]) > LONG_AGO
    assert not Segment.objects.filter(pk="seg_forgedByTheClient").exists()
    assert read_segment(api, segment["id"]) == body


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_change_moves_updated_at_but_not_created_at(api, method):
    segment = create_segment(api, name="Before")
    Segment.objects.filter(pk=segment["id"]).update(created_at=LONG_AGO, updated_at=LONG_AGO)

    body = ok(getattr(api, method)(segment_url(segment["id"]), {"rules": all_of(VIP)}, format="json"))

    assert parse_time(body["created_at"]) == LONG_AGO
    assert parse_time(body["updated_at"]) > LONG_AGO
    assert Segment.objects.get(pk=segment["id"]).updated_at == parse_time(body["updated_at"])


# --- Delete ---------------------------------------------------------------------


def test_delete_is_204_and_leaves_the_contacts(api, make_contact):
    contacts = [
        make_contact(email="a@example.com", country="US", tags=["vip"]),
        make_contact(email="b@example.com", country="US", tags=["vip"]),
        make_contact(email="c@example.com", country="GB"),
    ]
    kept = create_segment(api, name="Kept")
    segment = create_segment(api, name="Doomed")

    response = api.delete(segment_url(segment["id"]))

    assert response.status_code == 204
    assert response.content == b""
    assert not Segment.objects.filter(pk=segment["id"]).exists()
    assert_not_found(api.get(segment_url(segment["id"])))
    assert_not_found(api.get(members_url(segment["id"])))
    assert_not_found(api.get(CONTACTS, {"segment": segment["id"]}))
    assert walk(api, SEGMENTS, 10) == [kept["id"]]
    assert Contact.objects.count() == 3
    for contact in contacts:
        assert ok(api.get(f"{CONTACTS}/{contact.pk}"))["tags"] == contact.tags
    assert read_segment(api, kept["id"])["contact_count"] == 2


def test_a_segment_whose_list_was_deleted_still_answers(api, make_contact):
    member = make_contact(email="a@example.com")
    other = make_contact(email="b@example.com")
    contact_list = create_list(api)
    ok(api.post(f"{LISTS}/{contact_list['id']}/members", {"contact_ids": [member.pk]}, format="json"))
    segment = create_segment(
        api, rules=all_of({"field": "lists", "operator": "not_contains", "value": contact_list["id"]})
    )
    assert segment["contact_count"] == 1

    assert api.delete(f"{LISTS}/{contact_list['id']}").status_code == 204

    assert read_segment(api, segment["id"])["contact_count"] == 2
    assert set(walk(api, members_url(segment["id"]), 10)) == {member.pk, other.pk}
    assert set(walk(api, CONTACTS, 10, {"segment": segment["id"]})) == {member.pk, other.pk}
    assert ok(api.patch(segment_url(segment["id"]), {"name": "Renamed"}, format="json"))["name"] == "Renamed"


# --- 404 ------------------------------------------------------------------------

SEGMENT_ENDPOINTS = [
    ("get", ""),
    ("put", ""),
    ("patch", ""),
    ("delete", ""),
    ("get", "/members"),
]


@pytest.mark.parametrize(("method", "suffix"), SEGMENT_ENDPOINTS)
def test_an_unknown_segment_id_is_404_on_every_endpoint(api, method, suffix):
    create_segment(api)

    response = call(api, method, segment_url(UNKNOWN_SEGMENT) + suffix, {"name": "x"})

    assert_not_found(response)


@pytest.mark.parametrize(("method", "suffix"), SEGMENT_ENDPOINTS)
def test_a_segment_of_another_account_is_404_on_every_endpoint(api, other_api, method, suffix):
    foreign = create_segment(other_api, name="Theirs")

    response = call(api, method, segment_url(foreign["id"]) + suffix, {"name": "Hijacked"})

    assert_not_found(response)
    assert response.json() == call(api, method, segment_url(UNKNOWN_SEGMENT) + suffix, {"name": "Hijacked"}).json()
    assert read_segment(other_api, foreign["id"]) == foreign


@pytest.mark.parametrize("segment_id", ["not-a-segment-id", "lst_doesNotExist0000", "con_doesNotExist0000"])
def test_ids_that_are_not_segment_ids_are_404(api, segment_id):
    assert_not_found(api.get(segment_url(segment_id)))
    assert_not_found(api.get(members_url(segment_id)))


# --- Members --------------------------------------------------------------------


def test_members_are_exactly_the_matching_contacts_newest_first(api, account, other_account, make_contact):
    matching = [make_contact(email=f"m{i}@example.com", country="US", tags=["vip"]) for i in range(5)]
    make_contact(email="gb@example.com", country="GB", tags=["vip"])
    make_contact(email="plain@example.com", country="US")
    make_contact(account=other_account, email="m0@example.com", country="US", tags=["vip"])
    for contact, days_ago in zip(matching, [4, 2, 5, 1, 3], strict=True):
        set_created_at(contact, timezone.now() - timedelta(days=days_ago))
    segment = create_segment(api, rules=all_of(US, VIP))

    body = ok(api.get(members_url(segment["id"])))

    expected = [matching[i].pk for i in (3, 1, 4, 0, 2)]
    assert expected == newest_first(account, expected)
    assert [contact["id"] for contact in body["data"]] == expected
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    for contact in body["data"]:
        assert contact == ok(api.get(f"{CONTACTS}/{contact['id']}"))


def test_members_follow_the_contacts_now(api, make_contact):
    make_contact(email="a@example.com", country="US", tags=["vip"])
    later = make_contact(email="b@example.com", country="US")
    segment = create_segment(api, rules=all_of(US, VIP))
    assert len(ids_of(api.get(members_url(segment["id"])))) == 1

    ok(api.post(f"{CONTACTS}/{later.pk}/tags", {"tags": ["vip"]}, format="json"))

    assert later.pk in ids_of(api.get(members_url(segment["id"])))
    assert len(ids_of(api.get(members_url(segment["id"])))) == 2


def test_members_walk_with_limit_2_yields_each_exactly_once(api, account, make_contact):
    matching = [make_contact(email=f"m{i}@example.com", tags=["vip"]) for i in range(7)]
    for i in range(10):
        make_contact(email=f"n{i}@example.com", tags=["other"])
    # Some share a creation time, so the id tie-break is exercised across pages.
    for contact, days_ago in zip(matching, [1, 3, 3, 3, 2, 2, 5], strict=True):
        set_created_at(contact, timezone.now() - timedelta(days=days_ago))
    segment = create_segment(api, rules=all_of(VIP))

    seen = walk(api, members_url(segment["id"]), 2)

    assert len(seen) == len(set(seen)) == 7
    assert seen == newest_first(account, [contact.pk for contact in matching])


def test_members_run_a_constant_number_of_queries_whatever_the_page_size(
    api, make_contact, django_assert_num_queries, hot_api_key
):
    with transaction.atomic():
        for i in range(60):
            make_contact(email=f"c{i}@example.com", tags=["vip", "b"], metadata={"i": i})
            make_contact(email=f"x{i}@example.com", tags=["b"])
    segment = create_segment(api, rules=all_of(VIP, {"field": "metadata.i", "operator": "gte", "value": 0}))
    url = members_url(segment["id"])
    api.get(url, {"limit": 1})  # warm-up: nothing cached differs between the measured calls

    with django_assert_num_queries(2):
        small = api.get(url, {"limit": 2})
    with django_assert_num_queries(2):
        large = api.get(url, {"limit": 50})
    with django_assert_num_queries(2):
        deep = api.get(url, {"limit": 50, "cursor": small.json()["next_cursor"]})

    assert len(ok(small)["data"]) == 2
    assert len(ok(large)["data"]) == 50
    assert len(ok(deep)["data"]) == 50
    assert ids_of(deep) == ids_of(large)[2:] + ids_of(api.get(url, {"limit": 52}))[50:]


# --- Preview --------------------------------------------------------------------


def test_preview_counts_all_and_samples_the_10_newest(api, account, other_account, make_contact):
    kept = create_segment(api, name="Already saved")
    matching = [make_contact(email=f"m{i}@example.com", country="US", tags=["vip"]) for i in range(15)]
    for i in range(4):
        make_contact(email=f"n{i}@example.com", country="US", tags=["basic"])
    for i in range(3):
        make_contact(account=other_account, email=f"m{i}@example.com", country="US", tags=["vip"])
    # Creation times unlike creation order, with a few ties.
    for i, contact in enumerate(matching):
        set_created_at(contact, timezone.now() - timedelta(hours=(i * 7) % 5))
    rules = all_of(US, VIP)

    response = api.post(PREVIEW, {"rules": rules}, format="json")

    body = ok(response)
    assert set(body) == {"contact_count", "contact_count_exact", "sample"}
    assert (body["contact_count"], body["contact_count_exact"]) == (15, True)
    assert [contact["id"] for contact in body["sample"]] == newest_first(account, [c.pk for c in matching])[:10]
    for contact in body["sample"]:
        assert contact == ok(api.get(f"{CONTACTS}/{contact['id']}"))
    assert list(Segment.objects.values_list("id", flat=True)) == [kept["id"]]
    assert walk(api, SEGMENTS, 10) == [kept["id"]]


def test_preview_with_few_or_no_matches(api, make_contact):
    only = make_contact(email="a@example.com", country="US", tags=["vip"])

    assert ok(api.post(PREVIEW, {"rules": all_of(US, VIP)}, format="json")) == {
        "contact_count": 1,
        "contact_count_exact": True,
        "sample": [ok(api.get(f"{CONTACTS}/{only.pk}"))],
    }
    assert ok(
        api.post(PREVIEW, {"rules": all_of({"field": "country", "operator": "eq", "value": "TR"})}, format="json")
    ) == {
        "contact_count": 0,
        "contact_count_exact": True,
        "sample": [],
    }
    assert not Segment.objects.exists()


@pytest.mark.parametrize(("rules", "attr"), INVALID_RULES)
def test_preview_with_invalid_rules_is_400_pointing_into_the_rules(api, rules, attr):
    response = api.post(PREVIEW, {"rules": rules}, format="json")

    assert_invalid(response, attr)


@pytest.mark.parametrize("rules", [None, "all", 5, [US]])
def test_preview_with_rules_that_are_not_a_group_is_400(api, rules):
    assert_invalid(api.post(PREVIEW, {"rules": rules}, format="json"), "rules")


def test_preview_requires_rules(api):
    assert_invalid(api.post(PREVIEW, {}, format="json"), "rules")


@pytest.mark.parametrize("field", ["name", "limit", "rule"])
def test_preview_rejects_an_unknown_body_field(api, field):
    response = api.post(PREVIEW, {"rules": all_of(US), field: "x"}, format="json")

    assert_invalid(response, field)
    assert not Segment.objects.exists()


def test_preview_with_another_accounts_list_id_is_400(api, other_api):
    foreign_list = create_list(other_api)
    rules = all_of({"field": "lists", "operator": "not_contains", "value": foreign_list["id"]})

    assert_invalid(api.post(PREVIEW, {"rules": rules}, format="json"), "rules.conditions.0.value")


# --- Every operator through the API ------------------------------------------------

NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}


def every_condition(list_id: str) -> list[dict]:
    """One valid condition for each field and operator of API.md §8."""
    text_values = {
        "first_name": "ADA",
        "last_name": "love",
        "email": "ADA@example.com",
        "phone": "+14155552671",
        "country": "us",
        "lifecycle_stage": "customer",
    }
    conditions = []
    for field, value in text_values.items():
        for operator in ("eq", "neq", "starts_with", "ends_with", "contains"):
            conditions.append({"field": field, "operator": operator, "value": value})
        for operator in ("in", "not_in"):
            conditions.append({"field": field, "operator": operator, "value": [value, "zzz"]})
        for operator in ("exists", "not_exists"):
            conditions.append({"field": field, "operator": operator})
    for operator in ("contains", "not_contains"):
        conditions.append({"field": "tags", "operator": operator, "value": "vip"})
        conditions.append({"field": "lists", "operator": operator, "value": list_id})
    for operator in ("contains_any", "contains_all"):
        conditions.append({"field": "tags", "operator": operator, "value": ["vip", "beta"]})
    for operator in ("exists", "not_exists"):
        conditions.append({"field": "tags", "operator": operator})
    for field in ("created_at", "updated_at"):
        for operator in ("gt", "gte", "lt", "lte"):
            conditions.append({"field": field, "operator": operator, "value": "2021-01-01T00:00:00Z"})
        for operator in ("within_last", "not_within_last"):
            conditions.append({"field": field, "operator": operator, "value": "30d"})
    for key, value in [("plan", "pro"), ("seats", 12), ("7", 5)]:
        for operator in ("eq", "neq", "gt", "gte", "lt", "lte", "contains"):
            conditions.append({"field": f"metadata.{key}", "operator": operator, "value": value})
        for operator in ("in", "not_in"):
            conditions.append({"field": f"metadata.{key}", "operator": operator, "value": [value, None]})
        for operator in ("exists", "not_exists"):
            conditions.append({"field": f"metadata.{key}", "operator": operator})
    for status in ("opted_in", "opted_out", "unset"):
        for operator in ("eq", "neq"):
            conditions.append({"field": "preferences.sms", "operator": operator, "value": status})
    return conditions


def test_every_field_and_operator_answers_and_negations_are_exact_complements(api, other_api, make_contact):
    """API.md §2: no valid input may produce a 500; §8: ``neq``/``not_*`` also match absent or null fields."""
    ada = make_contact(
        email="ada@example.com",
        phone="+14155552671",
        first_name="Ada",
        last_name="Lovelace",
        lifecycle_stage="customer",
        tags=["vip", "beta"],
        metadata={"plan": "pro", "seats": 12, "7": 9},
    )
    bob = make_contact(email="bob@example.com", metadata={"plan": None, "seats": "12", "7": None})
    jose = make_contact(phone="+442071838750", first_name="José", tags=["vip"], metadata={"plan": "free", "7": "x"})
    make_contact(email="cy@example.org", country="fr", lifecycle_stage="churned", tags=["beta"], metadata={"seats": 3})
    ok(other_api.post(CONTACTS, {"email": "ada@example.com", "country": "US", "tags": ["vip"]}, format="json"), 201)
    # Stored directly: the preferences endpoint (§5) is not what is under test here.
    Contact.objects.filter(pk=ada.pk).update(preferences={"sms": "opted_out"})
    Contact.objects.filter(pk=jose.pk).update(preferences={"sms": "opted_in", "email": "unset"})
    contact_list = create_list(api)
    ok(api.post(f"{LISTS}/{contact_list['id']}/members", {"contact_ids": [ada.pk, bob.pk]}, format="json"))
    total = 4

    api.raise_request_exception = False  # a 500 is reported below with the others, not raised
    counts = {}
    problems = []
    for condition in every_condition(contact_list["id"]):
        response = api.post(PREVIEW, {"rules": all_of(condition)}, format="json")
        key = (condition["field"], condition["operator"], repr(condition.get("value")))
        if response.status_code != 200:
            problems.append(f"{key}: status {response.status_code}")
            continue
        body = response.json()
        assert len(body["sample"]) == min(body["contact_count"], 10)
        counts[key] = body["contact_count"]
    complements = [(operator, positive) for operator, positive in NEGATIONS.items()]
    complements.append(("not_within_last", "within_last"))
    for (field, operator, value), count in counts.items():
        for negative, positive in complements:
            if operator == negative and (field, positive, value) in counts:
                positive_count = counts[(field, positive, value)]
                if positive_count + count != total:
                    problems.append(f"{(field, operator, value)}: {count} + {positive} {positive_count} != {total}")
    assert not problems, "\n".join(problems)


def test_metadata_keys_that_look_like_numbers_are_object_keys(api, make_contact):
    """A metadata key is any 1-40 characters (API.md §4); ``7`` names the key "7", not an array position."""
    seven = make_contact(email="seven@example.com", metadata={"7": 9, "10": "gold", "-1": ["a", "b"]})
    make_contact(email="none@example.com", metadata={"plan": "pro"})

    def matched(condition) -> list[str]:
        body = ok(api.post(PREVIEW, {"rules": all_of(condition)}, format="json"))
        return [contact["id"] for contact in body["sample"]]

    assert matched({"field": "metadata.7", "operator": "eq", "value": 9}) == [seven.pk]
    assert matched({"field": "metadata.7", "operator": "gt", "value": 5}) == [seven.pk]
    assert matched({"field": "metadata.7", "operator": "exists"}) == [seven.pk]
    assert seven.pk not in matched({"field": "metadata.7", "operator": "not_exists"})
    assert matched({"field": "metadata.10", "operator": "contains", "value": "ol"}) == [seven.pk]
    assert matched({"field": "metadata.-1", "operator": "contains", "value": "a"}) == [seven.pk]


# --- GET /v1/contacts?segment= ---------------------------------------------------


def test_contacts_filtered_by_segment_are_exactly_its_members(api, account, other_account, make_contact):
    matching = [make_contact(email=f"m{i}@example.com", country="US", tags=["vip"]) for i in range(4)]
    make_contact(email="gb@example.com", country="GB", tags=["vip"])
    make_contact(account=other_account, email="m0@example.com", country="US", tags=["vip"])
    segment = create_segment(api, rules=all_of(US, VIP))

    seen = walk(api, CONTACTS, 100, {"segment": segment["id"]})

    assert seen == newest_first(account, [contact.pk for contact in matching])
    assert seen == walk(api, members_url(segment["id"]), 100)


def test_the_segment_filter_combines_with_filters_search_and_pagination(api, account, make_contact):
    ada = make_contact(email="ada@example.com", first_name="Ada", country="US", tags=["vip", "beta"])
    ada_gb = make_contact(email="ada.gb@example.com", first_name="Ada", country="GB", tags=["vip"])
    bob = make_contact(email="bob@example.com", first_name="Bob", country="US", tags=["vip", "beta"])
    cy = make_contact(email="cy@example.com", first_name="Cy", country="US", tags=["vip"], lifecycle_stage="customer")
    make_contact(email="ada.plain@example.com", first_name="Ada", country="US", tags=["beta"])
    segment = create_segment(api, rules=all_of(VIP))
    contact_list = create_list(api)
    ok(api.post(f"{LISTS}/{contact_list['id']}/members", {"contact_ids": [ada.pk, cy.pk]}, format="json"))
    Contact.objects.filter(pk=bob.pk).update(created_at=LONG_AGO)

    def filtered(**params):
        return set(walk(api, CONTACTS, 100, {"segment": segment["id"], **params}))

    assert filtered() == {ada.pk, ada_gb.pk, bob.pk, cy.pk}
    assert filtered(country="us") == {ada.pk, bob.pk, cy.pk}
    assert filtered(tag="beta") == {ada.pk, bob.pk}
    assert filtered(lifecycle_stage="customer") == {cy.pk}
    assert filtered(search="ada") == {ada.pk, ada_gb.pk}
    assert filtered(search="ada", country="US") == {ada.pk}
    assert filtered(list=contact_list["id"]) == {ada.pk, cy.pk}
    assert filtered(created_after="2021-01-01T00:00:00Z") == {ada.pk, ada_gb.pk, cy.pk}
    assert walk(api, CONTACTS, 1, {"segment": segment["id"], "country": "US"}) == newest_first(
        account, [ada.pk, bob.pk, cy.pk]
    )


@pytest.mark.parametrize("whose", ["unknown", "other account's", "deleted"])
def test_the_segment_filter_with_a_segment_not_of_the_account_is_404(api, other_api, make_contact, whose):
    make_contact(email="a@example.com", country="US", tags=["vip"])
    if whose == "unknown":
        segment_id = UNKNOWN_SEGMENT
    elif whose == "other account's":
        segment_id = create_segment(other_api)["id"]
    else:
        segment_id = create_segment(api)["id"]
        assert api.delete(segment_url(segment_id)).status_code == 204

    response = api.get(CONTACTS, {"segment": segment_id})

    assert_not_found(response)
    assert_not_found(api.get(CONTACTS, {"segment": segment_id, "country": "US", "limit": 5}))


# --- The issue's "Done means" -----------------------------------------------------


def test_done_means_list_segment_preview_save_count_page_and_filter(api, other_api, account):
    def new_contact(**fields):
        return ok(api.post(CONTACTS, fields, format="json"), 201)["id"]

    us_vip_customer = new_contact(email="ada@example.com", country="US", lifecycle_stage="customer", tags=["vip"])
    old_us_vip_customer = new_contact(
        phone="+14155552671", lifecycle_stage="customer", tags=["vip", "beta"], metadata={"plan": "pro"}
    )
    new_contact(email="lead@example.com", country="US", lifecycle_stage="lead", tags=["vip"])
    new_contact(email="gb@example.com", country="GB", lifecycle_stage="customer", tags=["vip"])
    new_contact(email="novip@example.com", country="US", lifecycle_stage="customer", metadata={"plan": "basic"})
    new_pro = new_contact(email="pro@example.com", country="DE", metadata={"plan": "pro", "seats": 3})
    another_new_pro = new_contact(email="pro2@example.com", metadata={"plan": "pro"}, tags=["trial"])
    old_pro = new_contact(email="oldpro@example.com", country="FR", metadata={"plan": "pro"})
    new_contact(email="enterprise@example.com", metadata={"plan": "enterprise"})
    ok(other_api.post(CONTACTS, {"email": "ada@example.com", "country": "US", "tags": ["vip"]}, format="json"), 201)
    ok(other_api.post(CONTACTS, {"email": "pro@example.com", "metadata": {"plan": "pro"}}, format="json"), 201)
    set_created_at(old_us_vip_customer, timezone.now() - timedelta(days=60))
    set_created_at(old_pro, timezone.now() - timedelta(days=31))

    # A list, filled in one call.
    newsletter = create_list(api, name="Newsletter")
    added = ok(
        api.post(
            f"{LISTS}/{newsletter['id']}/members",
            {"contact_ids": [us_vip_customer, new_pro, old_pro, old_us_vip_customer]},
            format="json",
        )
    )
    assert added == {"added": 4, "already_members": 0}

    # "US customers tagged vip, or any contact on the pro plan created in the last 30 days."
    rules = any_of(
        all_of(
            {"field": "country", "operator": "eq", "value": "US"},
            {"field": "lifecycle_stage", "operator": "eq", "value": "customer"},
            {"field": "tags", "operator": "contains", "value": "vip"},
        ),
        all_of(
            {"field": "metadata.plan", "operator": "eq", "value": "pro"},
            {"field": "created_at", "operator": "within_last", "value": "30d"},
        ),
    )
    expected = newest_first(account, [us_vip_customer, old_us_vip_customer, new_pro, another_new_pro])

    preview = ok(api.post(PREVIEW, {"rules": rules}, format="json"))
    assert (preview["contact_count"], preview["contact_count_exact"]) == (4, True)
    assert [contact["id"] for contact in preview["sample"]] == expected
    assert not Segment.objects.exists()

    saved = ok(api.post(SEGMENTS, {"name": "US VIP customers and new pros", "rules": rules}, format="json"), 201)
    assert saved["rules"] == rules
    assert saved["contact_count"] == 4

    detail = read_segment(api, saved["id"])
    assert detail["contact_count"] == 4
    assert detail["name"] == "US VIP customers and new pros"

    assert walk(api, members_url(saved["id"]), 2) == expected
    assert walk(api, CONTACTS, 2, {"segment": saved["id"]}) == expected
    assert set(walk(api, CONTACTS, 2, {"list": newsletter["id"]})) == {
        us_vip_customer,
        new_pro,
        old_pro,
        old_us_vip_customer,
    }
    assert set(walk(api, CONTACTS, 2, {"list": newsletter["id"], "segment": saved["id"]})) == {
        us_vip_customer,
        old_us_vip_customer,
        new_pro,
    }


# --- Preview counts: exact when cheap, else capped --------------------------------


@pytest.fixture
def five_vips(make_contact):
    return [make_contact(email=f"vip{i}@example.com", tags=["vip"]) for i in range(5)]


VIP_RULES = {"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]}


def test_a_preview_past_its_budget_counts_up_to_the_cap_as_at_least(api, five_vips, settings):
    settings.SEGMENT_PREVIEW_EXACT_MS = 0  # the exact count is never tried
    settings.SEGMENT_PREVIEW_COUNT_CAP = 3

    preview = ok(api.post(PREVIEW, {"rules": VIP_RULES}, format="json"))

    assert (preview["contact_count"], preview["contact_count_exact"]) == (3, False)
    assert len(preview["sample"]) == 5


def test_a_capped_count_below_the_cap_is_exact(api, five_vips, settings):
    settings.SEGMENT_PREVIEW_EXACT_MS = 0
    settings.SEGMENT_PREVIEW_COUNT_CAP = 5

    preview = ok(api.post(PREVIEW, {"rules": VIP_RULES}, format="json"))

    assert (preview["contact_count"], preview["contact_count_exact"]) == (5, True)


@pytest.mark.django_db(transaction=True)
def test_an_exact_count_that_runs_out_of_time_falls_back_to_the_cap(api, five_vips, settings, monkeypatch):
    """A real statement_timeout: the first count sleeps past the budget and is cancelled."""
    from django.db import connection
    from django.db.models import QuerySet

    settings.SEGMENT_PREVIEW_EXACT_MS = 50
    settings.SEGMENT_PREVIEW_COUNT_CAP = 2
    real_count, calls = QuerySet.count, []

    def slow_first_count(queryset):
        calls.append(queryset)
        if len(calls) == 1:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(1)")
        return real_count(queryset)

    monkeypatch.setattr(QuerySet, "count", slow_first_count)
    preview = ok(api.post(PREVIEW, {"rules": VIP_RULES}, format="json"))

    assert (preview["contact_count"], preview["contact_count_exact"]) == (2, False)
    assert len(calls) == 2
    # The budget was SET LOCAL: the connection's own timeout is back.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == f"{settings.DB_STATEMENT_TIMEOUT_MS // 1000}s"


def test_the_direct_representation_equals_the_declared_fields_output(api, make_contact):
    from rest_framework import serializers

    from segments.api.serializers import SegmentDetailSerializer

    make_contact(email="vip@example.com", tags=["vip"])
    created = ok(api.post(SEGMENTS, {"name": "VIPs", "rules": VIP_RULES}, format="json"), 201)
    segment = Segment.objects.get(pk=created["id"])
    segment.contact_count = 1

    declared = serializers.ModelSerializer.to_representation(SegmentDetailSerializer(), segment)

    assert SegmentDetailSerializer(segment).data == declared
    assert read_segment(api, segment.pk) == declared


def test_a_count_compiled_once_still_follows_the_contacts_and_the_rules(api, make_contact):
    created = ok(api.post(SEGMENTS, {"name": "VIPs", "rules": VIP_RULES}, format="json"), 201)
    assert read_segment(api, created["id"])["contact_count"] == 0

    make_contact(email="vip@example.com", tags=["vip"])
    assert read_segment(api, created["id"])["contact_count"] == 1

    none = {"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "none"}]}
    assert ok(api.patch(f"{SEGMENTS}/{created['id']}", {"rules": none}, format="json"))["contact_count"] == 0


def test_a_preview_the_planner_expects_to_be_broad_skips_the_exact_count(api, five_vips, settings, monkeypatch):
    from django.db.models import QuerySet

    from segments import services

    settings.SEGMENT_PREVIEW_COUNT_CAP = 3
    monkeypatch.setattr(services, "PREVIEW_EXACT_ESTIMATE_LIMIT", 0)  # every estimate is "broad"
    counted = []
    real_count = QuerySet.count
    monkeypatch.setattr(
        QuerySet, "count", lambda queryset: counted.append(queryset.query.high_mark) or real_count(queryset)
    )

    preview = ok(api.post(PREVIEW, {"rules": VIP_RULES}, format="json"))

    assert (preview["contact_count"], preview["contact_count_exact"]) == (3, False)
    assert counted == [4]  # only the capped count (LIMIT cap + 1) ran


@pytest.mark.django_db(transaction=True)
def test_the_capped_count_keeps_to_indexes_and_leaves_the_setting_as_it_was(api, five_vips, settings, monkeypatch):
    from django.db import connection
    from django.db.models import QuerySet

    settings.SEGMENT_PREVIEW_EXACT_MS = 0
    seen = []
    real_count = QuerySet.count

    def count_noting_the_setting(queryset):
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            seen.append(cursor.fetchone()[0])
        return real_count(queryset)

    monkeypatch.setattr(QuerySet, "count", count_noting_the_setting)
    ok(api.post(PREVIEW, {"rules": VIP_RULES}, format="json"))

    assert seen == ["off"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"
