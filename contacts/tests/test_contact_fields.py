"""Field rules of a contact (API.md §4 "The object" and "Field rules"), through the API.

Each field gets good input (with the value it is stored and returned as) and
bad input (with the exact ``attr`` of the 400). Errors are checked against the
shape of API.md §2.
"""

import re
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts_project.testing import assert_error, assert_invalid

CONTACTS = "/v1/contacts"
CHANNELS = {"sms", "whatsapp", "email", "rcs", "viber", "voice"}
FIELDS = {
    "id",
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "lifecycle_stage",
    "tags",
    "metadata",
    "preferences",
    "created_at",
    "updated_at",
}


def create(api, **fields):
    return api.post(CONTACTS, fields, format="json")


def created(api, **fields) -> dict:
    response = create(api, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def patch(api, contact_id, **fields):
    return api.patch(f"{CONTACTS}/{contact_id}", fields, format="json")


def stored(api, contact_id) -> dict:
    response = api.get(f"{CONTACTS}/{contact_id}")
    assert response.status_code == 200, response.content
    return response.json()


# --- the object ---------------------------------------------------------------


def test_created_contact_has_exactly_the_fields_of_the_object(api):
    contact = created(api, phone="+14155552671")

    assert set(contact) == FIELDS
    assert re.fullmatch(r"con_[A-Za-z0-9]+", contact["id"])
    for name in ("created_at", "updated_at"):
        assert contact[name].endswith("Z")
        assert datetime.fromisoformat(contact[name]).utcoffset().total_seconds() == 0


def test_a_contact_with_only_an_email_has_defaults_for_everything_else(api):
    contact = created(api, email="ada@example.com")

    assert contact["phone"] is None
    assert contact["first_name"] == ""
    assert contact["last_name"] == ""
    assert contact["country"] is None
    assert contact["lifecycle_stage"] == "lead"
    assert contact["tags"] == []
    assert contact["metadata"] == {}
    assert contact["preferences"] == dict.fromkeys(CHANNELS, "unset")


def test_ids_differ_between_contacts(api):
    first = created(api, email="one@example.com")
    second = created(api, email="two@example.com")

    assert first["id"] != second["id"]


# --- phone --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"phone": "+14155552671"}, "+14155552671"),
        ({"phone": "+1 (415) 555-2671"}, "+14155552671"),
        ({"phone": "+1 415-555-2671"}, "+14155552671"),
        ({"phone": "+1.415.555.2671"}, "+14155552671"),
        ({"phone": "+1 415 555 2671"}, "+14155552671"),
        ({"phone": "+44 20 7946 0958"}, "+442079460958"),
        ({"phone": "+90 (532) 123 45 67"}, "+905321234567"),
        ({"phone": "(415) 555-2671", "country": "US"}, "+14155552671"),
        ({"phone": "415.555.2671", "country": "us"}, "+14155552671"),
        ({"phone": "020 7946 0958", "country": "GB"}, "+442079460958"),
        ({"phone": "0532 123 45 67", "country": "TR"}, "+905321234567"),
    ],
)
def test_phone_is_stored_in_e164(api, fields, expected):
    contact = created(api, **fields)

    assert contact["phone"] == expected
    assert stored(api, contact["id"])["phone"] == expected


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"phone": "(415) 555-2671"}, id="national-without-country"),
        pytest.param({"phone": "4155552671"}, id="digits-without-country"),
        pytest.param({"phone": "(415) 555-2671", "country": "GB"}, id="national-of-another-country"),
        pytest.param({"phone": "+1 415 555 267"}, id="too-short"),
        pytest.param({"phone": "+1 415 555 26711"}, id="too-long"),
        pytest.param({"phone": "+1 200 555 0100"}, id="invalid-area-code"),
        pytest.param({"phone": "+999 123456"}, id="unknown-country-code"),
        pytest.param({"phone": "call me"}, id="words"),
        pytest.param({"phone": "+"}, id="plus-only"),
        pytest.param({"phone": ""}, id="empty"),
        pytest.param({"phone": "+1" * 40}, id="very-long"),
        pytest.param({"phone": 14155552671}, id="integer"),
        pytest.param({"phone": 1.5}, id="float"),
        pytest.param({"phone": True}, id="boolean"),
        pytest.param({"phone": ["+14155552671"]}, id="list"),
        pytest.param({"phone": {"number": "+14155552671"}}, id="object"),
        pytest.param({"phone": "+1 (415) 555-2671 ext. 99"}, id="extension"),
    ],
)
def test_invalid_phone_is_400(api, fields):
    assert_invalid(create(api, email="ada@example.com", **fields), "phone")


