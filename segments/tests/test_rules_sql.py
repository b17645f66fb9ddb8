"""The compiled SQL of the segment rule language (API.md §8), run on PostgreSQL.

Each test builds a small fixed set of contacts, labels them, and asserts the
exact set of labels that ``compile_rules`` selects within the account. Columns
the API does not let a client write (timestamps, stored preferences, JSON
nulls in metadata) are set with direct updates.
"""

import pytest
from django.db.models import DateTimeField
from django.db.models.expressions import RawSQL

from contacts.models import Contact
from lists.models import ContactList, ListMembership
from segments.rules import compile_rules, validate_rules


class _Missing:
    """No ``value`` key at all. Named in test ids, which every xdist worker must compute alike."""

    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


def condition(field, operator, value=MISSING):
    item = {"field": field, "operator": operator}
    if value is not MISSING:
        item["value"] = value
    return item


def rules(*conditions, match="all"):
    return {"match": match, "conditions": list(conditions)}


def matching(account, labels, tree) -> set:
    """Labels of the account's contacts that ``tree`` selects (an unlabelled contact shows as its id)."""
    validate_rules(tree)
    by_id = {contact_id: label for label, contact_id in labels.items()}
    ids = Contact.objects.for_account(account).filter(compile_rules(tree)).values_list("id", flat=True)
    return {by_id.get(contact_id, contact_id) for contact_id in ids}


def matching_one(account, labels, field, operator, value=MISSING) -> set:
    return matching(account, labels, rules(condition(field, operator, value)))


def db_ago(interval: str):
    """``now() - interval`` evaluated by PostgreSQL."""
    return RawSQL("now() - %s::interval", [interval], output_field=DateTimeField())


def update(contact_id, **columns):
    assert Contact.objects.filter(pk=contact_id).update(**columns) == 1


@pytest.fixture
def people(account, make_contact):
    """Five contacts covering present, empty and null text fields, tags and case."""
    contacts = {
        "ada": make_contact(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            phone="+14155552671",
            lifecycle_stage="customer",
            tags=["vip", "beta"],
        ),
        "bob": make_contact(
            first_name="Bob", last_name="Builder", email="Bob@Builder.org", country="gb", tags=["beta"]
        ),
        "cy": make_contact(email="cy@example.net", lifecycle_stage="churned"),
        "dee": make_contact(first_name="DEE", last_name="O'Hara", phone="+33612345678", tags=["VIP"]),
        "eve": make_contact(
            first_name="Eve",
            last_name="100%",
            email="e_ve@example.com",
            phone="+14155552672",
            country="us",
            lifecycle_stage="customer",
            tags=["vip", "early-bird"],
        ),
    }
    return {label: contact.pk for label, contact in contacts.items()}


EVERYONE = {"ada", "bob", "cy", "dee", "eve"}


def test_the_people_are_stored_as_the_tests_assume(account, people):
    rows = {
        row["id"]: row
        for row in Contact.objects.for_account(account).values(
            "id", "first_name", "last_name", "email", "phone", "country", "lifecycle_stage", "tags"
        )
    }
    assert {label: rows[contact_id]["email"] for label, contact_id in people.items()} == {
        "ada": "ada@example.com",
        "bob": "bob@builder.org",
        "cy": "cy@example.net",
        "dee": None,
        "eve": "e_ve@example.com",
    }
    assert {label: rows[contact_id]["country"] for label, contact_id in people.items()} == {
        "ada": "US",
        "bob": "GB",
        "cy": None,
        "dee": "FR",
        "eve": "US",
    }
    assert {label: rows[contact_id]["first_name"] for label, contact_id in people.items()} == {
        "ada": "Ada",
        "bob": "Bob",
        "cy": "",
        "dee": "DEE",
        "eve": "Eve",
    }
    assert rows[people["bob"]]["phone"] is None
    assert rows[people["cy"]]["lifecycle_stage"] == "churned"
    assert rows[people["dee"]]["lifecycle_stage"] == "lead"


# --- Text fields -------------------------------------------------------------------------

