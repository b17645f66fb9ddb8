from rest_framework import serializers

from contacts_project.api.serializers import StrictCharField, StrictFieldsMixin
from lists.models import ContactList
from lists.services import MAX_IDS_PER_ADD


class ContactListSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    name = StrictCharField(min_length=1, max_length=100, help_text="Unique per account, ignoring case.")
    description = StrictCharField(max_length=1000, allow_blank=True, required=False)

    class Meta:
        model = ContactList
        fields = ["id", "name", "description", "member_count", "created_at", "updated_at"]
        read_only_fields = ["id", "member_count", "created_at", "updated_at"]


class AddMembersSerializer(StrictFieldsMixin, serializers.Serializer):
    contact_ids = serializers.ListField(
        child=StrictCharField(max_length=64),
        min_length=1,
        max_length=MAX_IDS_PER_ADD,
        help_text=f"1 to {MAX_IDS_PER_ADD} contact ids. If any is unknown, nothing is added.",
    )


class AddMembersResultSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Contacts that were not members and now are.")
    already_members = serializers.IntegerField(help_text="Contacts (counted once each) that were members already.")
