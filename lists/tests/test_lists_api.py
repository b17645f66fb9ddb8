"""The list endpoints of API.md §7, the ``list`` filter of §4, errors of §2 and pagination of §3."""

import datetime

import pytest
from django.db import transaction

from contacts.models import Contact
from contacts_project.testing import assert_error, assert_invalid, assert_not_found
from lists.models import ContactList, ListMembership

LISTS = "/v1/contacts/lists"
CONTACTS = "/v1/contacts"
UNKNOWN_LIST_ID = "lst_AAAAAAAAAAAAAAAA"
UNKNOWN_CONTACT_ID = "con_AAAAAAAAAAAAAAAA"
LIST_FIELDS = {"id", "name", "description", "member_count", "created_at", "updated_at"}
BASE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# --- helpers -----------------------------------------------------------------


def list_url(list_id):
    return f"{LISTS}/{list_id}"


def members_url(list_id):
    return f"{LISTS}/{list_id}/members"


def member_url(list_id, contact_id):
    return f"{LISTS}/{list_id}/members/{contact_id}"


def create_list(api, name="Newsletter", **fields):
    response = api.post(LISTS, {"name": name, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def add_members(api, list_id, contact_ids):
    return api.post(members_url(list_id), {"contact_ids": contact_ids}, format="json")


def add_members_body(api, list_id, body):
    return api.post(members_url(list_id), body, format="json")


def added(api, list_id, contact_ids):
    response = add_members(api, list_id, contact_ids)
    assert response.status_code == 200, response.content
    return response.json()


def make_contacts(make_contact, count, prefix="c", account=None, **fields):
    extra = {} if account is None else {"account": account}
    return [make_contact(email=f"{prefix}{i}@example.com", **extra, **fields) for i in range(count)]


def stored_members(list_id):
    return set(ListMembership.objects.filter(contact_list_id=list_id).values_list("contact_id", flat=True))


def member_count(list_id):
    return ContactList.objects.get(pk=list_id).member_count


def assert_count_is_exact(list_id, expected):
    assert member_count(list_id) == expected
    assert ListMembership.objects.filter(contact_list_id=list_id).count() == expected


def ids(response):
    return [item["id"] for item in response.json()["data"]]


def walk(api, path, limit, params=None):
    """Follow next_cursor to the end; every id in the order served."""
    seen = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        response = api.get(path, query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"data", "next_cursor", "has_more"}
        assert len(body["data"]) <= limit
        assert (body["next_cursor"] is None) == (body["has_more"] is False)
        seen += [item["id"] for item in body["data"]]
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]
    raise AssertionError("pagination does not terminate")


def set_created_at(list_id, when):
    ContactList.objects.filter(pk=list_id).update(created_at=when)


# --- create ------------------------------------------------------------------


def test_create_returns_201_with_the_list(api, account):
    response = api.post(LISTS, {"name": "Newsletter", "description": "Monthly news"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == LIST_FIELDS
    assert body["id"].startswith("lst_")
    assert len(body["id"]) > len("lst_")
    assert body["name"] == "Newsletter"
    assert body["description"] == "Monthly news"
    assert body["member_count"] == 0
    assert body["created_at"].endswith("Z")
    assert body["updated_at"].endswith("Z")
    stored = ContactList.objects.get(pk=body["id"])
    assert stored.account_id == account.id
    assert (stored.name, stored.description, stored.member_count) == ("Newsletter", "Monthly news", 0)


def test_create_without_description_stores_an_empty_one(api):
    body = create_list(api, "Newsletter")

    assert body["description"] == ""
    assert ContactList.objects.get(pk=body["id"]).description == ""


@pytest.mark.parametrize(
    ("name", "description"),
    [("N", ""), ("N" * 100, ""), ("Newsletter", "d" * 1000), ("Ünïcode ✓", "é" * 1000)],
)
def test_create_accepts_names_of_1_to_100_and_descriptions_up_to_1000_characters(api, name, description):
    body = create_list(api, name, description=description)

    assert (body["name"], body["description"]) == (name, description)
    stored = ContactList.objects.get(pk=body["id"])
    assert (stored.name, stored.description) == (name, description)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"description": "no name"},
        {"name": ""},
        {"name": "N" * 101},
        {"name": None},
        {"name": 12},
        {"name": True},
        {"name": ["Newsletter"]},
        {"name": {"text": "Newsletter"}},
    ],
)
def test_create_rejects_a_bad_name(api, body):
    assert_invalid(api.post(LISTS, body, format="json"), "name")
    assert ContactList.objects.count() == 0