TEXT_CASES = [
    # Names ignore case; an empty name is absent.
    ("first_name", "eq", "ada", {"ada"}),
    ("first_name", "eq", "dee", {"dee"}),
    ("first_name", "eq", "ADA", {"ada"}),
    ("first_name", "eq", "Ad", set()),
    ("first_name", "neq", "ADA", {"bob", "cy", "dee", "eve"}),
    ("first_name", "in", ["ADA", "bob", "nobody"], {"ada", "bob"}),
    ("first_name", "in", ["Dee"], {"dee"}),
    ("first_name", "not_in", ["ada", "BOB"], {"cy", "dee", "eve"}),
    ("first_name", "starts_with", "e", {"eve"}),
    ("first_name", "starts_with", "d", {"dee"}),
    ("first_name", "ends_with", "B", {"bob"}),
    ("first_name", "contains", "E", {"dee", "eve"}),
    ("first_name", "contains", "v", {"eve"}),
    ("first_name", "exists", MISSING, {"ada", "bob", "dee", "eve"}),
    ("first_name", "not_exists", MISSING, {"cy"}),
    ("last_name", "eq", "o'hara", {"dee"}),
    ("last_name", "neq", "O'HARA", {"ada", "bob", "cy", "eve"}),
    ("last_name", "starts_with", "lOVE", {"ada"}),
    ("last_name", "ends_with", "ER", {"bob"}),
    ("last_name", "contains", "%", {"eve"}),
    ("last_name", "starts_with", "100%", {"eve"}),
    ("last_name", "contains", "'", {"dee"}),
    ("last_name", "in", ["LOVELACE", "100%"], {"ada", "eve"}),
    ("last_name", "not_in", ["lovelace"], {"bob", "cy", "dee", "eve"}),
    ("last_name", "exists", MISSING, {"ada", "bob", "dee", "eve"}),
    ("last_name", "not_exists", MISSING, {"cy"}),
    # Email ignores case; a missing email is absent; "_" is a character, not a wildcard.
    ("email", "eq", "ADA@EXAMPLE.COM", {"ada"}),
    ("email", "eq", "Bob@Builder.org", {"bob"}),
    ("email", "neq", "ada@example.com", {"bob", "cy", "dee", "eve"}),
    ("email", "in", ["CY@EXAMPLE.NET", "nobody@example.com"], {"cy"}),
    ("email", "not_in", ["cy@example.net", "BOB@builder.org"], {"ada", "dee", "eve"}),
    ("email", "starts_with", "E_", {"eve"}),
    ("email", "starts_with", "A", {"ada"}),
    ("email", "ends_with", "@EXAMPLE.COM", {"ada", "eve"}),
    ("email", "contains", "Example", {"ada", "cy", "eve"}),
    ("email", "contains", "_", {"eve"}),
    ("email", "contains", "%", set()),
    ("email", "exists", MISSING, {"ada", "bob", "cy", "eve"}),
    ("email", "not_exists", MISSING, {"dee"}),
    # Phone compares the stored E.164 text.
    ("phone", "eq", "+14155552671", {"ada"}),
    ("phone", "neq", "+14155552671", {"bob", "cy", "dee", "eve"}),
    ("phone", "in", ["+33612345678", "+14155552672"], {"dee", "eve"}),
    ("phone", "not_in", ["+33612345678"], {"ada", "bob", "cy", "eve"}),
    ("phone", "starts_with", "+1415", {"ada", "eve"}),
    ("phone", "ends_with", "2671", {"ada"}),
    ("phone", "contains", "4155", {"ada", "eve"}),
    ("phone", "contains", "_", set()),
    ("phone", "exists", MISSING, {"ada", "dee", "eve"}),
    ("phone", "not_exists", MISSING, {"bob", "cy"}),
    ("phone", "eq", "not a phone", set()),
    ("phone", "neq", "not a phone", EVERYONE),
    ("phone", "in", ["not a phone"], set()),
    # Country values are upper-cased, so any case matches.
    ("country", "eq", "us", {"ada", "eve"}),
    ("country", "eq", "US", {"ada", "eve"}),
    ("country", "neq", "us", {"bob", "cy", "dee"}),
    ("country", "in", ["gb", "Fr"], {"bob", "dee"}),
    ("country", "not_in", ["gb"], {"ada", "cy", "dee", "eve"}),
    ("country", "starts_with", "g", {"bob"}),
    ("country", "ends_with", "r", {"dee"}),
    ("country", "contains", "s", {"ada", "eve"}),
    ("country", "exists", MISSING, {"ada", "bob", "dee", "eve"}),
    ("country", "not_exists", MISSING, {"cy"}),
    # Lifecycle stage is case-sensitive.
    ("lifecycle_stage", "eq", "lead", {"bob", "dee"}),
    ("lifecycle_stage", "eq", "LEAD", set()),
    ("lifecycle_stage", "neq", "LEAD", EVERYONE),
    ("lifecycle_stage", "neq", "lead", {"ada", "cy", "eve"}),
    ("lifecycle_stage", "in", ["lead", "churned"], {"bob", "cy", "dee"}),
    ("lifecycle_stage", "in", ["Lead", "CHURNED"], set()),
    ("lifecycle_stage", "not_in", ["lead"], {"ada", "cy", "eve"}),
    ("lifecycle_stage", "not_in", ["Lead"], EVERYONE),
    ("lifecycle_stage", "starts_with", "cust", {"ada", "eve"}),
    ("lifecycle_stage", "starts_with", "Cust", set()),
    ("lifecycle_stage", "ends_with", "ed", {"cy"}),
    ("lifecycle_stage", "contains", "ea", {"bob", "dee"}),
    ("lifecycle_stage", "contains", "EA", set()),
    ("lifecycle_stage", "exists", MISSING, EVERYONE),
    ("lifecycle_stage", "not_exists", MISSING, set()),
]


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    TEXT_CASES,
    ids=[f"{field}-{operator}-{value}" for field, operator, value, _ in TEXT_CASES],
)
def test_text_field(account, people, field, operator, value, expected):
    assert matching_one(account, people, field, operator, value) == expected