def test_invalid_phone_on_update_is_400_and_changes_nothing(api):
    contact = created(api, phone="+14155552671")

    assert_invalid(patch(api, contact["id"], phone="+1 415 555 267"), "phone")

    assert stored(api, contact["id"])["phone"] == "+14155552671"


def test_national_phone_on_update_uses_the_country_given_with_it(api):
    contact = created(api, email="ada@example.com")

    response = patch(api, contact["id"], phone="020 7946 0958", country="gb")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+442079460958"
    assert response.json()["country"] == "GB"


# --- email --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada@Example.COM", "ada@example.com"),
        ("Ada.Lovelace+News@Mail.Example.co.uk", "ada.lovelace+news@mail.example.co.uk"),
    ],
)
def test_email_is_stored_lower_cased(api, email, expected):
    contact = created(api, email=email)

    assert contact["email"] == expected
    assert stored(api, contact["id"])["email"] == expected


def test_email_is_lower_cased_on_update(api):
    contact = created(api, phone="+14155552671")

    response = patch(api, contact["id"], email="GRACE@Example.com")

    assert response.status_code == 200, response.content
    assert response.json()["email"] == "grace@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "ada lovelace@example.com",
        "",
        42,
        True,
        ["ada@example.com"],
        {"address": "ada@example.com"},
    ],
)
def test_invalid_email_is_400(api, email):
    assert_invalid(create(api, phone="+14155552671", email=email), "email")


# --- at least one of phone and email -------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"first_name": "Ada", "last_name": "Lovelace"},
        {"phone": None, "email": None, "first_name": "Ada"},
        {"phone": None},
        {"email": None},
    ],
)
def test_create_without_phone_or_email_is_400(api, fields):
    assert_invalid(create(api, **fields), "phone")


@pytest.mark.parametrize(
    ("fields", "cleared"),
    [
        ({"phone": "+14155552671"}, {"phone": None}),
        ({"email": "ada@example.com"}, {"email": None}),
        ({"phone": "+14155552671", "email": "ada@example.com"}, {"phone": None, "email": None}),
    ],
)
def test_update_leaving_neither_phone_nor_email_is_400_and_changes_nothing(api, fields, cleared):
    contact = created(api, first_name="Ada", **fields)

    assert_invalid(patch(api, contact["id"], first_name="Grace", **cleared), "phone")

    assert stored(api, contact["id"]) == contact


def test_update_may_clear_phone_when_email_remains(api):
    contact = created(api, phone="+14155552671", email="ada@example.com")

    response = patch(api, contact["id"], phone=None)

    assert response.status_code == 200, response.content
    assert response.json()["phone"] is None
    assert response.json()["email"] == "ada@example.com"


def test_update_may_swap_phone_for_email_in_one_request(api):
    contact = created(api, phone="+14155552671")

    response = patch(api, contact["id"], phone=None, email="ada@example.com")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] is None
    assert response.json()["email"] == "ada@example.com"


# --- uniqueness within an account -----------------------------------------------


def assert_duplicate(response, attr, existing_id):
    error = assert_error(response, 409, "client_error", [attr], code="duplicate")
    assert existing_id in error["detail"]


@pytest.mark.parametrize("phone", ["+14155552671", "+1 (415) 555-2671"])
def test_create_with_a_phone_already_used_is_409_naming_the_holder(api, phone):
    existing = created(api, phone="+14155552671")

    assert_duplicate(create(api, phone=phone, email="other@example.com"), "phone", existing["id"])


