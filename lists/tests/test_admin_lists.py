"""The operators' admin for lists and memberships: lists.services writes, form errors instead of 500s."""

import re

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from contacts.models import Contact
from lists.models import ContactList, ListMembership
from lists.services import list_add_members, list_create

LISTS = reverse("admin:lists_contactlist_changelist")
ADD_LIST = reverse("admin:lists_contactlist_add")
MEMBERSHIPS = reverse("admin:lists_listmembership_changelist")
ADD_MEMBERSHIP = reverse("admin:lists_listmembership_add")
CONTACTS = reverse("admin:contacts_contact_changelist")


def change_url(contact_list) -> str:
    return reverse("admin:lists_contactlist_change", args=[quote(contact_list.pk)])


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


@pytest.fixture
def newsletter(account):
    return list_create(account=account, name="Newsletter", description="Monthly")


def test_adding_a_list_creates_it_through_the_service(admin_client, account):
    response = admin_client.post(ADD_LIST, {"account": account.pk, "name": "VIPs", "description": "Best"})

    assert response.status_code == 302
    created = ContactList.objects.get(account=account)
    assert (created.name, created.description, created.member_count) == ("VIPs", "Best", 0)
    assert created.pk.startswith("lst_")


def test_a_duplicate_name_ignoring_case_is_a_form_error_naming_the_list(admin_client, account, newsletter):
    response = admin_client.post(ADD_LIST, {"account": account.pk, "name": "NEWSLETTER", "description": ""})

    assert form_errors(response) == {"name": [f"A list with this name already exists: {newsletter.pk}."]}
    assert ContactList.objects.count() == 1


def test_renaming_to_a_duplicate_is_a_form_error_and_changes_nothing(admin_client, account, newsletter):
    other = list_create(account=account, name="Other")

    response = admin_client.post(change_url(other), {"name": "newsletter", "description": "changed"})

    assert form_errors(response) == {"name": [f"A list with this name already exists: {newsletter.pk}."]}
    assert response.context["original"].name == "Other"
    other.refresh_from_db()
    assert (other.name, other.description) == ("Other", "")


def test_the_same_name_in_another_account_is_fine(admin_client, other_account, newsletter):
    response = admin_client.post(ADD_LIST, {"account": other_account.pk, "name": "Newsletter", "description": ""})

    assert response.status_code == 302
    assert ContactList.objects.filter(name="Newsletter").count() == 2


def test_changing_a_list_updates_it_through_the_service(admin_client, newsletter):
    stored_updated_at = newsletter.updated_at

    response = admin_client.post(change_url(newsletter), {"name": "Weekly", "description": "Every week"})

    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert (newsletter.name, newsletter.description) == ("Weekly", "Every week")
    assert newsletter.updated_at > stored_updated_at


def test_a_name_over_100_characters_is_a_form_error(admin_client, account):
    response = admin_client.post(ADD_LIST, {"account": account.pk, "name": "n" * 101, "description": ""})

    assert form_errors(response) == {"name": ["Ensure this value has at most 100 characters (it has 101)."]}
    assert ContactList.objects.count() == 0


def test_lists_show_member_counts_linked_to_their_members(admin_client, account, make_contact, newsletter):
    members = [make_contact(phone=f"+1415555000{number}") for number in range(3)]
    outsider = make_contact(phone="+14155550009")
    list_add_members(account=account, contact_list=newsletter, contact_ids=[contact.pk for contact in members])
    members_url = f"{CONTACTS}?list={newsletter.pk}"

    changelist = admin_client.get(LISTS).content.decode()
    change_page = admin_client.get(change_url(newsletter)).content.decode()
    members_page = admin_client.get(members_url)

    assert f'<a href="{members_url}">3 members</a>' in changelist
    assert f'<a href="{members_url}">3 members</a>' in change_page
    assert {contact.pk for contact in members_page.context["cl"].result_list} == {contact.pk for contact in members}
    assert outsider.pk not in {contact.pk for contact in members_page.context["cl"].result_list}


def test_list_changelist_runs_a_constant_number_of_queries(
    admin_client, account, other_account, django_assert_num_queries
):
    for number in range(3):
        list_create(account=account, name=f"List {number}")
    # Session, user, the account filter's choices, the count, the page.
    with django_assert_num_queries(5):
        assert admin_client.get(LISTS).status_code == 200
    for number in range(6):
        list_create(account=other_account, name=f"More {number}")
    with django_assert_num_queries(5):
        assert admin_client.get(LISTS).status_code == 200