@pytest.mark.parametrize("description", ["d" * 1001, 12, False, ["text"], {"text": "x"}])
def test_create_rejects_a_bad_description(api, description):
    response = api.post(LISTS, {"name": "Newsletter", "description": description}, format="json")

    assert_invalid(response, "description")
    assert ContactList.objects.count() == 0


@pytest.mark.parametrize("field", ["nmae", "members", "contact_ids", "account"])
def test_create_rejects_an_unknown_field_naming_it(api, field):
    response = api.post(LISTS, {"name": "Newsletter", field: "x"}, format="json")

    assert_invalid(response, field)
    assert ContactList.objects.count() == 0


@pytest.mark.parametrize("body", [[], ["Newsletter"], "Newsletter", 12])
def test_create_with_a_body_that_is_not_an_object_is_400(api, body):
    response = api.post(LISTS, body, format="json")

    assert_invalid(response, None)
    assert ContactList.objects.count() == 0


def test_create_ignores_read_only_fields(api):
    sent = {
        "name": "Newsletter",
        "id": "lst_chosenByClient0",
        "member_count": 99,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
    }

    body = create_list(api, **sent)

    assert body["id"] != "lst_chosenByClient0"
    assert body["member_count"] == 0
    assert not body["created_at"].startswith("2000")
    assert not ContactList.objects.filter(pk="lst_chosenByClient0").exists()


# --- name uniqueness -----------------------------------------------------------


@pytest.mark.parametrize("clash", ["Newsletter", "newsletter", "NEWSLETTER", "nEwSlEtTeR"])
def test_name_is_unique_per_account_ignoring_case(api, account, clash):
    existing = create_list(api, "Newsletter")

    response = api.post(LISTS, {"name": clash}, format="json")

    error = assert_error(response, 409, "client_error", ["name"], code="duplicate")
    assert existing["id"] in error["detail"]
    assert list(ContactList.objects.for_account(account).values_list("id", flat=True)) == [existing["id"]]


def test_same_name_in_another_account_is_fine(api, other_api, account, other_account):
    theirs = create_list(other_api, "Newsletter")

    mine = api.post(LISTS, {"name": "NEWSLETTER"}, format="json")

    assert mine.status_code == 201, mine.content
    assert theirs["id"].encode() not in mine.content
    assert ContactList.objects.get(pk=mine.json()["id"]).account_id == account.id
    assert ContactList.objects.get(pk=theirs["id"]).account_id == other_account.id


@pytest.mark.parametrize("method", ["put", "patch"])
def test_renaming_to_a_taken_name_is_409_naming_its_holder(api, method):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos", description="Deals")

    response = getattr(api, method)(list_url(promos["id"]), {"name": "NewsLetter"}, format="json")

    error = assert_error(response, 409, "client_error", ["name"], code="duplicate")
    assert newsletter["id"] in error["detail"]
    stored = ContactList.objects.get(pk=promos["id"])
    assert (stored.name, stored.description) == ("Promos", "Deals")


