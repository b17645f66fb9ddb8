"""The contact endpoints of API.md §4: create, read, update, delete, tags; and 401/404/405 of §1 and §2."""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create, api_key_revoke
from contacts.models import Contact
from contacts_project.testing import assert_error, assert_invalid

CONTACTS = "/v1/contacts"
UNKNOWN_ID = "con_doesNotExist0000"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
ADA = {
    "phone": "+1 (415) 555-2671",
    "email": "Ada@Example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "lifecycle_stage": "customer",
    "tags": ["vip", "beta"],
    "metadata": {"plan": "pro", "seats": 12},
}


def detail_url(contact_id: str) -> str:
    return f"{CONTACTS}/{contact_id}"


def tags_url(contact_id: str) -> str:
    return f"{CONTACTS}/{contact_id}/tags"


def tag_url(contact_id: str, tag: str) -> str:
    return f"{CONTACTS}/{contact_id}/tags/{quote(tag, safe='')}"


def created(api, **fields) -> dict:
    response = api.post(CONTACTS, fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored(api, contact_id) -> dict:
    response = api.get(detail_url(contact_id))
    assert response.status_code == 200, response.content
    return response.json()


def update(api, method, contact_id, body):
    return getattr(api, method)(detail_url(contact_id), body, format="json")


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def backdate(api, contact_id) -> dict:
    """Move ``updated_at`` into the past, so a change shows as a later timestamp (no sleeping); return the contact."""
    Contact.objects.filter(pk=contact_id).update(updated_at=LONG_AGO)
    contact = stored(api, contact_id)
    assert parse_time(contact["updated_at"]) == LONG_AGO
    return contact


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tag_names(count: int, prefix: str = "tag") -> list[str]:
    return [f"{prefix}-{index}" for index in range(count)]


# Both PUT and PATCH are partial updates (API.md §4).
update_methods = pytest.mark.parametrize("method", ["put", "patch"])


# --- create and read ----------------------------------------------------------


def test_create_returns_201_and_the_contact(api):
    response = api.post(CONTACTS, ADA, format="json")

    assert response.status_code == 201, response.content
    contact = response.json()
    assert contact == {
        "id": contact["id"],
        "phone": "+14155552671",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "US",
        "lifecycle_stage": "customer",
        "tags": ["vip", "beta"],
        "metadata": {"plan": "pro", "seats": 12},
        "preferences": {
            "sms": "unset",
            "whatsapp": "unset",
            "email": "unset",
            "rcs": "unset",
            "viber": "unset",
            "voice": "unset",
        },
        "created_at": contact["created_at"],
        "updated_at": contact["created_at"],
    }
    assert contact["id"].startswith("con_")


def test_get_returns_the_contact_as_created(api):
    contact = created(api, **ADA)

    assert stored(api, contact["id"]) == contact


@pytest.mark.parametrize("body", [["+14155552671"], "+14155552671", 5, True])
def test_a_body_that_is_not_an_object_is_400(api, make_contact, body):
    contact = make_contact(email="ada@example.com")

    # An error about the body as a whole names no input: attr is null (API.md §2).
    assert_invalid(api.post(CONTACTS, body, format="json"), None)
    assert_invalid(api.patch(detail_url(contact.id), body, format="json"), None)
    assert_invalid(api.put(detail_url(contact.id), body, format="json"), None)
    assert_invalid(api.post(tags_url(contact.id), body, format="json"), None)


# --- update (PUT and PATCH) -----------------------------------------------------


@update_methods
def test_update_changes_only_the_fields_sent(api, method):
    contact = created(api, **ADA)

    response = update(api, method, contact["id"], {"first_name": "Augusta"})

    assert ok(response) == {**contact, "first_name": "Augusta", "updated_at": response.json()["updated_at"]}
    assert stored(api, contact["id"]) == response.json()


@update_methods
def test_update_with_an_empty_body_changes_nothing(api, method):
    contact = created(api, **ADA)

    assert ok(update(api, method, contact["id"], {})) == contact
    assert stored(api, contact["id"]) == contact


@update_methods
def test_update_every_writable_field(api, method):
    contact = created(api, **ADA)

    response = update(
        api,
        method,
        contact["id"],
        {
            "phone": "+44 20 7946 0958",
            "email": "Grace@Example.org",
            "first_name": "Grace",
            "last_name": "Hopper",
            "country": "gb",
            "lifecycle_stage": "churned",
            "tags": ["navy"],
            "metadata": {"rank": "admiral"},
        },
    )

    body = ok(response)
    assert body["phone"] == "+442079460958"
    assert body["email"] == "grace@example.org"
    assert body["first_name"] == "Grace"
    assert body["last_name"] == "Hopper"
    assert body["country"] == "GB"
    assert body["lifecycle_stage"] == "churned"
    assert body["tags"] == ["navy"]
    assert body["metadata"] == {"plan": "pro", "seats": 12, "rank": "admiral"}
    assert stored(api, contact["id"]) == body


@update_methods
@pytest.mark.parametrize(
    ("field", "sent", "cleared"),
    [
        ("phone", None, None),
        ("email", None, None),
        ("country", None, None),
        ("first_name", None, ""),
        ("last_name", None, ""),
        ("first_name", "", ""),
        ("last_name", "", ""),
    ],
)
def test_update_clears_the_field(api, method, field, sent, cleared):
    contact = created(api, **ADA)

    body = ok(update(api, method, contact["id"], {field: sent}))

    assert body[field] == cleared
    assert body == {**contact, field: cleared, "updated_at": body["updated_at"]}
    assert stored(api, contact["id"])[field] == cleared


@update_methods
def test_metadata_is_merged_shallowly_and_null_removes_a_key(api, method):
    contact = created(
        api, email="ada@example.com", metadata={"plan": "pro", "seats": 12, "address": {"city": "London", "zip": "N1"}}
    )

    body = ok(
        update(
            api,
            method,
            contact["id"],
            {"metadata": {"seats": 13, "plan": None, "region": "eu", "address": {"city": "Paris"}, "absent": None}},
        )
    )

    expected = {"seats": 13, "region": "eu", "address": {"city": "Paris"}}
    assert body["metadata"] == expected
    assert stored(api, contact["id"])["metadata"] == expected


@update_methods
def test_metadata_with_an_empty_object_changes_nothing(api, method):
    contact = created(api, email="ada@example.com", metadata={"plan": "pro"})

    assert ok(update(api, method, contact["id"], {"metadata": {}}))["metadata"] == {"plan": "pro"}


@update_methods
def test_metadata_may_reach_50_keys_by_merging(api, method):
    contact = created(api, email="ada@example.com", metadata={f"old_{index}": index for index in range(30)})

    body = ok(update(api, method, contact["id"], {"metadata": {f"new_{index}": index for index in range(20)}}))

    assert len(body["metadata"]) == 50


@update_methods
def test_metadata_may_swap_keys_while_at_50(api, method):
    contact = created(api, email="ada@example.com", metadata={f"old_{index}": index for index in range(50)})

    body = ok(update(api, method, contact["id"], {"metadata": {"old_0": None, "new": 1}}))

    assert len(body["metadata"]) == 50
    assert "old_0" not in body["metadata"]
    assert body["metadata"]["new"] == 1


@update_methods
def test_merged_metadata_over_50_keys_is_400_and_changes_nothing(api, method):
    contact = created(api, email="ada@example.com", metadata={f"old_{index}": index for index in range(30)})
    before = backdate(api, contact["id"])

    response = update(
        api,
        method,
        contact["id"],
        {"first_name": "Grace", "metadata": {f"new_{index}": index for index in range(21)}},
    )

    assert_invalid(response, "metadata")
    assert stored(api, contact["id"]) == before


@update_methods
def test_metadata_may_replace_a_large_value_within_8kb(api, method):
    contact = created(api, email="ada@example.com", metadata={"a": "x" * 5000})

    body = ok(update(api, method, contact["id"], {"metadata": {"a": None, "b": "y" * 5000}}))

    assert body["metadata"] == {"b": "y" * 5000}


@update_methods
def test_merged_metadata_over_8kb_is_400_and_changes_nothing(api, method):
    contact = created(api, email="ada@example.com", metadata={"a": "x" * 5000})

    response = update(api, method, contact["id"], {"first_name": "Grace", "metadata": {"b": "y" * 5000}})

    assert_invalid(response, "metadata")
    assert stored(api, contact["id"]) == contact


@update_methods
@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["gamma"], ["gamma"]),
        (["beta", "vip"], ["beta", "vip"]),
        (["new", " new ", "vip"], ["new", "vip"]),
        ([], []),
    ],
)
def test_tags_on_update_replace_the_tag_set(api, method, tags, expected):
    contact = created(api, email="ada@example.com", tags=["vip", "beta"])

    assert ok(update(api, method, contact["id"], {"tags": tags}))["tags"] == expected
    assert stored(api, contact["id"])["tags"] == expected