def test_names_ignore_case_beyond_ascii(account, make_contact):
    labels = {
        "emile": make_contact(first_name="Émile", last_name="Müller", email="emile@example.com").pk,
        "emil": make_contact(first_name="Emil", last_name="Muller", email="emil@example.com").pk,
    }
    assert matching_one(account, labels, "first_name", "eq", "ÉMILE") == {"emile"}
    assert matching_one(account, labels, "first_name", "starts_with", "émi") == {"emile"}
    assert matching_one(account, labels, "last_name", "contains", "ÜLL") == {"emile"}
    assert matching_one(account, labels, "last_name", "neq", "MÜLLER") == {"emil"}


NEGATION_CASES = [
    ("first_name", "neq", "x"),
    ("first_name", "not_in", ["x"]),
    ("last_name", "neq", "x"),
    ("last_name", "not_in", ["x"]),
    ("email", "neq", "x@example.com"),
    ("email", "not_in", ["x@example.com"]),
    ("phone", "neq", "+14155550000"),
    ("phone", "not_in", ["+14155550000"]),
    ("country", "neq", "DE"),
    ("country", "not_in", ["DE"]),
    ("lifecycle_stage", "neq", "x"),
    ("lifecycle_stage", "not_in", ["x"]),
    ("tags", "not_contains", "x"),
]


@pytest.mark.parametrize(("field", "operator", "value"), NEGATION_CASES)
def test_negations_match_empty_and_null_fields(account, people, field, operator, value):
    # cy has empty names, no tags and no phone or country; bob has no phone; dee has no email.
    assert matching_one(account, people, field, operator, value) == EVERYONE


# --- Tags and lists ------------------------------------------------------------------------

TAG_CASES = [
    ("contains", "vip", {"ada", "eve"}),
    ("contains", "VIP", {"dee"}),
    ("contains", "early", set()),
    ("not_contains", "vip", {"bob", "cy", "dee"}),
    ("not_contains", "absent", EVERYONE),
    ("contains_any", ["beta", "VIP"], {"ada", "bob", "dee"}),
    ("contains_any", ["absent"], set()),
    ("contains_all", ["vip", "beta"], {"ada"}),
    ("contains_all", ["beta"], {"ada", "bob"}),
    ("contains_all", ["vip", "absent"], set()),
    ("exists", MISSING, {"ada", "bob", "dee", "eve"}),
    ("not_exists", MISSING, {"cy"}),
]


@pytest.mark.parametrize(("operator", "value", "expected"), TAG_CASES, ids=[f"{op}-{v}" for op, v, _ in TAG_CASES])
def test_tags(account, people, operator, value, expected):
    assert matching_one(account, people, "tags", operator, value) == expected


def test_tags_with_punctuation_match_exactly(account, make_contact):
    odd_tags = ["a,b", '"quoted"', "{x}", "back\\slash", "it's", "NULL", "a b"]
    labels = {
        tag: make_contact(email=f"t{index}@tags.example.com", tags=[tag]).pk for index, tag in enumerate(odd_tags)
    }
    labels["plain"] = make_contact(email="plain@tags.example.com", tags=["a", "b", "x", "quoted"]).pk
    for tag in odd_tags:
        assert matching_one(account, labels, "tags", "contains", tag) == {tag}, tag
        assert matching_one(account, labels, "tags", "contains_any", [tag]) == {tag}, tag
        assert matching_one(account, labels, "tags", "not_contains", tag) == set(labels) - {tag}, tag
    assert matching_one(account, labels, "tags", "contains_all", ["a", "b"]) == {"plain"}


