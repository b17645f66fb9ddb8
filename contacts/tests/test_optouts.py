"""``GET /v1/contacts/optouts`` (API.md §5): who is opted out, filters, search, pagination, tenancy, indexes."""

import datetime
import re

import pytest
from django.db import connection, transaction

from contacts.api.filters import OptoutFilter
from contacts.models import Contact
from contacts.search import search_columns
from contacts.services import contact_set_preferences
from contacts_project.api.pagination import Seek
from contacts_project.testing import assert_error, assert_invalid

CONTACTS = "/v1/contacts"
OPTOUTS = "/v1/contacts/optouts"
CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")
BASE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def ids(response) -> list[str]:
    return [contact["id"] for contact in ok(response)["data"]]


def optout_ids(api, **params) -> set[str]:
    body = ok(api.get(OPTOUTS, {"limit": 100, **params}))
    assert body["has_more"] is False
    return {contact["id"] for contact in body["data"]}


def set_preferences(api, contact, statuses: dict) -> None:
    response = api.put(f"{CONTACTS}/{contact.pk}/preferences", statuses, format="json")
    assert response.status_code == 200, response.content


def set_created_at(contact, when) -> None:
    Contact.objects.filter(pk=contact.pk).update(created_at=when)


def newest_first(account, contact_ids) -> list[str]:
    rows = Contact.objects.for_account(account).filter(pk__in=contact_ids).values_list("created_at", "id")
    return [contact_id for _, contact_id in sorted(rows, reverse=True)]


def walk(api, limit, params=None, between_pages=None) -> list[str]:
    """Follow next_cursor to the end; return every id in the order served."""
    seen = []
    cursor = None
    for page in range(1, 100):
        query = {"limit": limit, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        body = ok(api.get(OPTOUTS, query))
        assert set(body) == {"data", "next_cursor", "has_more"}
        assert len(body["data"]) <= limit
        assert (body["next_cursor"] is None) == (body["has_more"] is False)
        seen += [contact["id"] for contact in body["data"]]
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]
        if between_pages is not None:
            between_pages(page, seen)
    raise AssertionError("pagination does not terminate")


# --- Who is listed ----------------------------------------------------------------


def test_lists_only_contacts_opted_out_of_at_least_one_channel(api, make_contact):
    sms_out = make_contact(email="sms-out@example.com")
    set_preferences(api, sms_out, {"sms": "opted_out"})
    mixed = make_contact(email="mixed@example.com")
    set_preferences(api, mixed, {"sms": "opted_in", "voice": "opted_out", "email": "opted_in"})
    all_out = make_contact(email="all-out@example.com")
    set_preferences(api, all_out, dict.fromkeys(CHANNELS, "opted_out"))
    opted_in = make_contact(email="in@example.com")
    set_preferences(api, opted_in, dict.fromkeys(CHANNELS, "opted_in"))
    make_contact(email="never-asked@example.com")
    back_in = make_contact(email="back-in@example.com")
    set_preferences(api, back_in, {"sms": "opted_out", "email": "opted_out"})
    set_preferences(api, back_in, {"sms": "opted_in", "email": "opted_in"})
    back_unset = make_contact(email="back-unset@example.com")
    set_preferences(api, back_unset, {"whatsapp": "opted_out"})
    set_preferences(api, back_unset, {"whatsapp": "unset"})

    body = ok(api.get(OPTOUTS, {"limit": 100}))

    assert {contact["id"] for contact in body["data"]} == {sms_out.pk, mixed.pk, all_out.pk}
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    for contact in body["data"]:
        assert "opted_out" in contact["preferences"].values()
        assert contact == ok(api.get(f"{CONTACTS}/{contact['id']}"))