def test_deleting_a_list_keeps_its_contacts(admin_client, account, make_contact, newsletter):
    contact = make_contact(phone="+14155550001")
    list_add_members(account=account, contact_list=newsletter, contact_ids=[contact.pk])

    confirmation = admin_client.get(reverse("admin:lists_contactlist_delete", args=[quote(newsletter.pk)]))
    assert confirmation.context["perms_lacking"] == set()
    response = admin_client.post(
        reverse("admin:lists_contactlist_delete", args=[quote(newsletter.pk)]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ContactList.objects.exists()
    assert not ListMembership.objects.exists()
    assert list(Contact.objects.values_list("pk", flat=True)) == [contact.pk]


# --- memberships -----------------------------------------------------------------------


def test_adding_a_membership_goes_through_list_add_members(admin_client, account, make_contact, newsletter):
    contact = make_contact(phone="+14155550001")

    response = admin_client.post(ADD_MEMBERSHIP, {"contact_list": newsletter.pk, "contact": contact.pk})

    assert response.status_code == 302
    assert list(ListMembership.objects.values_list("contact_list_id", "contact_id", "account_id")) == [
        (newsletter.pk, contact.pk, account.pk)
    ]
    newsletter.refresh_from_db()
    assert newsletter.member_count == 1


def test_a_membership_across_accounts_or_twice_is_a_form_error(
    admin_client, account, other_account, make_contact, newsletter
):
    stranger = make_contact(account=other_account, phone="+14155550001")
    member = make_contact(phone="+14155550002")
    list_add_members(account=account, contact_list=newsletter, contact_ids=[member.pk])

    across = admin_client.post(ADD_MEMBERSHIP, {"contact_list": newsletter.pk, "contact": stranger.pk})
    twice = admin_client.post(ADD_MEMBERSHIP, {"contact_list": newsletter.pk, "contact": member.pk})

    assert form_errors(across) == {"contact": ["This contact belongs to another account than the list."]}
    assert form_errors(twice) == {"contact": ["This contact is already a member of the list."]}
    assert list(ListMembership.objects.values_list("contact_id", flat=True)) == [member.pk]


def test_memberships_filter_by_list_and_contact_and_removal_uses_the_service(
    admin_client, account, make_contact, newsletter
):
    other_list = list_create(account=account, name="Other")
    first = make_contact(phone="+14155550001")
    second = make_contact(phone="+14155550002")
    list_add_members(account=account, contact_list=newsletter, contact_ids=[first.pk, second.pk])
    list_add_members(account=account, contact_list=other_list, contact_ids=[first.pk])

    def listed(**params):
        response = admin_client.get(MEMBERSHIPS, params)
        assert response.status_code == 200
        return {(row.contact_list_id, row.contact_id) for row in response.context["cl"].result_list}

    assert listed(contact_list=newsletter.pk) == {(newsletter.pk, first.pk), (newsletter.pk, second.pk)}
    assert listed(contact=first.pk) == {(newsletter.pk, first.pk), (other_list.pk, first.pk)}

    membership = ListMembership.objects.get(contact_list=newsletter, contact=second)
    response = admin_client.post(
        reverse("admin:lists_listmembership_delete", args=[quote(membership.pk)]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert listed(contact_list=newsletter.pk) == {(newsletter.pk, first.pk)}
    newsletter.refresh_from_db()
    assert newsletter.member_count == 1
    assert Contact.objects.filter(pk=second.pk).exists()


def test_membership_changelist_runs_a_constant_number_of_queries(
    admin_client, account, make_contact, newsletter, django_assert_num_queries
):
    contacts = [make_contact(phone=f"+141555500{number:02d}") for number in range(12)]
    list_add_members(account=account, contact_list=newsletter, contact_ids=[contacts[0].pk])
    # Session, user, the account filter's choices, the bounded count, the page (contacts and lists joined).
    with django_assert_num_queries(5):
        assert admin_client.get(MEMBERSHIPS).status_code == 200
    list_add_members(account=account, contact_list=newsletter, contact_ids=[contact.pk for contact in contacts])
    with django_assert_num_queries(5):
        response = admin_client.get(MEMBERSHIPS)
    assert len(response.context["cl"].result_list) == 12


def test_links_to_ids_holding_admin_escape_sequences_open_the_object(admin_client, account, make_contact):
    # The admin reads "_3D" in a URL as "="; ids are random, so some hold such a sequence.
    tricky = ContactList.objects.create(id="lst_3D5F2Fabcdefghij", account=account, name="Tricky")
    contact = make_contact(phone="+14155550001")
    list_add_members(account=account, contact_list=tricky, contact_ids=[contact.pk])
    contact_page = admin_client.get(reverse("admin:contacts_contact_change", args=[quote(contact.pk)]))
    link = re.search(r'<a href="([^"]+)">Tricky</a>', contact_page.content.decode()).group(1)

    response = admin_client.get(link)

    assert response.status_code == 200
    assert response.context["original"].pk == "lst_3D5F2Fabcdefghij"
