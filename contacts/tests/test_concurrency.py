"""Parallel writers (API.md §4): no lost update, no duplicate row.

Each request runs in its own thread with its own database connection, all
released together by a barrier, against committed data (transactional test).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from contacts.models import Contact, SearchWord
from contacts.search import account_tag

# Dozens of connections at once: such tests take turns across xdist workers (conftest.py).
pytestmark = pytest.mark.many_connections


def _in_parallel(raw_key, count, send):
    """Run ``send(client, i)`` for i in 0..count-1 in ``count`` threads started together."""
    barrier = threading.Barrier(count)

    def run(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=30)
            return send(client, i)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.django_db(transaction=True)
def test_parallel_metadata_merges_keep_every_key(api, make_contact):
    contact = make_contact(email="ada@example.com")

    responses = _in_parallel(
        api.raw_key,
        50,
        lambda client, i: client.patch(f"/v1/contacts/{contact.id}", {"metadata": {f"k{i}": i}}, format="json"),
    )

    assert [response.status_code for response in responses] == [200] * 50
    contact.refresh_from_db()
    assert contact.metadata == {f"k{i}": i for i in range(50)}
    assert api.get(f"/v1/contacts/{contact.id}").json()["metadata"] == {f"k{i}": i for i in range(50)}


@pytest.mark.django_db(transaction=True)
def test_parallel_tag_appends_keep_every_tag_once(api, make_contact):
    contact = make_contact(email="ada@example.com", tags=["seed"])

    responses = _in_parallel(
        api.raw_key,
        50,
        lambda client, i: client.post(f"/v1/contacts/{contact.id}/tags", {"tags": [f"t{i}", "seed"]}, format="json"),
    )

    assert [response.status_code for response in responses] == [200] * 50
    contact.refresh_from_db()
    assert contact.tags[0] == "seed"
    assert len(contact.tags) == 51
    assert sorted(contact.tags) == sorted(["seed", *(f"t{i}" for i in range(50))])
    assert api.get("/v1/contacts", {"tag": "t49"}).json()["data"][0]["id"] == contact.id


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_of_one_phone_give_one_201_and_409s_naming_it(api, account):
    responses = _in_parallel(
        api.raw_key,
        20,
        lambda client, i: client.post(
            "/v1/contacts", {"phone": "+1 (415) 555-2671", "first_name": f"Ada{i}"}, format="json"
        ),
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    created = next(response.json() for response in responses if response.status_code == 201)
    for response in responses:
        if response.status_code != 409:
            continue
        body = response.json()
        assert body["type"] == "client_error"
        assert [(error["code"], error["attr"]) for error in body["errors"]] == [("duplicate", "phone")]
        assert created["id"] in body["errors"][0]["detail"]
    assert list(Contact.objects.for_account(account).values_list("id", "phone")) == [(created["id"], "+14155552671")]


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_of_one_email_in_any_case_give_one_201(api, account):
    responses = _in_parallel(
        api.raw_key,
        20,
        lambda client, i: client.post(
            "/v1/contacts", {"email": "Ada@Example.com" if i % 2 else "ada@example.COM"}, format="json"
        ),
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    created = next(response.json() for response in responses if response.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            assert [(error["code"], error["attr"]) for error in response.json()["errors"]] == [("duplicate", "email")]
            assert created["id"] in response.json()["errors"][0]["detail"]
    assert Contact.objects.for_account(account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_of_a_new_name_are_all_found_by_a_search_that_completes_its_words(api, account):
    responses = _in_parallel(
        api.raw_key,
        20,
        lambda client, i: client.post(
            "/v1/contacts",
            {"first_name": "Zebulon", "last_name": "Quuxley", "phone": f"+1415555{2600 + i}"},
            format="json",
        ),
    )
    assert [response.status_code for response in responses] == [201] * 20

    found = api.get("/v1/contacts", {"search": "Zebulon Quux", "limit": 50}).json()["data"]

    assert sorted(contact["id"] for contact in found) == sorted(response.json()["id"] for response in responses)
    tag = account_tag(account.pk)
    # Each writer that saw no committed "zebulon" added it: a word may be there more than once, never missing.
    words = set(SearchWord.objects.filter(lexeme__startswith=tag).values_list("lexeme", flat=True))
    assert words == {tag + "zebulon", tag + "quuxley"}