def test_renaming_a_list_to_its_own_name_in_another_case_is_allowed(api):
    newsletter = create_list(api, "Newsletter")

    response = api.patch(list_url(newsletter["id"]), {"name": "NEWSLETTER"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "NEWSLETTER"
    assert ContactList.objects.get(pk=newsletter["id"]).name == "NEWSLETTER"


def test_a_freed_name_can_be_taken_again(api):
    newsletter = create_list(api, "Newsletter")
    assert api.delete(list_url(newsletter["id"])).status_code == 204

    again = create_list(api, "newsletter")

    assert again["id"] != newsletter["id"]


# --- list --------------------------------------------------------------------


def test_list_is_newest_first_and_walks_every_list_once(api, other_api):
    created = [create_list(api, f"List {i}")["id"] for i in range(7)]
    # Distinct creation times in an order unrelated to the ids or the insert order.
    order = [3, 0, 6, 1, 5, 2, 4]
    for rank, index in enumerate(order):
        set_created_at(created[index], BASE + datetime.timedelta(minutes=rank))
    create_list(other_api, "Theirs")
    expected = [created[index] for index in reversed(order)]

    assert walk(api, LISTS, 2) == expected
    assert walk(api, LISTS, 3) == expected
    assert ids(api.get(LISTS)) == expected


def test_list_breaks_created_at_ties_by_id_descending(api):
    created = [create_list(api, f"List {i}")["id"] for i in range(5)]
    ContactList.objects.filter(pk__in=created).update(created_at=BASE)

    assert walk(api, LISTS, 2) == sorted(created, reverse=True)


def test_list_items_are_full_list_objects(api, make_contact):
    newsletter = create_list(api, "Newsletter", description="Monthly")
    added(api, newsletter["id"], [contact.id for contact in make_contacts(make_contact, 2)])

    response = api.get(LISTS)

    assert response.status_code == 200
    assert response.json()["data"] == [api.get(list_url(newsletter["id"])).json()]
    assert response.json()["data"][0]["member_count"] == 2
    assert response.json()["has_more"] is False
    assert response.json()["next_cursor"] is None


def test_list_default_page_is_20(api):
    with transaction.atomic():
        for i in range(21):
            create_list(api, f"List {i}")

    body = api.get(LISTS).json()

    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)


@pytest.mark.parametrize("limit", ["1", "100"])
def test_list_accepts_limits_1_and_100(api, limit):
    for i in range(2):
        create_list(api, f"List {i}")

    response = api.get(LISTS, {"limit": limit})

    assert response.status_code == 200
    assert len(response.json()["data"]) == min(int(limit), 2)


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", ""])
def test_list_rejects_a_bad_limit(api, limit):
    create_list(api)

    assert_invalid(api.get(LISTS, {"limit": limit}), "limit")


def test_list_rejects_a_malformed_or_tampered_cursor(api):
    for i in range(3):
        create_list(api, f"List {i}")
    cursor = api.get(LISTS, {"limit": 1}).json()["next_cursor"]
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")

    for bad in ["junk", "", tampered, cursor[1:]]:
        assert_invalid(api.get(LISTS, {"cursor": bad}), "cursor")


def test_list_shows_no_list_of_another_account(api, other_api):
    mine = create_list(api, "Mine")
    create_list(other_api, "Theirs")

    assert ids(api.get(LISTS)) == [mine["id"]]


def test_list_runs_a_constant_number_of_queries_whatever_the_page_size(api, django_assert_num_queries, hot_api_key):
    with transaction.atomic():
        for i in range(30):
            create_list(api, f"List {i}")
    api.get(LISTS, {"limit": 1})  # warm-up

    with django_assert_num_queries(1):
        small = api.get(LISTS, {"limit": 2})
    with django_assert_num_queries(1):
        large = api.get(LISTS, {"limit": 25})
    with django_assert_num_queries(1):
        deep = api.get(LISTS, {"limit": 25, "cursor": small.json()["next_cursor"]})

    assert len(small.json()["data"]) == 2
    assert len(large.json()["data"]) == 25
    assert len(deep.json()["data"]) == 25


# --- get, update, delete -------------------------------------------------------


def test_get_returns_the_list(api):
    newsletter = create_list(api, "Newsletter", description="Monthly")

    response = api.get(list_url(newsletter["id"]))

    assert response.status_code == 200
    assert response.json() == newsletter


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_is_partial(api, method):
    newsletter = create_list(api, "Newsletter", description="Monthly")
    url = list_url(newsletter["id"])

    renamed = getattr(api, method)(url, {"name": "News"}, format="json")
    described = getattr(api, method)(url, {"description": "Weekly"}, format="json")

    assert renamed.status_code == 200, renamed.content
    assert (renamed.json()["name"], renamed.json()["description"]) == ("News", "Monthly")
    assert described.status_code == 200, described.content
    assert (described.json()["name"], described.json()["description"]) == ("News", "Weekly")
    assert set(described.json()) == LIST_FIELDS
    stored = ContactList.objects.get(pk=newsletter["id"])
    assert (stored.name, stored.description) == ("News", "Weekly")
    assert api.get(url).json() == described.json()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_an_empty_body_changes_nothing(api, method):
    newsletter = create_list(api, "Newsletter", description="Monthly")

    response = getattr(api, method)(list_url(newsletter["id"]), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == newsletter


def test_put_back_the_object_just_read_is_accepted_and_read_only_fields_are_ignored(api, make_contact):
    newsletter = create_list(api, "Newsletter")
    added(api, newsletter["id"], [make_contact(email="a@example.com").id])
    read = api.get(list_url(newsletter["id"])).json()

    response = api.put(
        list_url(newsletter["id"]),
        {
            **read,
            "description": "Monthly",
            "id": "lst_other",
            "member_count": 500,
            "created_at": "2000-01-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == newsletter["id"]
    assert body["member_count"] == 1
    assert body["created_at"] == read["created_at"]
    assert body["description"] == "Monthly"
    assert_count_is_exact(newsletter["id"], 1)


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"name": ""}, "name"),
        ({"name": "N" * 101}, "name"),
        ({"name": None}, "name"),
        ({"name": 7}, "name"),
        ({"description": "d" * 1001}, "description"),
        ({"description": 7}, "description"),
        ({"descripton": "typo"}, "descripton"),
    ],
)
def test_update_rejects_bad_input_and_changes_nothing(api, method, body, attr):
    newsletter = create_list(api, "Newsletter", description="Monthly")

    assert_invalid(getattr(api, method)(list_url(newsletter["id"]), body, format="json"), attr)
    stored = ContactList.objects.get(pk=newsletter["id"])
    assert (stored.name, stored.description) == ("Newsletter", "Monthly")