@update_methods
def test_update_advances_updated_at_and_keeps_created_at(api, method):
    contact = created(api, **ADA)
    backdate(api, contact["id"])

    body = ok(update(api, method, contact["id"], {"last_name": "King"}))

    assert parse_time(body["updated_at"]) > LONG_AGO
    assert body["created_at"] == contact["created_at"]
    assert stored(api, contact["id"])["updated_at"] == body["updated_at"]


@pytest.mark.django_db(transaction=True)
def test_updated_at_advances_across_committed_requests(api):
    """Without backdating: each request commits, so the database clock has moved on."""
    contact = created(api, phone="+14155552671")

    body = ok(api.patch(detail_url(contact["id"]), {"first_name": "Ada"}, format="json"))

    assert parse_time(body["updated_at"]) > parse_time(contact["updated_at"])
    assert body["created_at"] == contact["created_at"]


@update_methods
@pytest.mark.parametrize(
    "read_only",
    [
        {"id": "con_chosenByClient00"},
        {"created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"},
        {"created_at": "not a time", "updated_at": 12},
        {"preferences": {"sms": "opted_in", "email": "opted_out"}},
        {"preferences": "nonsense"},
    ],
)
def test_read_only_fields_are_ignored_on_update(api, method, read_only):
    contact = created(api, **ADA)

    assert ok(update(api, method, contact["id"], read_only)) == contact
    assert stored(api, contact["id"]) == contact