def test_lists_contains_and_not_contains(account, other_account, people, make_contact):
    newsletter = ContactList.objects.create(account=account, name="Newsletter")
    beta = ContactList.objects.create(account=account, name="Beta")
    empty = ContactList.objects.create(account=account, name="Empty")
    for label in ["ada", "bob"]:
        ListMembership.objects.create(account=account, contact_list=newsletter, contact_id=people[label])
    ListMembership.objects.create(account=account, contact_list=beta, contact_id=people["bob"])
    foreign = ContactList.objects.create(account=other_account, name="Newsletter")
    stranger = make_contact(account=other_account, email="ada@example.com")
    ListMembership.objects.create(account=other_account, contact_list=foreign, contact_id=stranger.pk)

    assert matching_one(account, people, "lists", "contains", newsletter.pk) == {"ada", "bob"}
    assert matching_one(account, people, "lists", "not_contains", newsletter.pk) == {"cy", "dee", "eve"}
    assert matching_one(account, people, "lists", "contains", beta.pk) == {"bob"}
    assert matching_one(account, people, "lists", "not_contains", beta.pk) == {"ada", "cy", "dee", "eve"}
    assert matching_one(account, people, "lists", "contains", empty.pk) == set()
    assert matching_one(account, people, "lists", "not_contains", empty.pk) == EVERYONE
    assert matching_one(account, people, "lists", "contains", "lst_AAAAAAAAAAAAAAAA") == set()
    assert matching_one(account, people, "lists", "contains", foreign.pk) == set()
    tree = rules(condition("lists", "contains", newsletter.pk), condition("lists", "not_contains", beta.pk))
    assert matching(account, people, tree) == {"ada"}
    tree = rules(condition("lists", "contains", beta.pk), condition("tags", "contains", "vip"), match="any")
    assert matching(account, people, tree) == {"ada", "bob", "eve"}


# --- Timestamps ------------------------------------------------------------------------------


@pytest.fixture
def dated(people):
    """created_at and updated_at at fixed instants, never the same order for both."""
    created = {
        "eve": "2024-12-31T23:59:59+00:00",
        "ada": "2025-01-01T00:00:00+00:00",
        "bob": "2025-06-01T12:00:00+00:00",
        "cy": "2025-06-01T12:00:01+00:00",
        "dee": "2026-01-01T00:00:00+00:00",
    }
    updated = {
        "dee": "2025-03-01T00:00:00+00:00",
        "cy": "2025-03-01T00:00:00.000001+00:00",
        "bob": "2025-07-01T00:00:00+00:00",
        "ada": "2026-02-01T00:00:00+00:00",
        "eve": "2026-02-01T00:00:00.5+00:00",
    }
    for label, contact_id in people.items():
        update(contact_id, created_at=created[label], updated_at=updated[label])
    return people


DATE_CASES = [
    ("created_at", "gt", "2025-06-01T12:00:00Z", {"cy", "dee"}),
    ("created_at", "gte", "2025-06-01T12:00:00Z", {"bob", "cy", "dee"}),
    ("created_at", "lt", "2025-06-01T12:00:00Z", {"ada", "eve"}),
    ("created_at", "lte", "2025-06-01T12:00:00Z", {"ada", "bob", "eve"}),
    ("created_at", "gte", "2025-06-01T14:00:00+02:00", {"bob", "cy", "dee"}),
    ("created_at", "lte", "2025-06-01T07:00:00-05:00", {"ada", "bob", "eve"}),
    # Offsets PostgreSQL itself refuses (beyond ±15:59) are converted to UTC first.
    ("created_at", "gte", "2025-06-02T11:30:00+23:30", {"bob", "cy", "dee"}),
    ("created_at", "lt", "2025-05-31T13:00:00-23:00", {"ada", "eve"}),
    ("created_at", "gt", "2025-06-01t12:00:00z", {"cy", "dee"}),
    ("created_at", "gt", "2025-06-01T12:00:00.999999Z", {"cy", "dee"}),
    ("created_at", "lt", "2025-01-01T00:00:00Z", {"eve"}),
    ("created_at", "lte", "2025-01-01T00:00:00Z", {"ada", "eve"}),
    ("created_at", "gt", "2026-01-01T00:00:00Z", set()),
    ("created_at", "gte", "2024-12-31T23:59:59Z", EVERYONE),
    ("updated_at", "gt", "2025-03-01T00:00:00Z", {"ada", "bob", "cy", "eve"}),
    ("updated_at", "gte", "2025-03-01T00:00:00Z", {"ada", "bob", "cy", "dee", "eve"}),
    ("updated_at", "lt", "2025-03-01T00:00:00.000001Z", {"dee"}),
    ("updated_at", "lte", "2025-07-01T00:00:00Z", {"bob", "cy", "dee"}),
    ("updated_at", "gt", "2026-02-01T00:00:00Z", {"eve"}),
    ("updated_at", "lt", "2026-02-01T01:00:00+01:00", {"bob", "cy", "dee"}),
]


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    DATE_CASES,
    ids=[f"{field}-{operator}-{value}" for field, operator, value, _ in DATE_CASES],
)
def test_timestamp_comparison(account, dated, field, operator, value, expected):
    assert matching_one(account, dated, field, operator, value) == expected