def test_delete_is_204_and_keeps_the_contacts(api, account, make_contact):
    newsletter = create_list(api, "Newsletter")
    other = create_list(api, "Other")
    members = make_contacts(make_contact, 3)
    member_ids = [contact.id for contact in members]
    added(api, newsletter["id"], member_ids)
    added(api, other["id"], member_ids[:1])

    response = api.delete(list_url(newsletter["id"]))

    assert response.status_code == 204
    assert response.content == b""
    assert_not_found(api.get(list_url(newsletter["id"])))
    assert_not_found(api.delete(list_url(newsletter["id"])))
    assert not ContactList.objects.filter(pk=newsletter["id"]).exists()
    assert ListMembership.objects.filter(contact_list_id=newsletter["id"]).count() == 0
    assert set(Contact.objects.for_account(account).values_list("id", flat=True)) == set(member_ids)
    for contact_id in member_ids:
        assert api.get(f"{CONTACTS}/{contact_id}").status_code == 200
    assert_count_is_exact(other["id"], 1)
    assert stored_members(other["id"]) == {member_ids[0]}


# --- members: GET ----------------------------------------------------------------


def test_members_are_most_recently_added_first_and_a_walk_yields_each_once(api, make_contact):
    newsletter = create_list(api)
    people = make_contacts(make_contact, 7)
    for person in people:
        assert added(api, newsletter["id"], [person.id]) == {"added": 1, "already_members": 0}
    expected = [person.id for person in reversed(people)]

    walked = walk(api, members_url(newsletter["id"]), 2)

    assert walked == expected
    assert len(set(walked)) == 7
    assert walk(api, members_url(newsletter["id"]), 3) == expected
    assert ids(api.get(members_url(newsletter["id"]))) == expected


def test_members_pages_have_the_page_shape(api, make_contact):
    newsletter = create_list(api)
    people = make_contacts(make_contact, 3)
    for person in people:
        added(api, newsletter["id"], [person.id])

    first = api.get(members_url(newsletter["id"]), {"limit": 2}).json()
    last = api.get(members_url(newsletter["id"]), {"limit": 2, "cursor": first["next_cursor"]}).json()

    assert set(first) == {"data", "next_cursor", "has_more"}
    assert first["has_more"] is True
    assert isinstance(first["next_cursor"], str)
    assert [item["id"] for item in first["data"]] == [people[2].id, people[1].id]
    assert last == {"data": [api.get(f"{CONTACTS}/{people[0].id}").json()], "next_cursor": None, "has_more": False}


def test_members_are_contact_objects(api, make_contact):
    newsletter = create_list(api)
    ada = make_contact(phone="+14155552671", email="ada@example.com", first_name="Ada", tags=["vip"])
    added(api, newsletter["id"], [ada.id])

    response = api.get(members_url(newsletter["id"]))

    assert response.status_code == 200
    assert response.json()["data"] == [api.get(f"{CONTACTS}/{ada.id}").json()]


def test_members_of_an_empty_list(api):
    newsletter = create_list(api)

    response = api.get(members_url(newsletter["id"]))

    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}


def test_readding_a_member_keeps_its_place(api, make_contact):
    newsletter = create_list(api)
    a, b, c = make_contacts(make_contact, 3)
    for person in (a, b, c):
        added(api, newsletter["id"], [person.id])

    assert added(api, newsletter["id"], [a.id]) == {"added": 0, "already_members": 1}

    assert walk(api, members_url(newsletter["id"]), 2) == [c.id, b.id, a.id]


