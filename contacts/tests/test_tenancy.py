"""Tenancy (API.md §1): another account's object is indistinguishable from one that never existed.

Every route under ``v1/`` must be walked here: ``test_every_v1_route_has_a_tenancy_case``
fails when an endpoint is added without a case in ``OBJECT_CASES`` or
``COLLECTION_CASES``.

Account A (``account``/``api``) owns the victims: a contact (with channel
preferences and activity events, one a delivery receipt), a list holding it, a
segment whose rules name the list, and the suppression entries left by a deleted
opted-out contact. Account B (``other_api``) attacks with A's ids in the path,
the body, the query string and segment rules; every row of A, in every table
with an ``account_id``, must stay byte-for-byte the same.
"""

from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from contacts.models import ActivityEvent, Contact
from contacts_project.api.views import not_found
from lists.models import ContactList, ListMembership
from segments.models import Segment

# Requests on one of A's objects, by another account. ``{contact}``, ``{list}``
# and ``{segment}`` are A's ids; ``{own_contact}`` is a contact of the caller.
OBJECT_CASES = [
    ("get", "/v1/contacts/{contact}", None),
    ("put", "/v1/contacts/{contact}", {"first_name": "Mallory", "tags": ["pwned"], "metadata": {"owned": True}}),
    ("patch", "/v1/contacts/{contact}", {"first_name": "Mallory", "email": None, "metadata": {"plan": None}}),
    ("delete", "/v1/contacts/{contact}", None),
    ("post", "/v1/contacts/{contact}/tags", {"tags": ["pwned"]}),
    ("delete", "/v1/contacts/{contact}/tags/vip", None),
    ("delete", "/v1/contacts/{contact}/tags/absent", None),
    ("get", "/v1/contacts/{contact}/activity", None),
    ("post", "/v1/contacts/{contact}/activity", {"type": "message.sent", "channel": "sms", "data": {"owned": True}}),
    # A's receipt (A_RECEIPT) again: must not answer 200 with A's stored event.
    (
        "post",
        "/v1/contacts/{contact}/activity",
        {"type": "message.delivered", "channel": "sms", "message_id": "msg_a1"},
    ),
    ("put", "/v1/contacts/{contact}/preferences", {"sms": "opted_out", "email": "opted_in"}),
    ("put", "/v1/contacts/{contact}/preferences", {}),
    ("get", "/v1/contacts/lists/{list}", None),
    ("put", "/v1/contacts/lists/{list}", {"name": "Mallory", "description": "pwned"}),
    ("patch", "/v1/contacts/lists/{list}", {"name": "Mallory", "member_count": 0}),
    ("delete", "/v1/contacts/lists/{list}", None),
    ("get", "/v1/contacts/lists/{list}/members", None),
    ("post", "/v1/contacts/lists/{list}/members", {"contact_ids": ["{own_contact}"]}),
    ("post", "/v1/contacts/lists/{list}/members", {"contact_ids": ["{contact}"]}),
    ("delete", "/v1/contacts/lists/{list}/members/{contact}", None),
    ("delete", "/v1/contacts/lists/{list}/members/{own_contact}", None),
    ("get", "/v1/contacts/segments/{segment}", None),
    (
        "put",
        "/v1/contacts/segments/{segment}",
        {"name": "Mallory", "rules": {"match": "all", "conditions": [{"field": "tags", "operator": "exists"}]}},
    ),
    ("patch", "/v1/contacts/segments/{segment}", {"name": "Mallory"}),
    ("delete", "/v1/contacts/segments/{segment}", None),
    ("get", "/v1/contacts/segments/{segment}/members", None),
]
# Requests on the collections, checked by the tests below that use them.
COLLECTION_CASES = [
    ("get", "/v1/contacts"),
    ("post", "/v1/contacts"),
    ("get", "/v1/contacts/optouts"),
    ("get", "/v1/contacts/lists"),
    ("post", "/v1/contacts/lists"),
    ("get", "/v1/contacts/segments"),
    ("post", "/v1/contacts/segments"),
    ("post", "/v1/contacts/segments/preview"),
]
# Not tenant-owned: the OpenAPI document and its viewers.
PUBLIC_ROUTE_NAMES = {"schema", "docs", "redoc"}
MISSING_ID = "con_AAAAAAAAAAAAAAAA"
MISSING_IDS = {
    "contact": MISSING_ID,
    "own_contact": "con_BBBBBBBBBBBBBBBB",
    "list": "lst_AAAAAAAAAAAAAAAA",
    "segment": "seg_AAAAAAAAAAAAAAAA",
}
# The tables the snapshot must at least cover (it discovers every table with an account_id).
TENANT_TABLES = {
    "contacts_contact",
    "contacts_activityevent",
    "contacts_suppressionentry",
    "lists_contactlist",
    "lists_listmembership",
    "segments_segment",
}