@pytest.fixture
def aged(people):
    """created_at and updated_at some time before the database's now()."""
    created = {"eve": "400 days", "ada": "40 days", "bob": "20 days", "cy": "2 hours", "dee": "30 minutes"}
    updated = {"eve": "10 minutes", "ada": "5 hours", "bob": "50 days", "cy": "10 days", "dee": "3 days"}
    for label, contact_id in people.items():
        update(contact_id, created_at=db_ago(created[label]), updated_at=db_ago(updated[label]))
    return people


RELATIVE_CASES = [
    ("created_at", "within_last", "30d", {"bob", "cy", "dee"}),
    ("created_at", "not_within_last", "30d", {"ada", "eve"}),
    ("created_at", "within_last", "45d", {"ada", "bob", "cy", "dee"}),
    ("created_at", "within_last", "365d", {"ada", "bob", "cy", "dee"}),
    ("created_at", "not_within_last", "365d", {"eve"}),
    ("created_at", "within_last", "3h", {"cy", "dee"}),
    ("created_at", "not_within_last", "1h", {"ada", "bob", "cy", "eve"}),
    ("created_at", "within_last", "90m", {"dee"}),
    ("created_at", "within_last", "20m", set()),
    ("created_at", "not_within_last", "20m", EVERYONE),
    ("created_at", "within_last", "999999m", {"ada", "bob", "cy", "dee", "eve"}),
    ("updated_at", "within_last", "1h", {"eve"}),
    ("updated_at", "within_last", "1d", {"ada", "eve"}),
    ("updated_at", "not_within_last", "1d", {"bob", "cy", "dee"}),
    ("updated_at", "within_last", "7d", {"ada", "dee", "eve"}),
    ("updated_at", "not_within_last", "30d", {"bob"}),
    ("updated_at", "within_last", "290m", {"eve"}),
    ("updated_at", "within_last", "310m", {"ada", "eve"}),
]


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    RELATIVE_CASES,
    ids=[f"{field}-{operator}-{value}" for field, operator, value, _ in RELATIVE_CASES],
)
def test_relative_timestamp_uses_the_database_clock(account, aged, field, operator, value, expected):
    assert matching_one(account, aged, field, operator, value) == expected


# --- Metadata ------------------------------------------------------------------------------------


def stored_metadata(make_contact, values: dict) -> dict:
    """A contact per label whose metadata is exactly ``values[label]`` (JSON nulls included)."""
    labels = {}
    for label, metadata in values.items():
        contact = make_contact(email=f"{label}@meta.example.com")
        update(contact.pk, metadata=metadata)
        labels[label] = contact.pk
    return labels


@pytest.fixture
def seats(make_contact):
    return stored_metadata(
        make_contact,
        {
            "int12": {"seats": 12},
            "float12": {"seats": 12.0},
            "str12": {"seats": "12"},
            "big": {"seats": 100},
            "abc": {"seats": "abc"},
            "true": {"seats": True},
            "null": {"seats": None},
            "obj": {"seats": {"a": 1, "b": [1, 2]}},
            "arr": {"seats": [12, "x"]},
            "arrstr": {"seats": ["ab", "cd"]},
            "other": {"plan": "pro", "a": 1},
            "empty": {},
        },
    )


ALL_SEATS = {"int12", "float12", "str12", "big", "abc", "true", "null", "obj", "arr", "arrstr", "other", "empty"}

