"""Every admin page an operator opens renders (issue 5 builds the operators' admin on this)."""

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import ApiKey


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
    assert raw_key.encode() not in staff.get(reverse("admin:accounts_apikey_change", args=[api_key.pk])).content


def test_revoking_keys_in_the_admin(staff, account, api):
    key = ApiKey.objects.get(account=account)

    staff.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get("/v1/contacts").status_code == 401
