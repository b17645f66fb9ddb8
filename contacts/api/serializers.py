from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from contacts.constants import (
    CHANNELS,
    CONTACT_REPRESENTATION,
    DEFAULT_LIFECYCLE_STAGE,
    EMAIL_MAX_LENGTH,
    LIFECYCLE_STAGE_PATTERN,
    METADATA_KEY_MAX_LENGTH,
    METADATA_MAX_BYTES,
    METADATA_MAX_KEYS,
    NAME_MAX_LENGTH,
    PREFERENCE_STATUSES,
    TAG_MAX_LENGTH,
    TAGS_MAX_COUNT,
)
from contacts.models import ActivityEvent, Contact
from contacts.validation import ContactInvalid, clean_contact, metadata_size
from contacts_project.api.serializers import (
    ResponseWiderChoiceField,
    Rfc3339DateTimeField,
    StrictCharField,
    StrictFieldsMixin,
    utc_timestamp,
)


def invalid_to_drf(error: ContactInvalid) -> serializers.ValidationError:
    """The API's form of a ContactInvalid: one ErrorDetail per (code, message), keyed by attr."""
    detail = {
        attr: [ErrorDetail(message, code=code) for code, message in problems] for attr, problems in error.errors.items()
    }
    return serializers.ValidationError(detail)


class PreferencesSerializer(serializers.Serializer):
    """The six channel statuses."""

    def get_fields(self):
        return {channel: serializers.ChoiceField(choices=PREFERENCE_STATUSES, read_only=True) for channel in CHANNELS}


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        return data


@extend_schema_field({"type": "object", "additionalProperties": True, "maxProperties": METADATA_MAX_KEYS})
class MetadataField(JSONObjectField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        message = f"Metadata keys must be 1 to {METADATA_KEY_MAX_LENGTH} characters."
        if "" in data:
            raise serializers.ValidationError(message, code="invalid_key")
        for key in data:
            if len(key) > METADATA_KEY_MAX_LENGTH:
                raise serializers.ValidationError({key: [message]}, code="invalid_key")
        return data


class ContactSerializer(serializers.ModelSerializer):
    """A contact in and out. Input is always a partial update of what is stored (or of nothing)."""

    phone = StrictCharField(
        allow_null=True,
        required=False,
        max_length=64,
        help_text="E.164 or any written international form; a national form only with `country`. Returned in E.164.",
    )
    email = serializers.EmailField(allow_null=True, required=False, max_length=EMAIL_MAX_LENGTH)
    first_name = StrictCharField(allow_null=True, allow_blank=True, required=False, max_length=NAME_MAX_LENGTH)
    last_name = StrictCharField(allow_null=True, allow_blank=True, required=False, max_length=NAME_MAX_LENGTH)
    country = StrictCharField(
        allow_null=True,
        required=False,
        max_length=2,
        min_length=2,
        help_text="ISO 3166-1 alpha-2, any case in, upper case out. Derived from the phone when absent.",
    )
    lifecycle_stage = StrictCharField(
        required=False,
        validators=[RegexValidator(LIFECYCLE_STAGE_PATTERN, "Use 1 to 32 of a-z, 0-9, _ and -.")],
        help_text=f"A slug such as lead, customer or churned; default `{DEFAULT_LIFECYCLE_STAGE}`.",
    )
    tags = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=TAG_MAX_LENGTH),
        required=False,
        help_text=(
            f"1-{TAG_MAX_LENGTH} characters each after trimming; duplicates dropped keeping the first; "
            f"at most {TAGS_MAX_COUNT}. Replaces the whole tag set on update."
        ),
    )
    metadata = MetadataField(
        required=False,
        help_text=(
            f"Custom data: at most {METADATA_MAX_KEYS} keys of 1-{METADATA_KEY_MAX_LENGTH} characters, "
            f"{METADATA_MAX_BYTES} bytes as compact UTF-8 JSON. On update it is merged shallowly; "
            "a key sent as null is removed."
        ),
    )
    preferences = PreferencesSerializer(source="preference_map", read_only=True)

    class Meta:
        model = Contact
        fields = list(CONTACT_REPRESENTATION)
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_internal_value(self, data):
        # The field declarations above describe the API (OpenAPI, output);
        # input is cleaned by the one set of rules every path shares.
        stored_country = self.instance.country if self.instance is not None else None
        try:
            return clean_contact(data, stored_country=stored_country)
        except ContactInvalid as error:
            raise invalid_to_drf(error) from None

    def to_representation(self, instance):
        # Every contact the API returns comes through here, up to 100 to a
        # page: built directly instead of through a dozen field objects per
        # contact. The declared fields above still describe it in OpenAPI;
        # contacts/tests/test_representation.py holds the two equal.
        return {
            "id": instance.id,
            "phone": instance.phone_e164,
            "email": instance.email,
            "first_name": instance.first_name,
            "last_name": instance.last_name,
            "country": instance.country,
            "lifecycle_stage": instance.lifecycle_stage,
            "tags": list(instance.tags),
            "metadata": instance.metadata,
            "preferences": instance.preference_map,
            "created_at": utc_timestamp(instance.created_at),
            "updated_at": utc_timestamp(instance.updated_at),
        }


class ContactTagsSerializer(StrictFieldsMixin, serializers.Serializer):
    tags = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=TAG_MAX_LENGTH),
        allow_empty=False,
        help_text="Tags to append; tags already present are ignored.",
    )

    def validate_tags(self, value):
        return list(dict.fromkeys(value))


class PreferencesUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """A partial map of channel → status; channels not sent are unchanged."""

    def get_fields(self):
        return {channel: serializers.ChoiceField(choices=PREFERENCE_STATUSES, required=False) for channel in CHANNELS}


ACTIVITY_TYPES = (
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.failed",
    "message.received",
    "agent.interaction",
    "preference.updated",
)
CLIENT_ACTIVITY_TYPES = ACTIVITY_TYPES[:-1]


class ActivityEventSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    type = ResponseWiderChoiceField(
        choices=CLIENT_ACTIVITY_TYPES,
        response_choices=ACTIVITY_TYPES,
        help_text="Any type but `preference.updated`, which only the service writes.",
    )
    channel = serializers.ChoiceField(
        choices=CHANNELS, required=False, allow_null=True, help_text="Required for `message.*` types."
    )
    occurred_at = Rfc3339DateTimeField(required=False, help_text="RFC 3339; defaults to now.")
    message_id = StrictCharField(
        required=False,
        allow_null=True,
        max_length=255,
        help_text="Your message id. A repeat of (`message_id`, `type`) for the contact returns the stored event.",
    )
    data = JSONObjectField(required=False, help_text=f"A JSON object of at most {METADATA_MAX_BYTES} bytes.")

    class Meta:
        model = ActivityEvent
        fields = ["id", "type", "channel", "occurred_at", "message_id", "data", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_data(self, value):
        if metadata_size(value) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(
                f"Must serialize to at most {METADATA_MAX_BYTES} bytes.", code="too_large"
            )
        return value

    def validate(self, attrs):
        if attrs["type"].startswith("message.") and not attrs.get("channel"):
            raise serializers.ValidationError({"channel": ["Required for message events."]}, code="required")
        return attrs