def test_create_with_a_national_phone_already_used_is_409(api):
    existing = created(api, phone="+14155552671")

    response = create(api, phone="(415) 555-2671", country="US")

    assert_duplicate(response, "phone", existing["id"])


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@example.com", "Ada@Example.Com"])
def test_create_with_an_email_already_used_is_409_whatever_its_case(api, email):
    existing = created(api, email="ada@example.com")

    assert_duplicate(create(api, email=email, phone="+14155552671"), "email", existing["id"])


def test_create_with_a_duplicate_creates_nothing(api):
    created(api, phone="+14155552671", email="ada@example.com")

    assert create(api, phone="+14155552671").status_code == 409
    assert create(api, email="ada@example.com").status_code == 409

    assert len(api.get(CONTACTS).json()["data"]) == 1


def test_update_to_a_phone_already_used_is_409_and_changes_nothing(api):
    existing = created(api, phone="+14155552671")
    contact = created(api, phone="+442079460958", first_name="Grace")

    response = patch(api, contact["id"], phone="+1 415 555 2671", first_name="Ada")

    assert_duplicate(response, "phone", existing["id"])
    assert stored(api, contact["id"]) == contact


def test_update_to_an_email_already_used_is_409_and_changes_nothing(api):
    existing = created(api, email="ada@example.com")
    contact = created(api, email="grace@example.com")

    response = patch(api, contact["id"], email="ADA@EXAMPLE.COM")

    assert_duplicate(response, "email", existing["id"])
    assert stored(api, contact["id"]) == contact


@pytest.mark.django_db(transaction=True)  # so the update's own atomic block is a transaction, not a savepoint
def test_only_a_changed_phone_or_email_is_written_in_a_savepoint(api):
    """The savepoint is what lets a unique violation become a 409; other changes cannot violate one."""
    contact = created(api, phone="+14155552671", email="ada@example.com")

    def savepoints(**fields) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert patch(api, contact["id"], **fields).status_code == 200
        return sum(query["sql"].startswith("SAVEPOINT") for query in queries.captured_queries)

    assert savepoints(metadata={"plan": "pro"}, tags=["vip"], first_name="Ada") == 0
    assert savepoints(email="ada@example.com") == 0  # the stored value: nothing changes
    assert savepoints(email="ada.lovelace@example.com") == 1
    assert savepoints(phone="+442079460958") == 1


def test_update_keeping_its_own_phone_and_email_is_not_a_duplicate(api):
    contact = created(api, phone="+14155552671", email="ada@example.com")

    response = patch(api, contact["id"], phone="+1 (415) 555-2671", email="ADA@example.com", first_name="Ada")

    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Ada"


def test_the_same_phone_and_email_in_two_accounts_are_fine(api, other_api):
    mine = created(api, phone="+14155552671", email="ada@example.com")
    theirs = created(other_api, phone="+1 (415) 555-2671", email="ADA@example.com")

    assert theirs["id"] != mine["id"]
    assert theirs["phone"] == mine["phone"]
    assert theirs["email"] == mine["email"]


def test_a_cleared_phone_can_be_reused(api):
    first = created(api, phone="+14155552671", email="ada@example.com")
    assert patch(api, first["id"], phone=None).status_code == 200

    assert created(api, phone="+14155552671")["phone"] == "+14155552671"


# --- country ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "ada@example.com", "country": "US"}, "US"),
        ({"email": "ada@example.com", "country": "tr"}, "TR"),
        ({"email": "ada@example.com", "country": "gB"}, "GB"),
        ({"phone": "+14155552671", "country": "ca"}, "CA"),
        ({"email": "ada@example.com"}, None),
        ({"email": "ada@example.com", "country": None}, None),
    ],
)
def test_country_is_stored_upper_cased(api, fields, expected):
    contact = created(api, **fields)

    assert contact["country"] == expected
    assert stored(api, contact["id"])["country"] == expected


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+14155552671", "US"),
        ("+16135550123", "CA"),
        ("+442079460958", "GB"),
        ("+905321234567", "TR"),
        ("+80012345678", None),
    ],
)
def test_country_is_derived_from_the_phone_when_absent(api, phone, expected):
    contact = created(api, phone=phone)

    assert contact["phone"] == phone
    assert contact["country"] == expected