def test_members_added_in_one_call_are_walked_once_each_after_later_ones(api, make_contact):
    newsletter = create_list(api)
    batch = make_contacts(make_contact, 6, prefix="batch")
    later = make_contact(email="later@example.com")
    added(api, newsletter["id"], [person.id for person in batch])
    added(api, newsletter["id"], [later.id])

    walked = walk(api, members_url(newsletter["id"]), 2)

    assert walked[0] == later.id
    assert sorted(walked[1:]) == sorted(person.id for person in batch)
    assert len(walked) == 7


def test_members_show_only_this_lists_members(api, make_contact, other_account):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos")
    a, b, c = make_contacts(make_contact, 3)
    make_contact(account=other_account, email="theirs@example.com")
    added(api, newsletter["id"], [a.id, b.id])
    added(api, promos["id"], [b.id, c.id])

    assert sorted(ids(api.get(members_url(newsletter["id"])))) == sorted([a.id, b.id])
    assert sorted(ids(api.get(members_url(promos["id"])))) == sorted([b.id, c.id])


@pytest.mark.parametrize("limit", ["0", "101", "abc", ""])
def test_members_rejects_a_bad_limit(api, limit):
    newsletter = create_list(api)

    assert_invalid(api.get(members_url(newsletter["id"]), {"limit": limit}), "limit")


def test_members_rejects_a_malformed_tampered_or_foreign_cursor(api, make_contact):
    newsletter = create_list(api, "Newsletter")
    create_list(api, "Other")
    for person in make_contacts(make_contact, 3):
        added(api, newsletter["id"], [person.id])
    cursor = api.get(members_url(newsletter["id"]), {"limit": 1}).json()["next_cursor"]
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    # A cursor of another collection holds another kind of position.
    lists_cursor = api.get(LISTS, {"limit": 1}).json()["next_cursor"]

    for bad in ["junk", "", tampered, lists_cursor]:
        assert_invalid(api.get(members_url(newsletter["id"]), {"cursor": bad}), "cursor")


def test_members_page_runs_a_constant_number_of_queries_whatever_the_page_size(
    api, make_contact, django_assert_num_queries, hot_api_key
):
    newsletter = create_list(api)
    with transaction.atomic():
        people = make_contacts(make_contact, 12, tags=["a", "b"], metadata={"plan": "pro"})
    for person in people:
        added(api, newsletter["id"], [person.id])
    url = members_url(newsletter["id"])
    api.get(url, {"limit": 1})  # warm-up

    with django_assert_num_queries(2):
        small = api.get(url, {"limit": 2})
    with django_assert_num_queries(2):
        large = api.get(url, {"limit": 7})
    with django_assert_num_queries(2):
        deep = api.get(url, {"limit": 7, "cursor": small.json()["next_cursor"]})

    assert len(small.json()["data"]) == 2
    assert len(large.json()["data"]) == 7
    assert len(deep.json()["data"]) == 7


# --- members: POST ----------------------------------------------------------------


def test_add_members_answers_added_and_already_members(api, make_contact):
    newsletter = create_list(api)
    a, b, c = make_contacts(make_contact, 3)

    first = add_members(api, newsletter["id"], [a.id, b.id])
    second = add_members(api, newsletter["id"], [b.id, c.id, a.id])
    third = add_members(api, newsletter["id"], [c.id])

    assert first.status_code == 200
    assert first.json() == {"added": 2, "already_members": 0}
    assert second.status_code == 200
    assert second.json() == {"added": 1, "already_members": 2}
    assert third.json() == {"added": 0, "already_members": 1}
    assert stored_members(newsletter["id"]) == {a.id, b.id, c.id}
    assert_count_is_exact(newsletter["id"], 3)
    assert api.get(list_url(newsletter["id"])).json()["member_count"] == 3


def test_add_members_counts_duplicates_in_the_request_once(api, make_contact):
    newsletter = create_list(api)
    a, b = make_contacts(make_contact, 2)

    assert added(api, newsletter["id"], [a.id, a.id, b.id, a.id]) == {"added": 2, "already_members": 0}
    assert added(api, newsletter["id"], [b.id, b.id]) == {"added": 0, "already_members": 1}
    assert_count_is_exact(newsletter["id"], 2)