METADATA_CASES = [
    # Equality is type-aware: 12 = 12.0, 12 ≠ "12", true ≠ 1.
    ("eq", 12, {"int12", "float12"}),
    ("eq", 12.0, {"int12", "float12"}),
    ("eq", "12", {"str12"}),
    ("eq", True, {"true"}),
    ("eq", 1, set()),
    ("eq", False, set()),
    ("eq", "true", set()),
    ("eq", None, {"null"}),
    ("eq", "null", set()),
    ("eq", "abc", {"abc"}),
    ("eq", "ABC", set()),
    ("neq", 12, ALL_SEATS - {"int12", "float12"}),
    ("neq", "12", ALL_SEATS - {"str12"}),
    ("neq", None, ALL_SEATS - {"null"}),
    ("neq", True, ALL_SEATS - {"true"}),
    # Containers are equal only when exactly equal, never by containment.
    ("eq", {"a": 1, "b": [1, 2]}, {"obj"}),
    ("eq", {"b": [1, 2], "a": 1}, {"obj"}),
    ("eq", {"a": 1}, set()),
    ("eq", {"a": 1, "b": [1]}, set()),
    ("eq", {}, set()),
    ("eq", [12, "x"], {"arr"}),
    ("eq", ["x", 12], set()),
    ("eq", [12], set()),
    ("eq", [], set()),
    ("eq", "x", set()),
    ("eq", "ab", set()),
    ("neq", {"a": 1}, ALL_SEATS),
    ("neq", {"a": 1, "b": [1, 2]}, ALL_SEATS - {"obj"}),
    ("neq", [12, "x"], ALL_SEATS - {"arr"}),
    ("neq", "x", ALL_SEATS),
    ("in", [12, "abc"], {"int12", "float12", "abc"}),
    ("in", [None, True], {"null", "true"}),
    ("in", ["12"], {"str12"}),
    ("in", [{"a": 1, "b": [1, 2]}, [12, "x"]], {"obj", "arr"}),
    ("in", [{"a": 1}, [12]], set()),
    ("not_in", [12, "abc"], ALL_SEATS - {"int12", "float12", "abc"}),
    ("not_in", [None], ALL_SEATS - {"null"}),
    ("not_in", [[12, "x"]], ALL_SEATS - {"arr"}),
    # Numbers compare with numbers only.
    ("gt", 10, {"int12", "float12", "big"}),
    ("gt", 12, {"big"}),
    ("gte", 12, {"int12", "float12", "big"}),
    ("gt", 11.5, {"int12", "float12", "big"}),
    ("lt", 100, {"int12", "float12"}),
    ("lte", 100, {"int12", "float12", "big"}),
    ("lt", 0, set()),
    ("gt", -1000000, {"int12", "float12", "big"}),
    # Strings compare with strings only.
    ("gt", "10", {"str12", "abc"}),
    ("gt", "12", {"abc"}),
    ("gte", "12", {"str12", "abc"}),
    ("lte", "12", {"str12"}),
    ("lt", "abc", {"str12"}),
    ("lt", "b", {"str12", "abc"}),
    ("gte", "", {"str12", "abc"}),
    ("lt", "", set()),
    # contains: an element of an array, or a substring of a string.
    ("contains", "b", {"abc"}),
    ("contains", "ab", {"abc", "arrstr"}),
    ("contains", "x", {"arr"}),
    ("contains", 12, {"arr"}),
    ("contains", 12.0, {"arr"}),
    ("contains", "12", {"str12"}),
    ("contains", "1", {"str12"}),
    ("contains", 1, set()),
    ("contains", True, set()),
    ("contains", "%", set()),
    ("contains", "_", set()),
    # exists: present and not JSON null.
    ("exists", MISSING, {"int12", "float12", "str12", "big", "abc", "true", "obj", "arr", "arrstr"}),
    ("not_exists", MISSING, {"null", "other", "empty"}),
]


@pytest.mark.parametrize(
    ("operator", "value", "expected"), METADATA_CASES, ids=[f"{op}-{value!r}" for op, value, _ in METADATA_CASES]
)
def test_metadata_is_type_aware(account, seats, operator, value, expected):
    assert matching_one(account, seats, "metadata.seats", operator, value) == expected


def test_metadata_keys_are_top_level_only(account, seats):
    # "obj" holds {"a": 1} under "seats"; only "other" has a top-level "a".
    assert matching_one(account, seats, "metadata.a", "eq", 1) == {"other"}
    assert matching_one(account, seats, "metadata.a", "exists") == {"other"}
    assert matching_one(account, seats, "metadata.b", "contains", 1) == set()
    assert matching_one(account, seats, "metadata.seats.a", "exists") == set()
    assert matching_one(account, seats, "metadata.seats.a", "not_exists") == ALL_SEATS


