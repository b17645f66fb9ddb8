"""Parallel writers to list memberships (API.md §7): ``member_count`` stays exact, "added" never double counts.

Each request runs in its own thread with its own database connection, all
released together by a barrier, against committed data (transactional test).
"""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from contacts.models import Contact
from lists.models import ContactList, ListMembership

LISTS = "/v1/contacts/lists"

# Dozens of connections at once: such tests take turns across xdist workers (conftest.py).
pytestmark = pytest.mark.many_connections


def _in_parallel(raw_key, jobs):
    """Run every ``job(client)`` in its own thread, all started together; their answers in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=30)
            return job(client)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _create_list(api, name):
    response = api.post(LISTS, {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _contacts(make_contact, count, prefix):
    return [make_contact(email=f"{prefix}{i}@example.com").id for i in range(count)]


def _add(list_id, contact_ids):
    return lambda client: client.post(f"{LISTS}/{list_id}/members", {"contact_ids": contact_ids}, format="json")


def _remove(list_id, contact_id):
    return lambda client: client.delete(f"{LISTS}/{list_id}/members/{contact_id}")


def _delete_contact(contact_id):
    return lambda client: client.delete(f"/v1/contacts/{contact_id}")


def _members(list_id):
    return set(ListMembership.objects.filter(contact_list_id=list_id).values_list("contact_id", flat=True))


def _assert_count_is_exact(api, list_id):
    stored = ListMembership.objects.filter(contact_list_id=list_id).count()
    assert ContactList.objects.get(pk=list_id).member_count == stored
    assert api.get(f"{LISTS}/{list_id}").json()["member_count"] == stored
    return stored


def _statuses(responses):
    return [response.status_code for response in responses]


@pytest.mark.django_db(transaction=True)
def test_parallel_adds_of_overlapping_ids_count_each_membership_once(api, make_contact):
    list_id = _create_list(api, "Newsletter")
    people = _contacts(make_contact, 60, "c")
    rng = random.Random(7)
    requests = []
    for i in range(24):
        window = [people[(i * 3 + offset) % 60] for offset in range(25)]
        rng.shuffle(window)
        requests.append([*window, window[0], window[1]])  # duplicates inside a request count once

    responses = _in_parallel(api.raw_key, [_add(list_id, ids) for ids in requests])

    assert _statuses(responses) == [200] * len(requests), [r.content for r in responses if r.status_code != 200]
    for ids, response in zip(requests, responses, strict=True):
        body = response.json()
        assert set(body) == {"added", "already_members"}
        assert body["added"] + body["already_members"] == len(set(ids))
    expected = {contact_id for ids in requests for contact_id in ids}
    assert _members(list_id) == expected
    assert sum(response.json()["added"] for response in responses) == len(expected)
    assert _assert_count_is_exact(api, list_id) == len(expected)


@pytest.mark.django_db(transaction=True)
def test_parallel_adds_of_the_same_ids_add_them_once_in_total(api, make_contact):
    list_id = _create_list(api, "Newsletter")
    people = _contacts(make_contact, 30, "c")

    responses = _in_parallel(api.raw_key, [_add(list_id, people) for _ in range(20)])

    assert _statuses(responses) == [200] * 20
    assert sum(response.json()["added"] for response in responses) == 30
    assert sum(response.json()["already_members"] for response in responses) == 19 * 30
    assert _members(list_id) == set(people)
    assert _assert_count_is_exact(api, list_id) == 30


@pytest.mark.django_db(transaction=True)
def test_parallel_adds_to_several_lists_in_different_orders(api, make_contact):
    list_ids = [_create_list(api, f"List {i}") for i in range(3)]
    people = _contacts(make_contact, 30, "c")
    jobs = []
    for i in range(24):
        ids = people[i % 10 :] if i % 2 else list(reversed(people))[: 20 + i % 10]
        jobs.append(_add(list_ids[i % 3], ids))

    responses = _in_parallel(api.raw_key, jobs)

    assert _statuses(responses) == [200] * len(jobs)
    total_added = sum(response.json()["added"] for response in responses)
    assert total_added == ListMembership.objects.count()
    for list_id in list_ids:
        _assert_count_is_exact(api, list_id)


@pytest.mark.django_db(transaction=True)
def test_parallel_removes_keep_the_count_exact(api, make_contact):
    list_id = _create_list(api, "Newsletter")
    people = _contacts(make_contact, 30, "c")
    assert api.post(f"{LISTS}/{list_id}/members", {"contact_ids": people}, format="json").status_code == 200
    # Each of the first 20 members is removed by two requests at once.
    jobs = [_remove(list_id, people[i % 20]) for i in range(40)]

    responses = _in_parallel(api.raw_key, jobs)

    assert _statuses(responses) == [204] * 40
    assert _members(list_id) == set(people[20:])
    assert _assert_count_is_exact(api, list_id) == 10


@pytest.mark.django_db(transaction=True)
def test_parallel_adds_and_removes_of_the_same_contacts_keep_the_count_exact(api, make_contact):
    list_id = _create_list(api, "Newsletter")
    people = _contacts(make_contact, 20, "c")
    assert api.post(f"{LISTS}/{list_id}/members", {"contact_ids": people[:10]}, format="json").status_code == 200
    rng = random.Random(11)
    jobs = []
    for i in range(40):
        if i % 2:
            jobs.append(_remove(list_id, people[i % 20]))
        else:
            ids = list(people)
            rng.shuffle(ids)
            jobs.append(_add(list_id, ids))

    responses = _in_parallel(api.raw_key, jobs)

    assert _statuses(responses) == [204 if i % 2 else 200 for i in range(40)], [
        response.content for response in responses if response.status_code >= 500
    ]
    _assert_count_is_exact(api, list_id)


@pytest.mark.django_db(transaction=True)
def test_parallel_contact_deletions_and_removes_beside_adds_of_other_contacts(api, make_contact):
    """Deleting member contacts and removing members while other contacts are added to the same lists."""
    newsletter = _create_list(api, "Newsletter")
    promos = _create_list(api, "Promos")
    members = _contacts(make_contact, 20, "member")
    fresh = _contacts(make_contact, 20, "fresh")
    for list_id in (newsletter, promos):
        assert api.post(f"{LISTS}/{list_id}/members", {"contact_ids": members}, format="json").status_code == 200
    jobs = [_delete_contact(contact_id) for contact_id in members[:10]]
    jobs += [_remove(newsletter, contact_id) for contact_id in members[10:]]
    jobs += [_add(promos if i % 2 else newsletter, fresh[i : i + 8]) for i in range(12)]

    responses = _in_parallel(api.raw_key, jobs)

    assert _statuses(responses) == [204] * 20 + [200] * 12, [r.content for r in responses if r.status_code >= 500]
    expected = {
        newsletter: {contact_id for i in range(0, 12, 2) for contact_id in fresh[i : i + 8]},
        promos: set(members[10:]) | {contact_id for i in range(1, 12, 2) for contact_id in fresh[i : i + 8]},
    }
    assert sum(response.json()["added"] for response in responses[20:]) == len(expected[newsletter]) + len(
        expected[promos] - set(members)
    )
    for list_id in (newsletter, promos):
        assert _members(list_id) == expected[list_id]
        assert _assert_count_is_exact(api, list_id) == len(expected[list_id])
    assert not Contact.objects.filter(pk__in=members[:10]).exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_adds_removes_and_contact_deletions_keep_counts_exact(api, make_contact):
    newsletter = _create_list(api, "Newsletter")
    promos = _create_list(api, "Promos")
    kept = _contacts(make_contact, 20, "kept")  # members of both lists; the first 10 get removed from newsletter
    doomed = _contacts(make_contact, 10, "doomed")  # members of both lists; each deleted as a contact
    fresh = _contacts(make_contact, 20, "fresh")  # not members; added by the bulk adds
    for list_id in (newsletter, promos):
        response = api.post(f"{LISTS}/{list_id}/members", {"contact_ids": kept + doomed}, format="json")
        assert response.json() == {"added": 30, "already_members": 0}
    rng = random.Random(5)
    jobs = []  # (kind, list id, contact ids, request)
    for i in range(16):
        # Fresh contacts, members that stay, and one member that is being deleted meanwhile.
        ids = [*fresh[i : i + 6], *kept[10 + i % 10 : 13 + i % 10], doomed[i % 10]]
        rng.shuffle(ids)
        list_id = newsletter if i % 2 else promos
        jobs.append(("add", list_id, ids, _add(list_id, ids)))
    jobs += [("remove", newsletter, [kept[i % 10]], _remove(newsletter, kept[i % 10])) for i in range(20)]
    jobs += [("delete", None, [contact_id], _delete_contact(contact_id)) for contact_id in doomed]
    rng.shuffle(jobs)

    responses = _in_parallel(api.raw_key, [job[-1] for job in jobs])

    answers = list(zip(jobs, responses, strict=True))
    added = dict.fromkeys((newsletter, promos), 0)
    expected_fresh = {newsletter: set(), promos: set()}
    for (kind, list_id, ids, _), response in answers:
        if kind != "add" or response.status_code != 200:
            continue
        body = response.json()
        assert body["added"] + body["already_members"] == len(set(ids))
        added[list_id] += body["added"]
        expected_fresh[list_id] |= set(ids) & set(fresh)
    # The counts first, so a failure below still tells whether they held.
    for list_id in (newsletter, promos):
        _assert_count_is_exact(api, list_id)
        # Every membership the adds created is of a fresh contact: the others were members already.
        assert added[list_id] == len(expected_fresh[list_id])
    assert _members(newsletter) - set(doomed) == set(kept[10:]) | expected_fresh[newsletter]
    assert _members(promos) - set(doomed) == set(kept) | expected_fresh[promos]

    assert [(kind, r.status_code, r.content) for (kind, *_), r in answers if r.status_code >= 500] == []
    assert sorted(r.status_code for (kind, *_), r in answers if kind == "delete") == [204] * 10
    assert sorted(r.status_code for (kind, *_), r in answers if kind == "remove") == [204] * 20
    for (kind, *_), response in answers:
        if kind == "add" and response.status_code != 200:
            # Its deleted contact was gone first: unknown, and nothing of the request was added.
            assert response.status_code == 400, response.content
            errors = response.json()["errors"]
            assert [error["attr"] for error in errors] == ["contact_ids"]
            assert any(contact_id in errors[0]["detail"] for contact_id in doomed)
    assert not Contact.objects.filter(pk__in=doomed).exists()
    assert ListMembership.objects.filter(contact_id__in=doomed).count() == 0