def test_empty_listing_is_an_empty_last_page(api, make_contact):
    make_contact(email="in@example.com")

    assert ok(api.get(OPTOUTS)) == {"data": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize("channel", CHANNELS)
def test_channel_narrows_to_contacts_opted_out_of_that_channel(api, make_contact, channel):
    per_channel = {}
    for name in CHANNELS:
        contact = make_contact(email=f"{name}@example.com")
        set_preferences(api, contact, {name: "opted_out"})
        per_channel[name] = contact
    several = make_contact(email="several@example.com")
    set_preferences(api, several, {"sms": "opted_out", "voice": "opted_out", "email": "opted_out"})
    opted_in = make_contact(email="in@example.com")
    set_preferences(api, opted_in, dict.fromkeys(CHANNELS, "opted_in"))
    other_statuses = make_contact(email="other@example.com")
    set_preferences(api, other_statuses, {**dict.fromkeys(CHANNELS, "opted_out"), channel: "opted_in"})

    expected = {per_channel[channel].pk}
    if channel in ("sms", "voice", "email"):
        expected.add(several.pk)

    assert optout_ids(api, channel=channel) == expected
    assert optout_ids(api) == {c.pk for c in per_channel.values()} | {several.pk, other_statuses.pk}


@pytest.mark.parametrize("channel", ["fax", "SMS", "Email", " sms", "sms ", "opted_out", "sms,email", "all", "0", ""])
def test_unknown_channel_is_400(api, make_contact, channel):
    contact = make_contact(email="ada@example.com")
    set_preferences(api, contact, {"sms": "opted_out"})

    assert_invalid(api.get(OPTOUTS, {"channel": channel}), "channel")


# --- Search -----------------------------------------------------------------------


def test_search_works_as_on_the_contact_listing_and_combines_with_channel(api, make_contact):
    ada_sms = make_contact(email="ada.lovelace@example.com", first_name="Ada", last_name="Lovelace")
    set_preferences(api, ada_sms, {"sms": "opted_out"})
    ada_email = make_contact(email="ada.king@example.org", first_name="Ada", last_name="King", phone="+14155552671")
    set_preferences(api, ada_email, {"email": "opted_out"})
    ada_in = make_contact(email="ada.byron@example.com", first_name="Ada", last_name="Byron")
    set_preferences(api, ada_in, {"sms": "opted_in"})
    grace = make_contact(email="grace@navy.example", first_name="Grace", last_name="Hopper", phone="+12125550100")
    set_preferences(api, grace, {"sms": "opted_out"})
    jose = make_contact(email="jose@example.com", first_name="José", last_name="Müller")
    set_preferences(api, jose, {"viber": "opted_out"})

    assert optout_ids(api, search="ada") == {ada_sms.pk, ada_email.pk}
    assert optout_ids(api, search="ADA", channel="sms") == {ada_sms.pk}
    assert optout_ids(api, search="ada", channel="email") == {ada_email.pk}
    assert optout_ids(api, search="ada", channel="voice") == set()
    assert optout_ids(api, search="lovelace ada") == {ada_sms.pk}
    assert optout_ids(api, search="byron") == set()
    assert optout_ids(api, search="example.com") == {ada_sms.pk, jose.pk}
    assert optout_ids(api, search="navy.example") == {grace.pk}
    assert optout_ids(api, search="2671") == {ada_email.pk}
    assert optout_ids(api, search="+1 (415) 555-2671") == {ada_email.pk}
    assert optout_ids(api, search="212555", channel="sms") == {grace.pk}
    assert optout_ids(api, search="212555", channel="email") == set()
    assert optout_ids(api, search="jose mull") == {jose.pk}
    assert optout_ids(api, search="!!! ---") == set()
    assert optout_ids(api, search="nobody") == set()


def test_search_combines_with_pagination(api, account, make_contact):
    matching = []
    for i in range(7):
        contact = make_contact(email=f"ada{i}@example.com", first_name="Ada")
        set_preferences(api, contact, {"sms": "opted_out"})
        set_created_at(contact, BASE + datetime.timedelta(minutes=i))
        matching.append(contact.pk)
        other = make_contact(email=f"grace{i}@example.com", first_name="Grace")
        set_preferences(api, other, {"sms": "opted_out"})
        set_created_at(other, BASE + datetime.timedelta(minutes=i))

    assert walk(api, 2, {"search": "ada", "channel": "sms"}) == newest_first(account, matching)


def test_search_longer_than_the_limit_is_400(api):
    assert_invalid(api.get(OPTOUTS, {"search": "a" * 201}), "search")


# --- Order and pagination -------------------------------------------------------------


def test_newest_first_then_by_id_desc(api, account, make_contact):
    opted_out = []
    for i in range(9):
        contact = make_contact(email=f"c{i}@example.com")
        set_preferences(api, contact, {CHANNELS[i % 6]: "opted_out"})
        # Three timestamps, assigned out of creation order, so ties are broken by id.
        set_created_at(contact, BASE + datetime.timedelta(hours=(i * 7) % 3))
        opted_out.append(contact.pk)
        make_contact(email=f"in{i}@example.com")
    expected = newest_first(account, opted_out)

    assert ids(api.get(OPTOUTS, {"limit": 100})) == expected
    stored = dict(Contact.objects.filter(pk__in=opted_out).values_list("id", "created_at"))
    assert expected == sorted(opted_out, key=lambda contact_id: (stored[contact_id], contact_id), reverse=True)


@pytest.mark.parametrize("params", [{}, {"channel": "sms"}])
def test_keyset_walk_with_limit_2_yields_each_exactly_once(api, account, make_contact, params):
    opted_out = []
    for i in range(11):
        contact = make_contact(email=f"out{i}@example.com")
        set_preferences(api, contact, {"sms": "opted_out"} if i % 4 else {"sms": "opted_out", "email": "opted_out"})
        # Pairs share a created_at, so the id tie-break is walked too.
        set_created_at(contact, BASE + datetime.timedelta(minutes=i // 2))
        opted_out.append(contact.pk)
        not_listed = make_contact(email=f"in{i}@example.com")
        set_preferences(api, not_listed, {"sms": "opted_in"} if i % 2 else {"email": "opted_out"} if params else {})
        set_created_at(not_listed, BASE + datetime.timedelta(minutes=i // 2))
    if not params:
        opted_out += [
            contact.pk
            for contact in Contact.objects.for_account(account)
            if "opted_out" in contact.preference_map.values() and contact.pk not in opted_out
        ]

    walked = walk(api, 2, params)

    assert len(walked) == len(set(walked))
    assert walked == newest_first(account, opted_out)


def test_walk_while_contacts_opt_out_and_are_deleted_yields_each_stable_one_once(api, account, make_contact):
    stable = []
    for i in range(10):
        contact = make_contact(email=f"c{i}@example.com")
        set_preferences(api, contact, {"voice": "opted_out"})
        set_created_at(contact, BASE + datetime.timedelta(minutes=i))
        stable.append(contact.pk)
    doomed = make_contact(email="doomed@example.com")
    set_preferences(api, doomed, {"voice": "opted_out"})
    set_created_at(doomed, BASE - datetime.timedelta(minutes=1))
    counter = iter(range(100))

    def mutate(page, seen):
        if page == 1:
            assert api.delete(f"{CONTACTS}/{doomed.pk}").status_code == 204
        for minutes in (-30, 5, 60):
            contact = make_contact(email=f"new{next(counter)}@example.com")
            set_preferences(api, contact, {"voice": "opted_out"})
            set_created_at(contact, BASE + datetime.timedelta(minutes=minutes))

    walked = walk(api, 3, {"channel": "voice"}, between_pages=mutate)

    assert len(walked) == len(set(walked))
    assert set(stable) <= set(walked)
    assert doomed.pk not in walked
    assert [contact_id for contact_id in walked if contact_id in stable] == newest_first(account, stable)


def test_default_limit_is_20(api, make_contact):
    with transaction.atomic():
        for i in range(21):
            contact = make_contact(email=f"c{i}@example.com")
            set_preferences(api, contact, {"rcs": "opted_out"})

    body = ok(api.get(OPTOUTS))

    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)
    assert len(ok(api.get(OPTOUTS, {"cursor": body["next_cursor"]}))["data"]) == 1


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "1.5", "2e1", " 5"])
def test_limit_out_of_range_or_not_an_integer_is_400(api, make_contact, limit):
    contact = make_contact(email="ada@example.com")
    set_preferences(api, contact, {"sms": "opted_out"})

    assert_invalid(api.get(OPTOUTS, {"limit": limit}), "limit")
    assert_invalid(api.get(OPTOUTS, {"limit": limit, "channel": "sms"}), "limit")


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(api, make_contact, limit):
    for i in range(3):
        contact = make_contact(email=f"c{i}@example.com")
        set_preferences(api, contact, {"sms": "opted_out"})

    body = ok(api.get(OPTOUTS, {"limit": limit}))

    assert len(body["data"]) == min(limit, 3)
    assert body["has_more"] is (limit < 3)


def test_malformed_or_tampered_cursor_is_400(api, make_contact):
    for i in range(3):
        contact = make_contact(email=f"c{i}@example.com")
        set_preferences(api, contact, {"sms": "opted_out"})
    cursor = ok(api.get(OPTOUTS, {"limit": 1}))["next_cursor"]
    assert isinstance(cursor, str)
    flipped = ("A" if cursor[5] != "A" else "B").join((cursor[:5], cursor[6:]))

    for bad in ["", "abc", "null", cursor[:-3], flipped, cursor + "x", '["2026-01-01T00:00:00+00:00", "con_x"]']:
        assert_invalid(api.get(OPTOUTS, {"cursor": bad}), "cursor")
        assert_invalid(api.get(OPTOUTS, {"cursor": bad, "channel": "sms"}), "cursor")


def test_list_runs_a_constant_number_of_queries(api, account, make_contact, django_assert_num_queries, hot_api_key):
    with transaction.atomic():
        for i in range(40):
            contact = make_contact(email=f"c{i}@example.com", tags=["a"], metadata={"i": i})
            contact_set_preferences(
                account=account,
                contact_id=contact.pk,
                statuses={CHANNELS[i % 6]: "opted_out", CHANNELS[(i + 1) % 6]: "opted_in"},
                api_key_id=None,
            )
    api.get(OPTOUTS, {"limit": 1})  # warm-up

    with django_assert_num_queries(1):
        small = ok(api.get(OPTOUTS, {"limit": 2}))
    with django_assert_num_queries(1):
        large = ok(api.get(OPTOUTS, {"limit": 30, "channel": "sms"}))
    with django_assert_num_queries(1):
        deep = ok(api.get(OPTOUTS, {"limit": 30, "cursor": small["next_cursor"], "search": "example"}))

    assert len(small["data"]) == 2
    assert len(large["data"]) == 7
    assert len(deep["data"]) == 30


# --- Tenancy ----------------------------------------------------------------------------


def test_other_accounts_never_appear(api, other_api, account, other_account, make_contact):
    mine = make_contact(email="ada@example.com", phone="+14155552671", first_name="Ada")
    set_preferences(api, mine, {"sms": "opted_out"})
    theirs = []
    for i, channel in enumerate(CHANNELS):
        contact = make_contact(
            account=other_account, email=f"ada{i}@example.com", first_name="Ada", phone=f"+1415555267{i + 2}"
        )
        set_preferences(other_api, contact, {channel: "opted_out"})
        theirs.append(contact.pk)
    same_identifiers = make_contact(account=other_account, email="ada@example.com", phone="+14155552671")
    set_preferences(other_api, same_identifiers, dict.fromkeys(CHANNELS, "opted_out"))
    theirs.append(same_identifiers.pk)

    assert optout_ids(api) == {mine.pk}
    assert walk(api, 1) == [mine.pk]
    for channel in CHANNELS:
        assert optout_ids(api, channel=channel) == ({mine.pk} if channel == "sms" else set())
    assert optout_ids(api, search="ada") == {mine.pk}
    assert optout_ids(api, search="4155552671") == {mine.pk}
    assert optout_ids(api, search="ada", channel="voice") == set()
    assert optout_ids(other_api) == set(theirs)
    assert optout_ids(other_api, channel="sms") == {theirs[0], same_identifiers.pk}
    assert set(walk(other_api, 2)) == set(theirs)


def test_without_a_valid_key_is_401(anonymous_api, make_contact):
    contact = make_contact(email="ada@example.com")
    contact_set_preferences(
        account=contact.account, contact_id=contact.pk, statuses={"sms": "opted_out"}, api_key_id=None
    )

    assert_error(anonymous_api.get(OPTOUTS), 401, "client_error", [None])
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer ck_abcdefghijkl_" + "x" * 32)
    assert_error(anonymous_api.get(OPTOUTS, {"channel": "sms"}), 401, "client_error", [None])


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_on_optouts_are_405(api, method):
    response = getattr(api, method)(OPTOUTS, {}, format="json")

    assert_error(response, 405, "client_error", [None], code="method_not_allowed")


# --- Served by the partial indexes --------------------------------------------------------


def _bulk_contacts(account, count, prefix):
    rows = []
    for i in range(count):
        email = f"{prefix}{i}@d{i % 97}.example"
        phone = f"+1415{2000000 + i:07d}"
        if i % 97 == 0:
            preferences = {"sms": "opted_out", "email": "opted_in"}
        elif i % 89 == 0:
            preferences = {"email": "opted_out"}
        elif i % 3 == 0:
            preferences = {"sms": "opted_in", "whatsapp": "opted_in"}
        else:
            preferences = {}
        rows.append(
            Contact(
                account=account,
                phone=phone,
                email=email,
                first_name=f"First{i}",
                last_name=f"Last{i}",
                country="US",
                preferences=preferences,
                created_at=BASE - datetime.timedelta(minutes=i),
                updated_at=BASE - datetime.timedelta(minutes=i),
                **search_columns(
                    account_id=account.pk, phone=phone, email=email, first_name=f"First{i}", last_name=f"Last{i}"
                ),
            )
        )
    Contact.objects.bulk_create(rows, batch_size=1000)


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _page_query(account, params):
    """The page the optouts action runs: the account's contacts through OptoutFilter, newest first, limit + 1."""
    filterset = OptoutFilter(data=params, queryset=Contact.objects.for_account(account))
    assert filterset.is_valid(), filterset.errors
    return filterset.qs.order_by("-created_at", "-id")


@pytest.mark.parametrize("params", [{"channel": "sms"}, {}], ids=["channel-sms", "no-channel"])
def test_optout_pages_are_served_by_a_partial_index_not_a_sequential_scan(account, other_account, params):
    _bulk_contacts(account, 3000, "a")
    _bulk_contacts(other_account, 1500, "b")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    ordered = _page_query(account, params)
    sms = sum(1 for i in range(3000) if i % 97 == 0)
    email = sum(1 for i in range(3000) if i % 97 and i % 89 == 0)
    expected_count = sms if params else sms + email
    rows = list(ordered.all())
    assert len(rows) == expected_count
    assert all("opted_out" in contact.preference_map.values() for contact in rows)
    middle = rows[10]
    # A later page, with the keyset condition the paginator adds after a cursor.
    later = ordered.filter(Seek(("-created_at", "-id"), [middle.created_at, middle.id]))
    pages = {"first page": ordered[:21], "later page": later[:21]}
    assert list(later.all()[:21]) == rows[11:32]

    plans = {name: _plan(queryset) for name, queryset in pages.items()}

    for name, plan in plans.items():
        assert re.search(r"\bcontact_optout_(sms|whatsapp|email|rcs|viber|voice|any)\b", plan), (name, plan)
        assert "Seq Scan on contacts_contact" not in plan, (name, plan)