@update_methods
def test_a_read_object_can_be_sent_back_unchanged(api, method):
    contact = created(api, **ADA)

    assert ok(update(api, method, contact["id"], contact)) == contact


@update_methods
def test_a_read_object_can_be_sent_back_with_a_change(api, method):
    contact = created(api, **ADA)

    body = ok(update(api, method, contact["id"], {**contact, "lifecycle_stage": "churned"}))

    assert body == {**contact, "lifecycle_stage": "churned", "updated_at": body["updated_at"]}


# --- delete -------------------------------------------------------------------


def test_delete_returns_204_then_the_contact_is_gone(api):
    contact = created(api, **ADA)
    kept = created(api, email="grace@example.com")

    response = api.delete(detail_url(contact["id"]))

    assert response.status_code == 204
    assert response.content == b""
    assert_error(api.get(detail_url(contact["id"])), 404, "client_error", [None], code="not_found")
    assert_error(api.delete(detail_url(contact["id"])), 404, "client_error", [None], code="not_found")
    assert [row["id"] for row in api.get(CONTACTS).json()["data"]] == [kept["id"]]


def test_phone_and_email_of_a_deleted_contact_can_be_reused(api):
    contact = created(api, phone="+14155552671", email="ada@example.com")
    assert api.delete(detail_url(contact["id"])).status_code == 204

    again = created(api, phone="+14155552671", email="ada@example.com")

    assert again["id"] != contact["id"]


# --- POST /v1/contacts/{id}/tags ---------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "added", "expected"),
    [
        (["vip", "beta"], ["gamma"], ["vip", "beta", "gamma"]),
        (["vip", "beta"], ["gamma", "vip", "alpha"], ["vip", "beta", "gamma", "alpha"]),
        (["vip", "beta"], ["beta", "vip"], ["vip", "beta"]),
        (["vip"], ["VIP"], ["vip", "VIP"]),
        (["vip"], [" new ", "new", "other"], ["vip", "new", "other"]),
        ([], ["first"], ["first"]),
        (tag_names(99), ["last", "tag-0"], [*tag_names(99), "last"]),
        (tag_names(100), ["tag-5", "tag-99"], tag_names(100)),
    ],
)
def test_add_tags_appends_those_not_present(api, existing, added, expected):
    contact = created(api, email="ada@example.com", tags=existing)

    response = api.post(tags_url(contact["id"]), {"tags": added}, format="json")

    body = ok(response)
    assert body == {**contact, "tags": expected, "updated_at": body["updated_at"]}
    assert stored(api, contact["id"])["tags"] == expected


def test_add_tags_advances_updated_at(api):
    contact = created(api, email="ada@example.com", tags=["vip"])
    backdate(api, contact["id"])

    body = ok(api.post(tags_url(contact["id"]), {"tags": ["beta"]}, format="json"))

    assert parse_time(body["updated_at"]) > LONG_AGO