def test_add_members_accepts_1000_ids(api, account):
    newsletter = create_list(api)
    people = Contact.objects.bulk_create([Contact(account=account, email=f"bulk{i}@example.com") for i in range(1000)])

    assert added(api, newsletter["id"], [person.id for person in people]) == {"added": 1000, "already_members": 0}
    assert_count_is_exact(newsletter["id"], 1000)
    assert api.get(list_url(newsletter["id"])).json()["member_count"] == 1000


@pytest.mark.parametrize("count", [0, 1001])
def test_add_members_rejects_0_or_more_than_1000_ids(api, account, count):
    newsletter = create_list(api)
    people = Contact.objects.bulk_create([Contact(account=account, email=f"bulk{i}@example.com") for i in range(count)])

    response = add_members(api, newsletter["id"], [person.id for person in people])

    assert_invalid(response, "contact_ids")
    assert_count_is_exact(newsletter["id"], 0)


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "contact_ids"),
        ({"contact_ids": None}, "contact_ids"),
        ({"contact_ids": "con_AAAAAAAAAAAAAAAA"}, "contact_ids"),
        ({"contact_ids": {"0": "con_AAAAAAAAAAAAAAAA"}}, "contact_ids"),
        ({"contact_ids": 3}, "contact_ids"),
        ({"contact_ids": [7]}, "contact_ids.0"),
        ({"contact_ids": ["VALID", None]}, "contact_ids.1"),
        ({"contact_ids": ["VALID", ["con_x"]]}, "contact_ids.1"),
        ({"contact_ids": ["VALID"], "contacts": ["VALID"]}, "contacts"),
    ],
)
def test_add_members_rejects_bad_input_naming_the_field(api, make_contact, body, attr):
    newsletter = create_list(api)
    valid = make_contact(email="a@example.com")
    body = {
        key: [valid.id if item == "VALID" else item for item in value] if isinstance(value, list) else value
        for key, value in body.items()
    }

    assert_invalid(add_members_body(api, newsletter["id"], body), attr)
    assert_count_is_exact(newsletter["id"], 0)


def test_add_members_with_an_unknown_id_adds_nothing_and_names_the_unknown_ids(api, make_contact):
    newsletter = create_list(api)
    a, b = make_contacts(make_contact, 2)
    added(api, newsletter["id"], [a.id])
    missing_one, missing_two = "con_doesNotExist0001", "con_doesNotExist0002"

    response = add_members(api, newsletter["id"], [b.id, missing_one, a.id, missing_two])

    error = assert_error(response, 400, "validation_error", ["contact_ids"])
    assert missing_one in error["detail"]
    assert missing_two in error["detail"]
    assert b.id not in error["detail"]
    assert a.id not in error["detail"]
    assert stored_members(newsletter["id"]) == {a.id}
    assert_count_is_exact(newsletter["id"], 1)


def test_add_members_treats_another_accounts_contact_as_unknown(api, make_contact, other_account):
    newsletter = create_list(api)
    mine = make_contact(email="mine@example.com")
    theirs = make_contact(account=other_account, email="theirs@example.com")
    missing = "con_doesNotExist0001"

    their_answer = add_members(api, newsletter["id"], [mine.id, theirs.id])
    missing_answer = add_members(api, newsletter["id"], [mine.id, missing])

    error = assert_error(their_answer, 400, "validation_error", ["contact_ids"])
    assert theirs.id in error["detail"]
    assert mine.id not in error["detail"]
    other_error = assert_error(missing_answer, 400, "validation_error", ["contact_ids"])
    assert error["code"] == other_error["code"]
    assert error["detail"].replace(theirs.id, "<id>") == other_error["detail"].replace(missing, "<id>")
    assert_count_is_exact(newsletter["id"], 0)
    assert ListMembership.objects.filter(contact=theirs).count() == 0


def test_add_members_to_an_unknown_list_is_404_and_adds_nothing(api, make_contact):
    mine = make_contact(email="mine@example.com")

    assert_not_found(add_members(api, UNKNOWN_LIST_ID, [mine.id]))
    assert ListMembership.objects.count() == 0


# --- members: DELETE ---------------------------------------------------------------


def test_remove_member_is_204_and_idempotent(api, make_contact):
    newsletter = create_list(api)
    a, b, never = make_contacts(make_contact, 3)
    added(api, newsletter["id"], [a.id, b.id])

    first = api.delete(member_url(newsletter["id"], a.id))
    second = api.delete(member_url(newsletter["id"], a.id))
    never_member = api.delete(member_url(newsletter["id"], never.id))
    unknown = api.delete(member_url(newsletter["id"], UNKNOWN_CONTACT_ID))

    for response in (first, second, never_member, unknown):
        assert response.status_code == 204
        assert response.content == b""
    assert stored_members(newsletter["id"]) == {b.id}
    assert_count_is_exact(newsletter["id"], 1)
    assert ids(api.get(members_url(newsletter["id"]))) == [b.id]
    assert api.get(list_url(newsletter["id"])).json()["member_count"] == 1
    assert api.get(f"{CONTACTS}/{a.id}").status_code == 200