def test_country_is_derived_when_a_phone_is_added_to_a_contact_without_country(api):
    contact = created(api, email="ada@example.com")

    response = patch(api, contact["id"], phone="+442079460958")

    assert response.status_code == 200, response.content
    assert response.json()["country"] == "GB"


@pytest.mark.parametrize("country", ["XX", "ZZ", "UK", "USA", "U", "", "U1", 840, True, ["US"], {"code": "US"}])
def test_unknown_country_is_400(api, country):
    assert_invalid(create(api, email="ada@example.com", country=country), "country")


def test_unknown_country_on_update_is_400_and_changes_nothing(api):
    contact = created(api, email="ada@example.com", country="US")

    assert_invalid(patch(api, contact["id"], country="XX"), "country")

    assert stored(api, contact["id"])["country"] == "US"


# --- first_name, last_name -----------------------------------------------------


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ada", "Ada"),
        ("", ""),
        (None, ""),
        ("A" * 100, "A" * 100),
        ("é" * 100, "é" * 100),
        ("José Müller-Łukasiewicz", "José Müller-Łukasiewicz"),
    ],
)
def test_name_is_stored(api, field, value, expected):
    contact = created(api, email="ada@example.com", **{field: value})

    assert contact[field] == expected
    assert stored(api, contact["id"])[field] == expected


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("value", ["A" * 101, "é" * 101, 42, True, ["Ada"], {"name": "Ada"}])
def test_invalid_name_is_400(api, field, value):
    assert_invalid(create(api, email="ada@example.com", **{field: value}), field)


# --- lifecycle_stage ------------------------------------------------------------


@pytest.mark.parametrize("stage", ["lead", "customer", "churned", "a", "0", "x" * 32, "vip_tier-2", "-", "_"])
def test_lifecycle_stage_accepts_slugs(api, stage):
    contact = created(api, email="ada@example.com", lifecycle_stage=stage)

    assert contact["lifecycle_stage"] == stage
    assert stored(api, contact["id"])["lifecycle_stage"] == stage


@pytest.mark.parametrize(
    "stage",
    ["Customer", "LEAD", "", "x" * 33, "has space", "café", "lead!", "lead.won", "a/b", None, 5, True, ["lead"]],
)
def test_lifecycle_stage_that_is_not_a_slug_is_400(api, stage):
    assert_invalid(create(api, email="ada@example.com", lifecycle_stage=stage), "lifecycle_stage")


def test_bad_lifecycle_stage_on_update_is_400_and_changes_nothing(api):
    contact = created(api, email="ada@example.com", lifecycle_stage="customer")

    assert_invalid(patch(api, contact["id"], lifecycle_stage="Churned"), "lifecycle_stage")

    assert stored(api, contact["id"])["lifecycle_stage"] == "customer"


# --- tags ---------------------------------------------------------------------