def _row(contact_id):
    """The stored row as PostgreSQL prints it: any change to any column changes this text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c::text FROM contacts_contact c WHERE c.id = %s", [contact_id])
        row = cursor.fetchone()
    return row[0] if row else None


def _tenant_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE column_name = 'account_id' AND table_schema = current_schema() ORDER BY table_name"
        )
        return [name for (name,) in cursor.fetchall()]


def _rows(account):
    """Every row of ``account`` in every table with an ``account_id``, as PostgreSQL prints it."""
    tables = _tenant_tables()
    assert set(tables) >= TENANT_TABLES
    snapshot = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" t WHERE t.account_id = %s ORDER BY 1', [account.pk])
            snapshot[table] = [text for (text,) in cursor.fetchall()]
    return snapshot


def _fill(value, ids):
    """``value`` with ``{contact}``-style placeholders in every string replaced by ``ids``."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _send(client, method, path, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def _victim(make_contact):
    return make_contact(
        phone="+14155552671",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        lifecycle_stage="customer",
        tags=["vip", "beta"],
        metadata={"plan": "pro"},
    )


LISTS = "/v1/contacts/lists"
OPTOUTS = "/v1/contacts/optouts"
A_RECEIPT = {"type": "message.delivered", "channel": "sms", "message_id": "msg_a1", "data": {"secret": "A's data"}}
SEGMENTS = "/v1/contacts/segments"


def _lists_rule(list_id, operator="contains"):
    return {"match": "all", "conditions": [{"field": "lists", "operator": operator, "value": list_id}]}


def _world(api, make_contact, other_account):
    """A's contact (with activity and preferences), list (holding it and one more), segment (naming the
    list) and a suppression entry; and a contact of B."""
    victim = _victim(make_contact)
    second = make_contact(email="charles@example.com", first_name="Charles", tags=["vip"])
    response = api.put(
        f"/v1/contacts/{victim.id}/preferences", {"email": "opted_out", "sms": "opted_in"}, format="json"
    )
    assert response.status_code == 200, response.content
    event = api.post(f"/v1/contacts/{victim.id}/activity", A_RECEIPT, format="json")
    assert event.status_code == 201, event.content
    gone = make_contact(phone="+14155550199", email="gone@example.com", first_name="Gone")
    response = api.put(f"/v1/contacts/{gone.id}/preferences", {"whatsapp": "opted_out"}, format="json")
    assert response.status_code == 200, response.content
    assert api.delete(f"/v1/contacts/{gone.id}").status_code == 204
    response = api.post(LISTS, {"name": "Newsletter", "description": "A's list"}, format="json")
    assert response.status_code == 201, response.content
    list_id = response.json()["id"]
    response = api.post(f"{LISTS}/{list_id}/members", {"contact_ids": [victim.id, second.id]}, format="json")
    assert response.json() == {"added": 2, "already_members": 0}
    response = api.post(SEGMENTS, {"name": "Subscribers", "rules": _lists_rule(list_id)}, format="json")
    assert response.status_code == 201, response.content
    own = make_contact(account=other_account, phone="+12125550100", email="grace@example.com", first_name="Grace")
    return {
        "contact": victim.id,
        "second_contact": second.id,
        "list": list_id,
        "segment": response.json()["id"],
        "event": event.json()["id"],
        "own_contact": own.id,
    }