def test_remove_member_leaves_the_contacts_other_lists_alone(api, make_contact):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos")
    a = make_contact(email="a@example.com")
    added(api, newsletter["id"], [a.id])
    added(api, promos["id"], [a.id])

    assert api.delete(member_url(newsletter["id"], a.id)).status_code == 204

    assert_count_is_exact(newsletter["id"], 0)
    assert_count_is_exact(promos["id"], 1)
    assert stored_members(promos["id"]) == {a.id}


def test_a_removed_member_can_be_added_again_and_comes_first(api, make_contact):
    newsletter = create_list(api)
    a, b = make_contacts(make_contact, 2)
    added(api, newsletter["id"], [a.id])
    added(api, newsletter["id"], [b.id])
    assert api.delete(member_url(newsletter["id"], a.id)).status_code == 204

    assert added(api, newsletter["id"], [a.id]) == {"added": 1, "already_members": 0}

    assert walk(api, members_url(newsletter["id"]), 1) == [a.id, b.id]
    assert_count_is_exact(newsletter["id"], 2)


# --- member_count --------------------------------------------------------------------


def test_member_count_follows_adds_removes_and_contact_deletions(api, make_contact):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos")
    a, b, c, d = make_contacts(make_contact, 4)

    added(api, newsletter["id"], [a.id, b.id, c.id])
    added(api, promos["id"], [a.id, d.id])
    assert_count_is_exact(newsletter["id"], 3)
    assert_count_is_exact(promos["id"], 2)

    assert api.delete(member_url(newsletter["id"], b.id)).status_code == 204
    assert_count_is_exact(newsletter["id"], 2)

    assert api.delete(f"{CONTACTS}/{a.id}").status_code == 204
    assert_count_is_exact(newsletter["id"], 1)
    assert_count_is_exact(promos["id"], 1)
    assert stored_members(newsletter["id"]) == {c.id}
    assert stored_members(promos["id"]) == {d.id}
    assert ids(api.get(members_url(newsletter["id"]))) == [c.id]
    assert ids(api.get(members_url(promos["id"]))) == [d.id]
    assert api.get(list_url(newsletter["id"])).json()["member_count"] == 1
    assert api.get(list_url(promos["id"])).json()["member_count"] == 1
    assert {item["id"]: item["member_count"] for item in api.get(LISTS).json()["data"]} == {
        newsletter["id"]: 1,
        promos["id"]: 1,
    }

    assert api.delete(f"{CONTACTS}/{b.id}").status_code == 204  # not a member any more
    assert_count_is_exact(newsletter["id"], 1)


def test_deleting_a_member_contact_removes_its_membership_before_a_readd(api, make_contact):
    newsletter = create_list(api)
    a = make_contact(email="a@example.com")
    added(api, newsletter["id"], [a.id])
    assert api.delete(f"{CONTACTS}/{a.id}").status_code == 204

    response = add_members(api, newsletter["id"], [a.id])

    error = assert_error(response, 400, "validation_error", ["contact_ids"])
    assert a.id in error["detail"]
    assert_count_is_exact(newsletter["id"], 0)


def test_deleting_a_list_keeps_other_lists_counts(api, make_contact):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos")
    people = [person.id for person in make_contacts(make_contact, 3)]
    added(api, newsletter["id"], people)
    added(api, promos["id"], people[:2])

    assert api.delete(list_url(newsletter["id"])).status_code == 204

    assert_count_is_exact(promos["id"], 2)
    assert ListMembership.objects.count() == 2


# --- GET /v1/contacts?list= -----------------------------------------------------------


def test_contacts_filtered_by_list_are_its_members_newest_first(api, account, make_contact):
    newsletter = create_list(api, "Newsletter")
    promos = create_list(api, "Promos")
    people = make_contacts(make_contact, 6)
    members = [people[0].id, people[2].id, people[3].id, people[5].id]
    added(api, newsletter["id"], members)
    added(api, promos["id"], [people[1].id])
    expected = [
        contact_id
        for _, contact_id in sorted(
            Contact.objects.filter(pk__in=members).values_list("created_at", "id"), reverse=True
        )
    ]

    response = api.get(CONTACTS, {"list": newsletter["id"]})

    assert response.status_code == 200
    assert ids(response) == expected
    assert walk(api, CONTACTS, 1, {"list": newsletter["id"]}) == expected
    assert ids(api.get(CONTACTS, {"list": promos["id"]})) == [people[1].id]