def test_metadata_contains_treats_like_wildcards_as_text(account, make_contact):
    labels = stored_metadata(
        make_contact,
        {
            "percent": {"note": "100% sure"},
            "plain": {"note": "100 sure"},
            "underscore": {"note": "a_b"},
            "letter": {"note": "axb"},
            "backslash": {"note": "c:\\temp"},
        },
    )
    assert matching_one(account, labels, "metadata.note", "contains", "%") == {"percent"}
    assert matching_one(account, labels, "metadata.note", "contains", "0%") == {"percent"}
    assert matching_one(account, labels, "metadata.note", "contains", "_") == {"underscore"}
    assert matching_one(account, labels, "metadata.note", "contains", "a_b") == {"underscore"}
    assert matching_one(account, labels, "metadata.note", "contains", "\\") == {"backslash"}
    assert matching_one(account, labels, "metadata.note", "contains", ":\\t") == {"backslash"}


MIXED_COMPARISONS = [
    ("gt", 5, set()),
    ("gte", 5, {"number"}),
    ("lt", 5, set()),
    ("lte", 5, {"number"}),
    ("gt", "5", {"word"}),
    ("gte", "5", {"string", "word"}),
    ("lt", "5", set()),
    ("lte", "5", {"string"}),
]


@pytest.mark.parametrize(("operator", "value", "expected"), MIXED_COMPARISONS)
def test_metadata_comparison_of_another_type_does_not_match_or_error(account, make_contact, operator, value, expected):
    labels = stored_metadata(
        make_contact,
        {
            "number": {"v": 5},
            "string": {"v": "5"},
            "word": {"v": "five"},
            "list": {"v": [5]},
            "object": {"v": {"n": 5}},
            "bool": {"v": False},
            "null": {"v": None},
        },
    )
    assert matching_one(account, labels, "metadata.v", operator, value) == expected


METADATA_KEYS = [
    "it's",
    'say "hi"',
    "a.b",
    "$ref",
    "$.a",
    "f(x)",
    "two words",
    "x--y",
    "-- comment",
    "back\\slash",
    "a') OR ('1'='1",
    "'; DROP TABLE contacts_contact; --",
    "%s",
    "%",
    "?",
    "?|",
    "{a,b}",
    "a->b",
    "a,b",
    "ключ",
    "2024",
    "0",
    "-1",
]


@pytest.mark.parametrize("key", METADATA_KEYS)
def test_metadata_keys_are_data_not_sql(account, make_contact, key):
    labels = stored_metadata(
        make_contact,
        {
            "number": {key: 5, "x": 1},
            "text": {key: "5 apples"},
            "array": {key: [5]},
            "null": {key: None},
            "other": {"other": 5},
            "nested": {"a": {"b": 5}},
        },
    )
    everyone = set(labels)
    cases = {
        ("eq", 5): {"number"},
        ("neq", 5): everyone - {"number"},
        ("eq", "5 apples"): {"text"},
        ("eq", (5,)): {"array"},
        ("neq", (5,)): everyone - {"array"},
        ("eq", None): {"null"},
        ("in", (5, None)): {"number", "null"},
        ("not_in", (5, None)): {"text", "array", "other", "nested"},
        ("gt", 4): {"number"},
        ("lte", 5): {"number"},
        ("gt", "4"): {"text"},
        ("contains", "apple"): {"text"},
        ("contains", 5): {"array"},
        ("exists", MISSING): {"number", "text", "array"},
        ("not_exists", MISSING): {"null", "other", "nested"},
    }
    actual = {
        (operator, value): matching_one(
            account, labels, f"metadata.{key}", operator, list(value) if isinstance(value, tuple) else value
        )
        for operator, value in cases
    }
    assert actual == cases
    assert Contact.objects.count() == len(labels)


# --- Preferences ------------------------------------------------------------------------------


@pytest.fixture
def preferring(make_contact):
    labels = {}
    for label, preferences in {
        "never": {},
        "in": {"sms": "opted_in"},
        "out": {"sms": "opted_out", "email": "opted_in"},
        "unset": {"sms": "unset", "whatsapp": "opted_out"},
    }.items():
        contact = make_contact(email=f"{label}@prefs.example.com")
        update(contact.pk, preferences=preferences)
        labels[label] = contact.pk
    return labels


PREFERENCE_CASES = [
    ("sms", "eq", "opted_in", {"in"}),
    ("sms", "eq", "opted_out", {"out"}),
    ("sms", "eq", "unset", {"never", "unset"}),
    ("sms", "neq", "opted_in", {"never", "out", "unset"}),
    ("sms", "neq", "opted_out", {"never", "in", "unset"}),
    ("sms", "neq", "unset", {"in", "out"}),
    ("email", "eq", "opted_in", {"out"}),
    ("email", "eq", "unset", {"never", "in", "unset"}),
    ("email", "neq", "unset", {"out"}),
    ("email", "eq", "opted_out", set()),
    ("whatsapp", "eq", "opted_out", {"unset"}),
    ("whatsapp", "eq", "unset", {"never", "in", "out"}),
    ("voice", "eq", "unset", {"never", "in", "out", "unset"}),
    ("voice", "neq", "unset", set()),
    ("viber", "eq", "opted_in", set()),
    ("rcs", "neq", "opted_in", {"never", "in", "out", "unset"}),
]


