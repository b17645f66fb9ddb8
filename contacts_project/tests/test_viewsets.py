"""The base viewset's object lookup, compiled once (contacts_project.api.viewsets.DetailLookup)."""

import pytest
from django.db import ProgrammingError, connection, transaction
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from contacts.api.serializers import ContactSerializer
from contacts.api.views import ContactViewSet
from contacts.models import ActivityEvent, Contact
from contacts_project.api.viewsets import AccountScopedViewSet, DetailLookup, representer
from lists.api.serializers import ContactListSerializer
from lists.api.views import ContactListViewSet
from lists.models import ContactList
from segments.api.views import SegmentViewSet


def test_each_viewsets_lookup_is_compiled_once_scoped_to_the_account():
    for viewset in (ContactViewSet, ContactListViewSet, SegmentViewSet):
        lookup = DetailLookup.of(viewset)

        assert DetailLookup.of(viewset) is lookup
        table = viewset.queryset.model._meta.db_table
        assert f'"{table}"."account_id" = %s' in lookup.sql
        assert f'"{table}"."id" = %s' in lookup.sql
        assert sorted(lookup.params, key=str) == [DetailLookup._ACCOUNT, DetailLookup._VALUE]


def test_querysets_a_raw_query_cannot_load_keep_the_orm_lookup():
    class Joined(AccountScopedViewSet):
        queryset = ActivityEvent.objects.select_related("contact")

    class Annotated(AccountScopedViewSet):
        queryset = Contact.objects.annotate(one=Value(1))

    assert DetailLookup.of(Joined) is None
    assert DetailLookup.of(Annotated) is None


def test_a_contact_is_read_in_one_query_with_the_orms_fields_and_values(
    api, make_contact, hot_api_key, django_assert_num_queries
):
    contact = make_contact(
        phone="+14155552671", email="ada@example.com", first_name="Ada", tags=["vip"], metadata={"plan": "pro"}
    )
    api.get("/v1/contacts")  # warm-up: the key is remembered

    with django_assert_num_queries(1):
        response = api.get(f"/v1/contacts/{contact.id}")

    assert response.status_code == 200
    assert response.json() == ContactSerializer(Contact.objects.for_output().get(pk=contact.pk)).data


def test_reads_are_represented_by_one_serializer_per_class_that_keeps_nothing_between_objects(account, make_contact):
    ada = make_contact(email="ada@example.com", first_name="Ada", tags=["vip"])
    bob = make_contact(phone="+14155552671", first_name="Bob", metadata={"plan": "pro"})
    newsletter, vips = (ContactList.objects.create(account=account, name=name) for name in ("Newsletter", "VIPs"))

    assert representer(ContactSerializer) is representer(ContactSerializer)
    assert representer(ContactListSerializer) is not representer(ContactSerializer)
    for contact in (ada, bob, ada):
        assert representer(ContactSerializer).to_representation(contact) == ContactSerializer(contact).data
    # A ModelSerializer too: its bound fields are shared, their values are not.
    for contact_list in (newsletter, vips):
        expected = ContactListSerializer(contact_list).data
        assert representer(ContactListSerializer).to_representation(contact_list) == expected
        assert ContactListViewSet().detail_data(contact_list) == expected


def test_another_accounts_id_and_an_unknown_id_are_both_404(api, other_api, make_contact):
    contact = make_contact(email="ada@example.com")

    other = other_api.get(f"/v1/contacts/{contact.id}")
    missing = api.get("/v1/contacts/con_missing")

    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json() == missing.json()
    assert api.get(f"/v1/contacts/{contact.id}").status_code == 200


def test_the_lookup_is_prepared_once_per_connection_and_django_still_sees_it(api, make_contact, hot_api_key):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    contacts = [make_contact(email=f"user{number}@example.com") for number in range(3)]
    api.get("/v1/contacts")  # warm-up: the key is remembered

    with CaptureQueriesContext(connection) as queries:
        for contact in contacts:
            assert api.get(f"/v1/contacts/{contact.id}").json()["id"] == contact.id
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['%"contacts_contact"%'])
        prepared = [statement for (statement,) in cursor.fetchall()]

    # Query logging and execute wrappers see every lookup, with its values ...
    sql = DetailLookup.of(ContactViewSet).sql.replace("%s", "'{}'")
    assert [query["sql"] for query in queries.captured_queries] == [
        sql.format(contact.account_id, contact.id) for contact in contacts
    ]
    # ... and the server planned the statement once, for all three.
    assert len(prepared) == 1
    assert '"contacts_contact"."id" = $2' in prepared[0]


def test_unobserved_lookups_share_one_kept_cursor(api, make_contact, hot_api_key):
    contacts = [make_contact(email=f"user{number}@example.com") for number in range(3)]
    api.get("/v1/contacts")  # warm-up: the key is remembered
    assert not connection.execute_wrappers
    assert not connection.queries_logged

    kept = []
    for contact in contacts:
        assert api.get(f"/v1/contacts/{contact.id}").json()["id"] == contact.id
        kept.append(connection._kept_cursors[True])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ['%"contacts_contact"%'])
        (prepared,) = cursor.fetchone()

    assert kept[0] is not None
    assert all(cursor is kept[0] for cursor in kept)
    assert prepared == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False])
def test_a_replaced_connection_gets_a_new_kept_cursor(prepared):
    fetch = connection.fetch_prepared if prepared else connection.fetch_all
    assert fetch("SELECT %s::text", ["before"]) == [("before",)]
    kept = connection._kept_cursors[prepared]

    # Closed here; in production by a database restart or CONN_MAX_AGE.
    connection.close()

    assert fetch("SELECT %s::text", ["after"]) == [("after",)]
    assert connection._kept_cursors[prepared] is not kept
    assert connection._kept_cursors[prepared].connection is connection.connection


def test_fetch_all_binds_as_cursor_binds_and_prepares_nothing(db):
    statement = "SELECT %s::text, %s::int -- fetch_all"
    rows = [connection.fetch_all(statement, ["it's", number]) for number in range(6)]
    kept = connection._kept_cursors[False]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%fetch_all%"])
        (prepared,) = cursor.fetchone()

    assert rows == [[("it's", number)] for number in range(6)]
    assert kept.connection is connection.connection
    assert prepared == 0  # six runs: past psycopg's prepare threshold, yet planned each time
    with CaptureQueriesContext(connection) as queries:
        assert connection.fetch_all(statement, ["seen", 7]) == [("seen", 7)]
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT 'seen'::text, 7::int -- fetch_all"]


def test_unobserved_lookup_errors_are_djangos_database_errors(db):
    with pytest.raises(ProgrammingError), transaction.atomic():
        connection.fetch_prepared("SELECT * FROM no_such_table WHERE id = %s", ["x"])

    assert connection.fetch_prepared("SELECT %s::text", ["ok"]) == [("ok",)]
