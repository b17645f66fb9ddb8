import datetime

import pytest
from rest_framework import serializers

from contacts.api.serializers import ContactSerializer
from contacts.models import Contact
from contacts.validation import e164

pytestmark = pytest.mark.django_db


def declared_representation(contact: Contact) -> dict:
    """What the declared fields of ContactSerializer make of a contact (the slow, general path)."""
    data = serializers.ModelSerializer.to_representation(ContactSerializer(), contact)
    data["phone"] = e164(contact.phone)
    return data


def test_the_direct_representation_equals_the_declared_fields_output(make_contact):
    contacts = [
        make_contact(phone="+14155552671", email="ada@example.com", first_name="Ada", last_name="Lovelace"),
        make_contact(email="zoe@example.org", first_name="Zoë", tags=["vip", "日本"], metadata={"n": [1, {"a": None}]}),
        make_contact(phone="+447911123456", lifecycle_stage="customer", country="GB"),
    ]
    Contact.objects.filter(pk=contacts[2].pk).update(preferences={"sms": "opted_out", "email": "opted_in"})
    # A timestamp on a whole second still shows its microseconds.
    whole_second = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    Contact.objects.filter(pk=contacts[1].pk).update(created_at=whole_second)
    for contact in Contact.objects.filter(pk__in=[contact.pk for contact in contacts]):
        assert ContactSerializer(contact).data == declared_representation(contact)
