from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.api.serializers import ContactSerializer
from contacts_project.api.serializers import StrictCharField, StrictFieldsMixin, utc_timestamp
from lists.models import ContactList
from segments.models import Segment
from segments.rules import RuleError, list_references, validate_rules

RULES_HELP = (
    'A group `{"match": "all"|"any", "conditions": [condition | group, ...]}`; a condition is '
    '`{"field", "operator", "value"}`. Groups hold 1-50 items and nest at most 5 deep; at most 200 conditions. '
    "Fields: first_name, last_name, email, phone, country, lifecycle_stage (eq, neq, in, not_in, starts_with, "
    "ends_with, contains, exists, not_exists; names and email ignore case); tags (contains, not_contains, "
    "contains_any, contains_all, exists, not_exists); lists (contains, not_contains: a list id of the account); "
    "created_at, updated_at (gt, gte, lt, lte: RFC 3339; within_last, not_within_last: 30d, 12h, 45m); "
    "metadata.<key> (eq, neq, in, not_in, gt, gte, lt, lte, contains, exists, not_exists: type-aware; contains "
    "matches an array holding the value or a string holding it as a substring, case-sensitive); "
    "preferences.<channel> (eq, neq: opted_in, opted_out, unset). neq and not_* also match contacts without the "
    "field. Errors name the offending part, e.g. `rules.conditions.1.value`."
)


@extend_schema_field({"type": "object", "description": RULES_HELP})
class RulesField(serializers.JSONField):
    """A rule tree, validated by segments.rules and checked against the account's lists."""

    def to_internal_value(self, data):
        try:
            validate_rules(data)
            self._check_lists(data)
        except RuleError as error:
            # Nested under the field's own name by DRF: "rules.conditions.1.value".
            detail = {error.attr: [error.message]} if error.path else [error.message]
            raise serializers.ValidationError(detail, code="invalid_rules") from None
        return data

    def _check_lists(self, tree):
        references = list_references(tree)
        if not references:
            return
        account = self.context["request"].user
        known = set(
            ContactList.objects.for_account(account)
            .filter(pk__in={list_id for _, list_id in references})
            .values_list("id", flat=True)
        )
        for path, list_id in references:
            if list_id not in known:
                raise RuleError(path, "Unknown list id.")


class SegmentSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    name = StrictCharField(min_length=1, max_length=100, help_text="Unique per account, ignoring case.")
    rules = RulesField(help_text=RULES_HELP)

    class Meta:
        model = Segment
        fields = ["id", "name", "rules", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class SegmentDetailSerializer(SegmentSerializer):
    """A segment with the exact number of contacts matching its rules now (``contact_count``)."""

    contact_count = serializers.IntegerField(read_only=True, help_text="Contacts matching the rules now.")

    class Meta(SegmentSerializer.Meta):
        fields = [*SegmentSerializer.Meta.fields, "contact_count"]

    def to_representation(self, instance):
        # Built directly, like a contact's: a ModelSerializer makes its field
        # objects anew for every instance. The declared fields still describe
        # it in OpenAPI; segments/tests/test_segments_api.py holds the two equal.
        return {
            "id": instance.id,
            "name": instance.name,
            "rules": instance.rules,
            "created_at": utc_timestamp(instance.created_at),
            "updated_at": utc_timestamp(instance.updated_at),
            "contact_count": instance.contact_count,
        }


class SegmentPreviewSerializer(StrictFieldsMixin, serializers.Serializer):
    rules = RulesField(help_text=RULES_HELP)


class SegmentPreviewResultSerializer(serializers.Serializer):
    contact_count = serializers.IntegerField(
        help_text="Contacts matching the rules: exactly, or at least this many when `contact_count_exact` is false."
    )
    contact_count_exact = serializers.BooleanField(
        help_text="False when counting stopped at the preview's cap (broad rules over many contacts)."
    )
    sample = ContactSerializer(many=True, help_text="Up to 10 matching contacts, newest first.")