@pytest.mark.parametrize(
    ("existing", "added"),
    [
        (tag_names(100), ["one-more"]),
        (tag_names(99), ["one-more", "two-more"]),
        (tag_names(60), tag_names(41, prefix="new")),
        ([], tag_names(101)),
    ],
)
def test_add_tags_beyond_100_is_400_and_changes_nothing(api, existing, added):
    contact = created(api, email="ada@example.com", tags=existing)
    before = backdate(api, contact["id"])

    assert_invalid(api.post(tags_url(contact["id"]), {"tags": added}, format="json"), "tags")

    assert stored(api, contact["id"]) == before


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        pytest.param({"tags": []}, "tags", id="empty-list"),
        pytest.param({}, "tags", id="missing"),
        pytest.param({"tags": None}, "tags", id="null"),
        pytest.param({"tags": "vip"}, "tags", id="string"),
        pytest.param({"tags": ["ok", ""]}, "tags.1", id="empty-tag"),
        pytest.param({"tags": ["ok", "  "]}, "tags.1", id="blank-tag"),
        pytest.param({"tags": ["ok", "fine", "x" * 65]}, "tags.2", id="65-characters"),
        pytest.param({"tags": [3]}, "tags.0", id="integer"),
        pytest.param({"tags": ["ok", None]}, "tags.1", id="null-tag"),
        pytest.param({"tags": ["ok"], "tag": "vip"}, "tag", id="unknown-field"),
    ],
)
def test_add_tags_with_bad_input_is_400_and_changes_nothing(api, body, attr):
    contact = created(api, email="ada@example.com", tags=["vip"])

    assert_invalid(api.post(tags_url(contact["id"]), body, format="json"), attr)

    assert stored(api, contact["id"]) == contact


# --- DELETE /v1/contacts/{id}/tags/{tag} ----------------------------------------------


@pytest.mark.parametrize(
    "tag",
    ["vip", "needs review", "a/b", "café", "日本語", "50%", "#1", "a+b", "what?", "x&y=z", "x" * 64],
)
def test_remove_tag_takes_the_url_encoded_tag(api, tag):
    contact = created(api, email="ada@example.com", tags=["keep", tag, "also-keep"])

    body = ok(api.delete(tag_url(contact["id"], tag)))

    assert body == {**contact, "tags": ["keep", "also-keep"], "updated_at": body["updated_at"]}
    assert stored(api, contact["id"])["tags"] == ["keep", "also-keep"]


def test_remove_tag_advances_updated_at(api):
    contact = created(api, email="ada@example.com", tags=["vip"])
    backdate(api, contact["id"])

    body = ok(api.delete(tag_url(contact["id"], "vip")))

    assert body["tags"] == []
    assert parse_time(body["updated_at"]) > LONG_AGO


@pytest.mark.parametrize("tag", ["absent", "VIP", "vi", "vip-", "a/b"])
def test_remove_an_absent_tag_is_200_and_changes_nothing(api, tag):
    contact = created(api, email="ada@example.com", tags=["vip", "a"])
    unchanged = backdate(api, contact["id"])

    assert ok(api.delete(tag_url(contact["id"], tag))) == unchanged
    assert stored(api, contact["id"]) == unchanged


def test_remove_tag_from_a_contact_without_tags_is_200(api):
    contact = created(api, email="ada@example.com")

    assert ok(api.delete(tag_url(contact["id"], "vip")))["tags"] == []


# --- 404: unknown ids and ids of another account --------------------------------------


DETAIL_REQUESTS = [
    pytest.param("get", "{}", None, id="get"),
    pytest.param("put", "{}", {"first_name": "Eve"}, id="put"),
    pytest.param("patch", "{}", {"first_name": "Eve"}, id="patch"),
    pytest.param("delete", "{}", None, id="delete"),
    pytest.param("post", "{}/tags", {"tags": ["eve"]}, id="add-tags"),
    pytest.param("delete", "{}/tags/vip", None, id="remove-tag"),
]


def request(client, method, path, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "path", "body"), DETAIL_REQUESTS)
@pytest.mark.parametrize("contact_id", [UNKNOWN_ID, "con_", "con_x", "con_" + "a" * 200])
def test_unknown_id_is_404(api, method, path, body, contact_id):
    response = request(api, method, f"{CONTACTS}/{path.format(contact_id)}", body)

    assert_error(response, 404, "client_error", [None], code="not_found")