def distinct_tags(count: int) -> list[str]:
    return [f"tag-{index}" for index in range(count)]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(["vip", "beta"], ["vip", "beta"], id="kept-in-order"),
        pytest.param([], [], id="empty"),
        pytest.param([" vip ", "\tbeta\n"], ["vip", "beta"], id="trimmed"),
        pytest.param(["vip", "beta", "vip"], ["vip", "beta"], id="duplicate-dropped"),
        pytest.param(["beta", "vip", "beta", "vip"], ["beta", "vip"], id="first-occurrence-kept"),
        pytest.param(["vip", "  vip"], ["vip"], id="duplicate-after-trimming"),
        pytest.param(["vip", "VIP", "Vip"], ["vip", "VIP", "Vip"], id="case-sensitive"),
        pytest.param(["x"], ["x"], id="one-character"),
        pytest.param(["x" * 64], ["x" * 64], id="64-characters"),
        pytest.param(["  " + "x" * 64 + " "], ["x" * 64], id="64-characters-after-trimming"),
        pytest.param(["é" * 64], ["é" * 64], id="64-unicode-characters"),
        pytest.param(["needs review", "a/b", "café", "日本", "50%"], ["needs review", "a/b", "café", "日本", "50%"]),
        pytest.param(distinct_tags(100), distinct_tags(100), id="100-tags"),
        pytest.param([*distinct_tags(100), "tag-0", "tag-99"], distinct_tags(100), id="100-after-dropping-duplicates"),
    ],
)
def test_tags_are_normalized(api, tags, expected):
    contact = created(api, email="ada@example.com", tags=tags)

    assert contact["tags"] == expected
    assert stored(api, contact["id"])["tags"] == expected


@pytest.mark.parametrize(
    ("tags", "attr"),
    [
        pytest.param(["vip", "x" * 65], "tags.1", id="65-characters"),
        pytest.param(["vip", "beta", ""], "tags.2", id="empty"),
        pytest.param(["vip", "   "], "tags.1", id="blank-after-trimming"),
        pytest.param(["vip", "beta", 7], "tags.2", id="integer"),
        pytest.param([True], "tags.0", id="boolean"),
        pytest.param(["vip", None], "tags.1", id="null"),
        pytest.param(["vip", ["beta"]], "tags.1", id="list"),
        pytest.param(["vip", {"name": "beta"}], "tags.1", id="object"),
        pytest.param(distinct_tags(101), "tags", id="101-tags"),
        pytest.param("vip", "tags", id="string"),
        pytest.param({"vip": True}, "tags", id="object-instead-of-list"),
        pytest.param(7, "tags", id="number-instead-of-list"),
    ],
)
def test_invalid_tags_are_400(api, tags, attr):
    assert_invalid(create(api, email="ada@example.com", tags=tags), attr)


def test_invalid_tags_on_update_are_400_and_change_nothing(api):
    contact = created(api, email="ada@example.com", tags=["vip"])

    assert_invalid(patch(api, contact["id"], tags=["beta", "x" * 65]), "tags.1")
    assert_invalid(patch(api, contact["id"], tags=distinct_tags(101)), "tags")

    assert stored(api, contact["id"])["tags"] == ["vip"]


# --- metadata -----------------------------------------------------------------


def metadata_with_keys(count: int) -> dict:
    return {f"key_{index}": index for index in range(count)}


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({}, id="empty"),
        pytest.param({"plan": "pro", "seats": 12}, id="flat"),
        pytest.param(
            {"nested": {"a": [1, 2, {"b": None}]}, "flag": False, "ratio": 0.25, "empty": "", "list": []},
            id="any-json-values",
        ),
        pytest.param({"k" * 40: 1, "k": 2}, id="key-lengths-1-and-40"),
        pytest.param({"ключ": "значение", "é" * 40: "ü"}, id="unicode"),
        pytest.param(metadata_with_keys(50), id="50-keys"),
        pytest.param({"blob": "x" * 7900}, id="under-8kb"),
    ],
)
def test_metadata_is_stored(api, metadata):
    contact = created(api, email="ada@example.com", metadata=metadata)

    assert contact["metadata"] == metadata
    assert stored(api, contact["id"])["metadata"] == metadata