@pytest.mark.parametrize(
    ("channel", "operator", "value", "expected"),
    PREFERENCE_CASES,
    ids=[f"{channel}-{operator}-{value}" for channel, operator, value, _ in PREFERENCE_CASES],
)
def test_preferences(account, preferring, channel, operator, value, expected):
    assert matching_one(account, preferring, f"preferences.{channel}", operator, value) == expected


# --- Groups, size, tenancy -------------------------------------------------------------------


def test_nested_all_and_any_groups(account, people):
    tree = rules(
        condition("country", "eq", "US"),
        rules(condition("tags", "contains", "beta"), condition("last_name", "eq", "100%"), match="any"),
    )
    assert matching(account, people, tree) == {"ada", "eve"}
    tree = rules(
        rules(condition("lifecycle_stage", "eq", "lead"), condition("country", "eq", "gb")),
        rules(condition("email", "not_exists")),
        match="any",
    )
    assert matching(account, people, tree) == {"bob", "dee"}
    tree = rules(
        condition("tags", "exists"),
        rules(
            rules(condition("first_name", "starts_with", "a"), condition("phone", "not_exists"), match="any"),
            rules(condition("country", "neq", "US"), match="any"),
            match="all",
        ),
        match="all",
    )
    assert matching(account, people, tree) == {"bob"}


def test_groups_nested_five_deep(account, people):
    tree = rules(condition("first_name", "eq", "eve"), condition("country", "eq", "fr"), match="any")
    for depth in range(4):
        tree = rules(tree, condition("lifecycle_stage", "neq", f"stage{depth}"), match="all" if depth % 2 else "any")
    assert matching(account, people, tree) == EVERYONE
    tree = rules(condition("first_name", "eq", "eve"), condition("country", "eq", "fr"), match="any")
    for _ in range(4):
        tree = rules(tree, condition("email", "exists"), match="all")
    assert matching(account, people, tree) == {"eve"}


def test_any_of_one_condition_and_all_of_one_condition_agree(account, people):
    for match in ["any", "all"]:
        assert matching(account, people, rules(condition("tags", "contains", "beta"), match=match)) == {"ada", "bob"}


def test_two_hundred_conditions_run_as_one_query(account, people, django_assert_num_queries):
    tree = rules(
        rules(
            *[condition("first_name", "eq", f"nobody{index}") for index in range(49)],
            condition("first_name", "eq", "ADA"),
            match="any",
        ),
        rules(
            *[condition("lists", "contains", f"lst_missing{index}") for index in range(49)],
            condition("tags", "contains", "vip"),
            match="any",
        ),
        rules(
            *[condition(f"metadata.key{index}", "eq", index) for index in range(49)],
            condition("created_at", "lt", "2100-01-01T00:00:00Z"),
            match="any",
        ),
        rules(
            *[condition("country", "eq", f"X{index}") for index in range(25)],
            *[condition("preferences.sms", "eq", "opted_out") for _ in range(24)],
            condition("lifecycle_stage", "eq", "customer"),
            match="any",
        ),
    )
    validate_rules(tree)
    with django_assert_num_queries(0):
        q = compile_rules(tree)
    with django_assert_num_queries(1):
        ids = list(Contact.objects.for_account(account).filter(q).values_list("id", flat=True))
    assert ids == [people["ada"]]


def test_another_accounts_contacts_never_match(account, other_account, people, make_contact):
    twin = make_contact(
        account=other_account, first_name="Ada", email="ada@example.com", phone="+14155552671", tags=["vip"]
    )
    tree = rules(condition("first_name", "eq", "ada"), condition("tags", "contains", "vip"))
    assert set(Contact.objects.filter(compile_rules(tree)).values_list("id", flat=True)) == {people["ada"], twin.pk}
    assert matching(account, people, tree) == {"ada"}
    negated = rules(condition("first_name", "neq", "nobody"))
    assert matching(account, people, negated) == EVERYONE
    assert set(Contact.objects.for_account(other_account).filter(compile_rules(tree)).values_list("id", flat=True)) == {
        twin.pk
    }