@pytest.mark.parametrize(("method", "path", "body"), DETAIL_REQUESTS)
@pytest.mark.parametrize("contact_id", ["lst_abcdefghijklmnop", "abc", "123"])
def test_id_of_another_kind_is_404(api, method, path, body, contact_id):
    response = request(api, method, f"{CONTACTS}/{path.format(contact_id)}", body)

    assert_error(response, 404, "client_error", [None])


@pytest.mark.parametrize(("method", "path", "body"), DETAIL_REQUESTS)
def test_contact_of_another_account_is_404_and_untouched(api, other_api, method, path, body):
    theirs = created(other_api, email="eve@example.com", tags=["vip"])

    response = request(api, method, f"{CONTACTS}/{path.format(theirs['id'])}", body)

    assert_error(response, 404, "client_error", [None], code="not_found")
    assert stored(other_api, theirs["id"]) == theirs


def test_bad_body_for_an_unknown_id_is_still_404(api):
    response = api.patch(detail_url(UNKNOWN_ID), {"phone": "nonsense"}, format="json")

    assert_error(response, 404, "client_error", [None], code="not_found")


# --- 401 ------------------------------------------------------------------------


ALL_REQUESTS = [
    pytest.param("get", "", None, id="list"),
    pytest.param("post", "", {"email": "eve@example.com"}, id="create"),
    *DETAIL_REQUESTS,
]


def client_with(authorization: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def assert_unauthorized(response):
    assert_error(response, 401, "client_error", [None])


@pytest.mark.parametrize(("method", "path", "body"), ALL_REQUESTS)
def test_no_key_is_401(anonymous_api, make_contact, method, path, body):
    contact = make_contact(email="ada@example.com", tags=["vip"])

    response = request(anonymous_api, method, f"{CONTACTS}/{path.format(contact.id)}".rstrip("/"), body)

    assert_unauthorized(response)
    assert Contact.objects.count() == 1
    assert Contact.objects.get().tags == ["vip"]


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer not-a-key", id="malformed"),
        pytest.param("Bearer ", id="empty"),
        pytest.param("Bearer", id="keyword-only"),
        pytest.param("Bearer ck_abcdefghijkl_" + "x" * 40, id="unknown"),
        pytest.param("Basic YWRhOmxvdmVsYWNl", id="other-scheme"),
        pytest.param("ck_abcdefghijkl_xyz", id="no-scheme"),
        pytest.param("Bearer ünïcode", id="non-ascii"),
    ],
)
def test_bad_key_is_401(db, authorization):
    assert_unauthorized(client_with(authorization).get(CONTACTS))


def test_key_with_a_tampered_secret_is_401(api):
    tampered = api.raw_key[:-1] + ("A" if api.raw_key[-1] != "A" else "B")

    assert_unauthorized(client_with(f"Bearer {tampered}").get(CONTACTS))


def test_revoked_key_is_401(account, make_contact):
    contact = make_contact(email="ada@example.com")
    api_key, raw_key = api_key_create(account=account, name="soon revoked")
    client = client_with(f"Bearer {raw_key}")
    assert client.get(detail_url(contact.id)).status_code == 200

    api_key_revoke(api_key=api_key)

    assert_unauthorized(client.get(detail_url(contact.id)))
    assert_unauthorized(client.get(CONTACTS))
    assert_unauthorized(client.post(CONTACTS, {"email": "eve@example.com"}, format="json"))
    assert_unauthorized(client.delete(detail_url(contact.id)))
    assert list(Contact.objects.values_list("id", flat=True)) == [contact.id]


def test_revoking_one_key_leaves_the_accounts_other_keys_working(api, account):
    api_key, _ = api_key_create(account=account, name="other")

    api_key_revoke(api_key=api_key)

    assert api.get(CONTACTS).status_code == 200


# --- 405 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", ""),
        ("put", ""),
        ("patch", ""),
        ("post", "/{}"),
        ("get", "/{}/tags"),
        ("put", "/{}/tags"),
        ("delete", "/{}/tags"),
        ("get", "/{}/tags/vip"),
        ("post", "/{}/tags/vip"),
    ],
)
def test_method_not_allowed_is_405(api, make_contact, method, path):
    contact = make_contact(email="ada@example.com", tags=["vip"])

    response = getattr(api, method)(CONTACTS + path.format(contact.id))

    assert_error(response, 405, "client_error", [None], code="method_not_allowed")
    assert stored(api, contact.id)["tags"] == ["vip"]
