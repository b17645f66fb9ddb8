"""Tenancy (API.md §1): another account's contact is indistinguishable from one that never existed.

Every route under ``v1/`` must be walked here: ``test_every_v1_route_has_a_tenancy_case``
fails when an endpoint is added without a case in ``OBJECT_CASES`` or
``COLLECTION_CASES``.
"""

from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from contacts.models import Contact
from contacts_project.api.views import not_found

# Requests on one contact, by another account. ``{id}`` is the contact's id.
OBJECT_CASES = [
    ("get", "/v1/contacts/{id}", None),
    ("put", "/v1/contacts/{id}", {"first_name": "Mallory", "tags": ["pwned"], "metadata": {"owned": True}}),
    ("patch", "/v1/contacts/{id}", {"first_name": "Mallory", "email": None, "metadata": {"plan": None}}),
    ("delete", "/v1/contacts/{id}", None),
    ("post", "/v1/contacts/{id}/tags", {"tags": ["pwned"]}),
    ("delete", "/v1/contacts/{id}/tags/vip", None),
    ("delete", "/v1/contacts/{id}/tags/absent", None),
]
# Requests on the collection, checked by the tests below that use them.
COLLECTION_CASES = [
    ("get", "/v1/contacts"),
    ("post", "/v1/contacts"),
]
# Not tenant-owned: the OpenAPI document and its viewers.
PUBLIC_ROUTE_NAMES = {"schema", "docs", "redoc"}
MISSING_ID = "con_AAAAAAAAAAAAAAAA"


def _row(contact_id):
    """The stored row as PostgreSQL prints it: any change to any column changes this text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c::text FROM contacts_contact c WHERE c.id = %s", [contact_id])
        row = cursor.fetchone()
    return row[0] if row else None


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


def test_other_account_gets_404_on_every_contact_endpoint_and_changes_nothing(account, other_api, make_contact):
    victim = _victim(make_contact)
    before = _row(victim.id)
    count_before = Contact.objects.for_account(account).count()

    for method, template, body in OBJECT_CASES:
        response = _send(other_api, method, template.format(id=victim.id), body)
        assert response.status_code == 404, (method, template, response.content)
        assert response.json()["type"] == "client_error"
        assert [error["code"] for error in response.json()["errors"]] == ["not_found"]
        assert victim.id.encode() not in response.content
        assert _row(victim.id) == before, (method, template)

    assert _row(victim.id) == before
    assert Contact.objects.for_account(account).count() == count_before


def test_404_for_another_accounts_id_is_identical_to_404_for_an_id_that_never_existed(other_api, make_contact):
    victim = _victim(make_contact)
    assert not Contact.objects.filter(pk=MISSING_ID).exists()

    for method, template, body in OBJECT_CASES:
        theirs = _send(other_api, method, template.format(id=victim.id), body)
        missing = _send(other_api, method, template.format(id=MISSING_ID), body)
        assert theirs.status_code == missing.status_code == 404, (method, template)
        assert theirs.content == missing.content, (method, template)
        assert theirs["Content-Type"] == missing["Content-Type"]


def test_invalid_body_gets_the_same_answer_for_another_accounts_id_and_a_missing_one(other_api, make_contact):
    """Validation must not reveal which ids exist either."""
    victim = _victim(make_contact)
    bodies = {
        "put": {"fist_name": "typo"},
        "patch": {"phone": "not a phone"},
        "post": {"tags": []},
    }

    for method, template, _ in OBJECT_CASES:
        if method not in bodies:
            continue
        theirs = _send(other_api, method, template.format(id=victim.id), bodies[method])
        missing = _send(other_api, method, template.format(id=MISSING_ID), bodies[method])
        assert theirs.status_code == missing.status_code, (method, template)
        assert theirs.content == missing.content, (method, template)


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


def test_every_v1_route_has_a_tenancy_case():
    routes = _v1_routes()
    covered = {(resolve(template.format(id=MISSING_ID)).url_name, method) for method, template, _ in OBJECT_CASES}
    covered |= {(resolve(path).url_name, method) for method, path in COLLECTION_CASES}

    assert ("contact-detail", "get") in routes  # the enumeration itself works
    assert routes - covered == set(), "endpoints without a tenancy case in contacts/tests/test_tenancy.py"
    assert covered - routes == set(), "tenancy cases for routes that do not exist"