@pytest.mark.parametrize(
    ("metadata", "attr"),
    [
        pytest.param([], "metadata", id="list"),
        pytest.param([["plan", "pro"]], "metadata", id="list-of-pairs"),
        pytest.param("plan=pro", "metadata", id="string"),
        pytest.param(12, "metadata", id="number"),
        pytest.param(True, "metadata", id="boolean"),
        pytest.param(None, "metadata", id="null"),
        pytest.param(metadata_with_keys(51), "metadata", id="51-keys"),
        pytest.param({"blob": "x" * 8300}, "metadata", id="over-8kb"),
        pytest.param({"blob": "€" * 3000}, "metadata", id="over-8kb-in-utf8-bytes"),
        pytest.param({"a": "x" * 3000, "b": "y" * 3000, "c": "z" * 3000}, "metadata", id="over-8kb-across-keys"),
        pytest.param({"ok": 1, "k" * 41: 1}, "metadata." + "k" * 41, id="41-character-key"),
        pytest.param({"ok": 1, "": 1}, "metadata", id="empty-key"),
    ],
)
def test_invalid_metadata_is_400(api, metadata, attr):
    assert_invalid(create(api, email="ada@example.com", metadata=metadata), attr)


def test_bad_metadata_key_on_update_is_400_and_changes_nothing(api):
    contact = created(api, email="ada@example.com", metadata={"plan": "pro"})

    assert_invalid(patch(api, contact["id"], metadata={"region": "eu", "r" * 41: 1}), "metadata." + "r" * 41)

    assert stored(api, contact["id"])["metadata"] == {"plan": "pro"}


# --- preferences --------------------------------------------------------------


def test_preferences_of_a_new_contact_are_all_unset(api):
    contact = created(api, phone="+14155552671")

    assert contact["preferences"] == {
        "sms": "unset",
        "whatsapp": "unset",
        "email": "unset",
        "rcs": "unset",
        "viber": "unset",
        "voice": "unset",
    }
    assert stored(api, contact["id"])["preferences"] == contact["preferences"]


# --- read-only and unknown fields ----------------------------------------------


def test_read_only_fields_are_ignored_on_create(api):
    contact = created(
        api,
        id="con_chosenByClient00",
        phone="+14155552671",
        created_at="2000-01-01T00:00:00Z",
        updated_at="2000-01-01T00:00:00Z",
        preferences={"sms": "opted_in", "email": "opted_out"},
    )

    assert contact["id"] != "con_chosenByClient00"
    assert not contact["created_at"].startswith("2000-")
    assert not contact["updated_at"].startswith("2000-")
    assert contact["preferences"] == dict.fromkeys(CHANNELS, "unset")
    assert api.get(f"{CONTACTS}/con_chosenByClient00").status_code == 404


def test_read_only_fields_are_ignored_on_update(api):
    contact = created(api, phone="+14155552671")

    response = patch(
        api,
        contact["id"],
        id="con_chosenByClient00",
        created_at="2000-01-01T00:00:00Z",
        updated_at="2000-01-01T00:00:00Z",
        preferences={"sms": "opted_in"},
        first_name="Ada",
    )

    assert response.status_code == 200, response.content
    assert response.json()["id"] == contact["id"]
    assert response.json()["created_at"] == contact["created_at"]
    assert response.json()["preferences"] == dict.fromkeys(CHANNELS, "unset")
    assert response.json()["first_name"] == "Ada"


@pytest.mark.parametrize(
    "field", ["fist_name", "firstName", "phone_number", "Email", "account", "search_vector", "phone_digits", "tag"]
)
def test_unknown_field_on_create_is_400_naming_it(api, field):
    assert_invalid(create(api, email="ada@example.com", **{field: "x"}), field)

    assert api.get(CONTACTS).json()["data"] == []


def test_every_unknown_field_is_named(api):
    response = create(api, email="ada@example.com", fist_name="Ada", lastname="Lovelace")

    assert_error(response, 400, "validation_error", ["fist_name", "lastname"])


def test_unknown_field_on_update_is_400_and_changes_nothing(api):
    contact = created(api, email="ada@example.com", first_name="Ada")

    assert_invalid(patch(api, contact["id"], fist_name="Grace"), "fist_name")
    response = api.put(f"{CONTACTS}/{contact['id']}", {"first_name": "Grace", "nickname": "G"}, format="json")
    assert_invalid(response, "nickname")

    assert stored(api, contact["id"]) == contact