def _a_ids(world):
    return [world[key] for key in ("contact", "second_contact", "list", "segment", "event")]


def _assert_leaks_none(response, world, where):
    for victim_id in _a_ids(world):
        assert victim_id.encode() not in response.content, (where, victim_id)


def _missing_for(world):
    """The ids of a request like the attacker's, but naming A's objects by ids that never existed."""
    return {**world, **{key: value for key, value in MISSING_IDS.items() if key != "own_contact"}}


def test_other_account_gets_404_on_every_object_endpoint_and_changes_nothing(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    before, theirs_before = _rows(account), _rows(other_account)
    assert len(before["lists_contactlist"]) == 1
    assert len(before["lists_listmembership"]) == 2
    assert len(before["segments_segment"]) == 1
    # Two preference.updated events and the receipt; the deleted contact's events went with it.
    assert len(before["contacts_activityevent"]) == 3
    assert len(before["contacts_suppressionentry"]) == 2  # whatsapp, for its phone and its email

    for method, template, body in OBJECT_CASES:
        response = _send(other_api, method, _fill(template, world), _fill(body, world))
        where = (method, template, body)
        assert response.status_code == 404, (where, response.content)
        assert response.json()["type"] == "client_error"
        assert [(error["code"], error["attr"]) for error in response.json()["errors"]] == [("not_found", None)]
        _assert_leaks_none(response, world, where)
        assert _rows(account) == before, where
        assert _rows(other_account) == theirs_before, where

    assert ContactList.objects.get(pk=world["list"]).member_count == 2
    assert api.get(f"{LISTS}/{world['list']}").json()["member_count"] == 2


def test_404_for_another_accounts_id_is_identical_to_404_for_an_id_that_never_existed(
    api, other_api, other_account, make_contact
):
    world = _world(api, make_contact, other_account)
    missing_ids = _missing_for(world)
    assert not Contact.objects.filter(pk=MISSING_IDS["contact"]).exists()
    assert not ContactList.objects.filter(pk=MISSING_IDS["list"]).exists()
    assert not Segment.objects.filter(pk=MISSING_IDS["segment"]).exists()

    for method, template, body in OBJECT_CASES:
        theirs = _send(other_api, method, _fill(template, world), _fill(body, world))
        missing = _send(other_api, method, _fill(template, missing_ids), _fill(body, missing_ids))
        assert theirs.status_code == missing.status_code == 404, (method, template)
        assert theirs.content == missing.content, (method, template)
        assert theirs["Content-Type"] == missing["Content-Type"]


INVALID_BODIES = [
    {"fist_name": "typo"},
    {"phone": "not a phone"},
    {"tags": []},
    {"name": ""},
    {"description": 12},
    {"contact_ids": []},
    {"contact_ids": ["{contact}"]},
    {"rules": {"match": "some"}},
    {"rules": {"match": "all", "conditions": [{"field": "lists", "operator": "contains", "value": "{list}"}]}},
    {"type": "preference.updated", "channel": "sms"},
    {"type": "message.sent"},
    {"type": "message.delivered", "channel": "sms", "message_id": "msg_a1", "data": []},
    {"sms": "maybe"},
    {"fax": "opted_out"},
]


def test_invalid_body_gets_the_same_answer_for_another_accounts_id_and_a_missing_one(
    account, api, other_api, other_account, make_contact
):
    """Validation must not reveal which ids exist either."""
    world = _world(api, make_contact, other_account)
    missing_ids = _missing_for(world)
    before = _rows(account)

    for method, template, body in OBJECT_CASES:
        if body is None:
            continue
        for bad in INVALID_BODIES:
            theirs = _send(other_api, method, _fill(template, world), _fill(bad, world))
            missing = _send(other_api, method, _fill(template, missing_ids), _fill(bad, missing_ids))
            assert theirs.status_code == missing.status_code, (method, template, bad)
            assert theirs.content == missing.content, (method, template, bad)
            _assert_leaks_none(theirs, world, (method, template, bad))
    assert _rows(account) == before


def test_list_and_search_never_show_another_accounts_contacts(api, other_api, other_account, make_contact):
    victim = _victim(make_contact)
    theirs = make_contact(account=other_account, phone="+12125550100", email="grace@example.com", first_name="Grace")
    queries = [
        {},
        {"search": "ada"},
        {"search": "lovelace"},
        {"search": "ada@example.com"},
        {"search": "example"},
        {"search": "+14155552671"},
        {"search": "2671"},
        {"search": "+1 (415) 555-2671"},
        {"tag": "vip"},
        {"lifecycle_stage": "customer"},
        {"country": "US"},
        {"created_after": "2000-01-01T00:00:00Z"},
        {"updated_after": "2000-01-01T00:00:00Z"},
    ]

    for params in queries:
        response = other_api.get("/v1/contacts", {"limit": 100, **params})
        assert response.status_code == 200, params
        ids = [contact["id"] for contact in response.json()["data"]]
        assert victim.id not in ids, params
        assert victim.id.encode() not in response.content, params
        assert set(ids) <= {theirs.id}, params
    assert [c["id"] for c in other_api.get("/v1/contacts").json()["data"]] == [theirs.id]
    assert [c["id"] for c in api.get("/v1/contacts").json()["data"]] == [victim.id]


def test_create_with_another_accounts_phone_and_email_succeeds_without_revealing_it(
    account, other_api, other_account, make_contact
):
    victim = _victim(make_contact)
    before = _row(victim.id)

    response = other_api.post("/v1/contacts", {"phone": "+1 (415) 555-2671", "email": "ADA@example.com"}, format="json")

    assert response.status_code == 201, response.json()
    assert victim.id.encode() not in response.content
    created = response.json()
    assert created["id"] != victim.id
    assert created["phone"] == "+14155552671"
    assert created["email"] == "ada@example.com"
    assert Contact.objects.get(pk=created["id"]).account_id == other_account.id
    assert _row(victim.id) == before
    assert Contact.objects.for_account(account).count() == 1


def _own_list(other_api, name="Theirs"):
    response = other_api.post(LISTS, {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _own_segment(other_api, name="Theirs"):
    rules = {"match": "all", "conditions": [{"field": "email", "operator": "exists"}]}
    response = other_api.post(SEGMENTS, {"name": name, "rules": rules}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_another_accounts_contact_ids_in_the_body_are_unknown_and_nothing_is_added(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    own_list = _own_list(other_api)
    before = _rows(account)
    members_url = f"{LISTS}/{own_list}/members"

    for contact_ids in (
        [world["contact"]],
        [world["own_contact"], world["contact"]],
        [world["second_contact"], world["own_contact"], world["contact"]],
    ):
        response = other_api.post(members_url, {"contact_ids": contact_ids}, format="json")
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["type"] == "validation_error"
        assert [error["attr"] for error in body["errors"]] == ["contact_ids"]
        for contact_id in contact_ids:
            # The 400 names the ids the caller sent that are unknown to it, and nothing else.
            assert (contact_id in body["errors"][0]["detail"]) == (contact_id != world["own_contact"])
        assert ListMembership.objects.filter(contact_list_id=own_list).count() == 0
        assert ContactList.objects.get(pk=own_list).member_count == 0
        assert _rows(account) == before

    theirs = other_api.post(members_url, {"contact_ids": [world["contact"]]}, format="json")
    missing = other_api.post(members_url, {"contact_ids": [MISSING_IDS["contact"]]}, format="json")
    assert theirs.content.replace(world["contact"].encode(), b"<id>") == missing.content.replace(
        MISSING_IDS["contact"].encode(), b"<id>"
    )
    assert other_api.post(members_url, {"contact_ids": [world["own_contact"]]}, format="json").json() == {
        "added": 1,
        "already_members": 0,
    }
    assert _rows(account) == before


def test_removing_another_accounts_contact_from_ones_own_list_is_like_a_missing_one(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    own_list = _own_list(other_api)
    other_api.post(f"{LISTS}/{own_list}/members", {"contact_ids": [world["own_contact"]]}, format="json")
    before, theirs_before = _rows(account), _rows(other_account)

    theirs = other_api.delete(f"{LISTS}/{own_list}/members/{world['contact']}")
    missing = other_api.delete(f"{LISTS}/{own_list}/members/{MISSING_IDS['contact']}")

    assert theirs.status_code == missing.status_code == 204
    assert theirs.content == missing.content == b""
    assert _rows(account) == before
    assert _rows(other_account) == theirs_before


def test_another_accounts_list_or_segment_in_the_query_string_is_404(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    before = _rows(account)

    for name, key in (("list", "list"), ("segment", "segment")):
        for extra in ({}, {"search": "ada"}, {"limit": 5, "lifecycle_stage": "customer"}):
            theirs = other_api.get("/v1/contacts", {name: world[key], **extra})
            missing = other_api.get("/v1/contacts", {name: MISSING_IDS[key], **extra})
            assert theirs.status_code == missing.status_code == 404, (name, extra, theirs.content)
            assert [error["code"] for error in theirs.json()["errors"]] == ["not_found"]
            assert theirs.content == missing.content, (name, extra)
            _assert_leaks_none(theirs, world, (name, extra))
    # The owner's own filters work, so the 404s above are about the account.
    assert {c["id"] for c in api.get("/v1/contacts", {"list": world["list"]}).json()["data"]} == {
        world["contact"],
        world["second_contact"],
    }
    assert {c["id"] for c in api.get("/v1/contacts", {"segment": world["segment"]}).json()["data"]} == {
        world["contact"],
        world["second_contact"],
    }
    assert _rows(account) == before


RULES_NAMING_A_LIST = [
    (_lists_rule("{list}"), "rules.conditions.0.value"),
    (_lists_rule("{list}", "not_contains"), "rules.conditions.0.value"),
    (
        {
            "match": "any",
            "conditions": [
                {"field": "tags", "operator": "contains", "value": "vip"},
                {"match": "all", "conditions": [{"field": "lists", "operator": "contains", "value": "{list}"}]},
            ],
        },
        "rules.conditions.1.conditions.0.value",
    ),
]


def test_segment_rules_naming_another_accounts_list_are_400_like_an_unknown_list(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    own_segment = _own_segment(other_api)
    segment_url = f"{SEGMENTS}/{own_segment['id']}"
    before, theirs_before = _rows(account), _rows(other_account)
    missing_ids = _missing_for(world)
    requests = [
        ("post", SEGMENTS, lambda rules: {"name": "Stolen", "rules": rules}),
        ("put", segment_url, lambda rules: {"name": "Stolen", "rules": rules}),
        ("patch", segment_url, lambda rules: {"rules": rules}),
        ("post", f"{SEGMENTS}/preview", lambda rules: {"rules": rules}),
    ]

    for method, path, make_body in requests:
        for rules, attr in RULES_NAMING_A_LIST:
            theirs = _send(other_api, method, path, make_body(_fill(rules, world)))
            missing = _send(other_api, method, path, make_body(_fill(rules, missing_ids)))
            where = (method, path, attr)
            assert theirs.status_code == 400, (where, theirs.content)
            assert theirs.json()["type"] == "validation_error"
            assert [error["attr"] for error in theirs.json()["errors"]] == [attr], where
            assert theirs.content == missing.content, where
            _assert_leaks_none(theirs, world, where)
            assert _rows(account) == before, where
            assert _rows(other_account) == theirs_before, where

    assert other_api.get(segment_url).json()["rules"] == own_segment["rules"]
    assert [s["id"] for s in other_api.get(SEGMENTS).json()["data"]] == [own_segment["id"]]


def test_list_and_segment_collections_never_show_another_accounts_objects(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    own_list = _own_list(other_api)
    own_segment = _own_segment(other_api)["id"]

    for path in (LISTS, SEGMENTS):
        for params in ({}, {"limit": 1}, {"limit": 100}):
            response = other_api.get(path, params)
            assert response.status_code == 200, (path, params)
            _assert_leaks_none(response, world, (path, params))
    assert [item["id"] for item in other_api.get(LISTS).json()["data"]] == [own_list]
    assert [item["id"] for item in other_api.get(SEGMENTS).json()["data"]] == [own_segment]
    assert [item["id"] for item in api.get(LISTS).json()["data"]] == [world["list"]]
    assert [item["id"] for item in api.get(SEGMENTS).json()["data"]] == [world["segment"]]


def test_create_list_and_segment_with_another_accounts_name_succeeds_without_revealing_it(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    before = _rows(account)
    rules = {"match": "all", "conditions": [{"field": "tags", "operator": "exists"}]}

    new_list = other_api.post(LISTS, {"name": "NEWSLETTER"}, format="json")
    new_segment = other_api.post(SEGMENTS, {"name": "subscribers", "rules": rules}, format="json")

    for response in (new_list, new_segment):
        assert response.status_code == 201, response.content
        _assert_leaks_none(response, world, response.json()["id"])
    assert ContactList.objects.get(pk=new_list.json()["id"]).account_id == other_account.id
    assert Segment.objects.get(pk=new_segment.json()["id"]).account_id == other_account.id
    assert new_list.json()["member_count"] == 0
    assert _rows(account) == before


def test_segment_counts_previews_and_members_never_include_another_accounts_contacts(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    # Rules every contact of either account matches.
    everyone = {
        "match": "any",
        "conditions": [{"field": "email", "operator": "exists"}, {"field": "email", "operator": "not_exists"}],
    }
    before = _rows(account)

    preview = other_api.post(f"{SEGMENTS}/preview", {"rules": everyone}, format="json")
    created = other_api.post(SEGMENTS, {"name": "Everyone", "rules": everyone}, format="json")
    segment_id = created.json()["id"]
    members = other_api.get(f"{SEGMENTS}/{segment_id}/members")
    detail = other_api.get(f"{SEGMENTS}/{segment_id}")
    filtered = other_api.get("/v1/contacts", {"segment": segment_id})

    assert preview.status_code == 200, preview.content
    assert preview.json()["contact_count"] == 1
    assert [c["id"] for c in preview.json()["sample"]] == [world["own_contact"]]
    assert created.status_code == 201
    assert created.json()["contact_count"] == 1
    assert detail.json()["contact_count"] == 1
    assert [c["id"] for c in members.json()["data"]] == [world["own_contact"]]
    assert [c["id"] for c in filtered.json()["data"]] == [world["own_contact"]]
    for response in (preview, created, members, detail, filtered):
        _assert_leaks_none(response, world, response.request["PATH_INFO"])
    assert _rows(account) == before


def test_optouts_never_show_another_accounts_contacts(account, other_account, api, other_api, make_contact):
    world = _world(api, make_contact, other_account)
    response = other_api.put(f"/v1/contacts/{world['own_contact']}/preferences", {"sms": "opted_out"}, format="json")
    assert response.status_code == 200, response.content
    before = _rows(account)
    queries = [
        ({}, [world["own_contact"]]),
        ({"limit": 1}, [world["own_contact"]]),
        ({"limit": 100}, [world["own_contact"]]),
        ({"channel": "sms"}, [world["own_contact"]]),
        ({"channel": "email"}, []),
        ({"channel": "whatsapp"}, []),
        ({"search": "ada"}, []),
        ({"search": "lovelace"}, []),
        ({"search": "ada@example.com"}, []),
        ({"search": "example"}, [world["own_contact"]]),
        ({"search": "2671"}, []),
        ({"search": "+1 (415) 555-2671"}, []),
        ({"search": "gone"}, []),
        ({"search": "grace"}, [world["own_contact"]]),
        ({"search": "ada", "channel": "email"}, []),
        ({"search": "grace", "channel": "sms"}, [world["own_contact"]]),
    ]

    for params, expected in queries:
        response = other_api.get(OPTOUTS, params)
        assert response.status_code == 200, (params, response.content)
        assert [contact["id"] for contact in response.json()["data"]] == expected, params
        assert response.json()["has_more"] is False, params
        _assert_leaks_none(response, world, params)
    # The owner sees its own opt-out, so the empty answers above are about the account.
    assert [c["id"] for c in api.get(OPTOUTS).json()["data"]] == [world["contact"]]
    assert [c["id"] for c in api.get(OPTOUTS, {"channel": "email", "search": "ada"}).json()["data"]] == [
        world["contact"]
    ]
    assert api.get(OPTOUTS, {"channel": "sms"}).json()["data"] == []
    assert _rows(account) == before


def test_another_accounts_receipt_with_the_same_message_id_is_a_new_event_of_its_own(
    account, other_account, api, other_api, make_contact
):
    world = _world(api, make_contact, other_account)
    before = _rows(account)
    url = f"/v1/contacts/{world['own_contact']}/activity"

    response = other_api.post(url, {**A_RECEIPT, "data": {}}, format="json")

    assert response.status_code == 201, response.content
    event = response.json()
    assert event["id"] != world["event"]
    assert event["data"] == {}
    _assert_leaks_none(response, world, "post")
    assert ActivityEvent.objects.get(pk=event["id"]).account_id == other_account.id
    for params in ({}, {"type": "message.delivered"}, {"channel": "sms"}, {"since": "2000-01-01T00:00:00Z"}):
        timeline = other_api.get(url, params)
        assert timeline.status_code == 200, params
        assert [item["id"] for item in timeline.json()["data"]] == [event["id"]], params
        _assert_leaks_none(timeline, world, params)
    assert _rows(account) == before


def test_another_accounts_suppression_does_not_opt_out_a_new_contact(
    account, other_account, api, other_api, make_contact
):
    _world(api, make_contact, other_account)
    before = _rows(account)

    response = other_api.post("/v1/contacts", {"phone": "+14155550199", "email": "gone@example.com"}, format="json")

    assert response.status_code == 201, response.content
    assert set(response.json()["preferences"].values()) == {"unset"}
    assert other_api.get(OPTOUTS).json()["data"] == []
    assert _rows(account) == before


def _v1_routes():
    """(route name, HTTP method) for every URL pattern under ``v1/``, except the public and catch-all ones."""
    routes = set()

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
                continue
            assert isinstance(pattern, URLPattern)
            if not route.lstrip("^").startswith("v1/"):
                continue
            if pattern.name in PUBLIC_ROUTE_NAMES or pattern.callback is not_found:
                continue
            actions = getattr(pattern.callback, "actions", None)
            view_class = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
            if actions:
                # HEAD runs the GET handler (DRF maps it when "get" is routed).
                methods = set(actions) - {"head"} if "get" in actions else set(actions)
            elif view_class is not None:
                methods = {name for name in ("get", "post", "put", "patch", "delete") if hasattr(view_class, name)}
            else:
                methods = {"any"}  # a function view: no way to tell, so it needs an explicit case
            routes.update((pattern.name or route, method) for method in methods)

    walk(get_resolver().url_patterns, "")
    return routes


def _covered(object_cases, collection_cases):
    covered = {(resolve(_fill(template, MISSING_IDS)).url_name, method) for method, template, _ in object_cases}
    return covered | {(resolve(path).url_name, method) for method, path in collection_cases}


def test_every_v1_route_has_a_tenancy_case():
    routes = _v1_routes()
    covered = _covered(OBJECT_CASES, COLLECTION_CASES)

    assert ("contact-detail", "get") in routes  # the enumeration itself works
    assert ("contact-list-remove-member", "delete") in routes
    assert ("segment-preview", "post") in routes
    assert routes - covered == set(), "endpoints without a tenancy case in contacts/tests/test_tenancy.py"
    assert covered - routes == set(), "tenancy cases for routes that do not exist"


def test_the_route_check_notices_a_route_left_without_a_case():
    routes = _v1_routes()
    for method, template, _ in OBJECT_CASES:
        route = (resolve(_fill(template, MISSING_IDS)).url_name, method)
        others = [case for case in OBJECT_CASES if (resolve(_fill(case[1], MISSING_IDS)).url_name, case[0]) != route]
        assert routes - _covered(others, COLLECTION_CASES) == {route}
    for case in COLLECTION_CASES:
        others = [other for other in COLLECTION_CASES if other != case]
        assert routes - _covered(OBJECT_CASES, others) == {(resolve(case[1]).url_name, case[0])}