def test_contacts_filtered_by_an_empty_list(api, make_contact):
    newsletter = create_list(api)
    make_contact(email="a@example.com")

    response = api.get(CONTACTS, {"list": newsletter["id"]})

    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}


def test_list_filter_combines_with_other_filters_and_search(api, make_contact):
    newsletter = create_list(api)
    ada = make_contact(email="ada@example.com", first_name="Ada", lifecycle_stage="customer", tags=["vip"])
    ada_lead = make_contact(email="ada.lead@example.com", first_name="Ada", lifecycle_stage="lead", tags=["vip"])
    grace = make_contact(email="grace@example.com", first_name="Grace", lifecycle_stage="customer", tags=["vip"])
    outsider = make_contact(email="ada.out@example.com", first_name="Ada", lifecycle_stage="customer", tags=["vip"])
    added(api, newsletter["id"], [ada.id, ada_lead.id, grace.id])
    list_id = newsletter["id"]

    assert ids(api.get(CONTACTS, {"list": list_id, "search": "ada", "lifecycle_stage": "customer"})) == [ada.id]
    assert sorted(ids(api.get(CONTACTS, {"list": list_id, "search": "ada"}))) == sorted([ada.id, ada_lead.id])
    assert sorted(ids(api.get(CONTACTS, {"list": list_id, "lifecycle_stage": "customer", "tag": "vip"}))) == sorted(
        [ada.id, grace.id]
    )
    assert ids(api.get(CONTACTS, {"list": list_id, "tag": "absent"})) == []
    assert outsider.id not in ids(api.get(CONTACTS, {"list": list_id, "limit": 100}))


@pytest.mark.parametrize("list_id", [UNKNOWN_LIST_ID, "garbage", "lst_"])
def test_contacts_filtered_by_an_unknown_list_is_404(api, make_contact, list_id):
    make_contact(email="a@example.com")

    assert_not_found(api.get(CONTACTS, {"list": list_id}))


def test_contacts_filtered_by_another_accounts_list_is_404_like_an_unknown_one(
    api, other_api, make_contact, other_account
):
    theirs = create_list(other_api, "Theirs")
    their_contact = make_contact(account=other_account, email="theirs@example.com")
    added(other_api, theirs["id"], [their_contact.id])
    make_contact(email="mine@example.com")

    response = api.get(CONTACTS, {"list": theirs["id"]})
    unknown = api.get(CONTACTS, {"list": UNKNOWN_LIST_ID})

    assert_not_found(response)
    assert response.content == unknown.content
    assert theirs["id"].encode() not in response.content
    assert their_contact.id.encode() not in response.content


# --- 404 on every list endpoint ------------------------------------------------------------

LIST_ENDPOINTS = [
    ("get", "/v1/contacts/lists/{id}", None),
    ("put", "/v1/contacts/lists/{id}", {"name": "Renamed"}),
    ("patch", "/v1/contacts/lists/{id}", {"description": "x"}),
    ("delete", "/v1/contacts/lists/{id}", None),
    ("get", "/v1/contacts/lists/{id}/members", None),
    ("post", "/v1/contacts/lists/{id}/members", {"contact_ids": ["CONTACT"]}),
    ("delete", "/v1/contacts/lists/{id}/members/CONTACT", None),
]


@pytest.mark.parametrize(("method", "template", "body"), LIST_ENDPOINTS)
@pytest.mark.parametrize("list_id", [UNKNOWN_LIST_ID, "lst_x", "not-a-list-id"])
def test_unknown_list_id_is_404_on_every_list_endpoint(api, make_contact, method, template, body, list_id):
    contact = make_contact(email="a@example.com")
    path = template.format(id=list_id).replace("CONTACT", contact.id)
    if body is not None:
        body = {key: [contact.id] if value == ["CONTACT"] else value for key, value in body.items()}

    response = getattr(api, method)(path, body, format="json") if body is not None else getattr(api, method)(path)

    assert_not_found(response)
    assert ListMembership.objects.count() == 0
    assert ContactList.objects.count() == 0
