"""Every admin page an operator opens renders; every model is registered; keys are shown once."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Account, ApiKey
from contacts.models import ActivityEvent, Contact, SuppressionEntry
from contacts.services import activity_record, contact_delete, contact_set_preferences
from lists.models import ContactList, ListMembership
from lists.services import list_add_members, list_create
from segments.models import Segment
from segments.services import segment_create


@pytest.fixture
def staff(admin_client, account, make_contact):
    make_contact(phone="+14155552671", first_name="Ada")
    return admin_client


def test_every_registered_model_has_a_working_changelist(staff):
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

        assert staff.get(url).status_code == 200, url


def test_creating_a_key_in_the_admin_shows_it_once_and_stores_only_its_hash(staff, account):
    response = staff.post(reverse("admin:accounts_apikey_add"), {"account": account.pk, "name": "ops"}, follow=True)

    assert response.status_code == 200
    api_key = ApiKey.objects.get(account=account, name="ops")
    shown = [str(message) for message in response.context["messages"]]
    raw_key = next(word for message in shown for word in message.split() if word.startswith("ck_"))
    assert api_key.matches(raw_key)
    assert raw_key not in {api_key.prefix, api_key.key_hash}
    assert raw_key.encode() not in staff.get(reverse("admin:accounts_apikey_change", args=[quote(api_key.pk)])).content


def test_revoking_keys_in_the_admin(staff, account, api):
    key = ApiKey.objects.get(account=account)

    staff.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get("/v1/contacts").status_code == 401


def test_every_model_of_the_service_is_registered():

    registered = set(admin.site._registry)

    assert {
        Account,
        ApiKey,
        Contact,
        ContactList,
        ListMembership,
        Segment,
        ActivityEvent,
        SuppressionEntry,
    } <= registered


def test_every_change_and_add_page_renders(staff, account, make_contact, api):
    contact = Contact.objects.get(account=account)
    contact_list = list_create(account=account, name="Newsletter")
    list_add_members(account=account, contact_list=contact_list, contact_ids=[contact.pk])
    segment_create(
        account=account, name="All", rules={"match": "all", "conditions": [{"field": "phone", "operator": "exists"}]}
    )
    activity_record(account=account, contact_id=contact.pk, data={"type": "agent.interaction"})
    doomed = make_contact(email="gone@example.com")
    contact_set_preferences(account=account, contact_id=doomed.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    contact_delete(account=account, contact_id=doomed.pk)
    contact_set_preferences(account=account, contact_id=contact.pk, statuses={"email": "opted_in"}, api_key_id=None)
    Group.objects.create(name="operators")

    written_only_by_the_service = {ActivityEvent, SuppressionEntry}
    for model in admin.site._registry:
        opts = model._meta
        obj = model._default_manager.first()
        assert obj is not None, model
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
        assert staff.get(change).status_code == 200, change
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert staff.get(add).status_code == (403 if model in written_only_by_the_service else 200), add


def test_deleting_an_account_is_confirmed_without_listing_its_data(staff, account):
    contact = Contact.objects.get(account=account)
    activity_record(account=account, contact_id=contact.pk, data={"type": "agent.interaction"})
    url = reverse("admin:accounts_account_delete", args=[quote(account.pk)])

    confirmation = staff.get(url)

    assert confirmation.status_code == 200
    assert dict(confirmation.context["model_count"]) == {"accounts": 1}
    assert confirmation.context["perms_lacking"] == set()
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Account.objects.filter(pk=account.pk).exists()
    assert not Contact.objects.filter(pk=contact.pk).exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/contacts/contact/?account=%00",
        "/admin/contacts/contact/?q=a%00b",
        "/admin/contacts/contact/?lifecycle_stage=%00",
        "/admin/contacts/contact/?list=lst_%00",
        "/admin/contacts/activityevent/?contact=%00",
        "/admin/contacts/suppressionentry/?q=%00",
        "/admin/lists/contactlist/?q=%00",
        "/admin/lists/listmembership/?contact_list=%00",
        "/admin/segments/segment/?q=%00",
        "/admin/accounts/account/?q=%00",
        "/admin/accounts/apikey/?q=%00",
    ],
)
def test_a_nul_in_a_changelist_parameter_is_an_invalid_lookup_not_a_500(staff, url):
    response = staff.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{url.split('?')[0]}?e=1"


@pytest.mark.parametrize(
    "url",
    [
        "/admin/contacts/contact/con_%00/change/",
        "/admin/contacts/contact/con_%00/delete/",
        "/admin/lists/contactlist/lst_%00/change/",
        "/admin/segments/segment/seg_%00/change/",
        "/admin/accounts/account/acc_%00/change/",
        "/admin/accounts/apikey/key_%00/history/",
    ],
)
def test_a_nul_in_an_object_url_is_an_object_that_does_not_exist(staff, url):
    response = staff.get(url)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_nul_in_an_autocomplete_term_is_dropped(staff, account):
    response = staff.get(
        "/admin/autocomplete/",
        {"app_label": "accounts", "model_name": "apikey", "field_name": "account", "term": "Ac\x00me"},
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": account.pk, "text": "Acme"}]
