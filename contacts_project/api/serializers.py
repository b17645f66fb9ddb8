"""Serializer building blocks shared by every app."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that accepts only JSON strings (DRF would turn 12 or true into text)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFieldsMixin:
    """Reject body fields the serializer does not know (API.md §2).

    Read-only fields are accepted and ignored, so a client can send back an
    object it just read; anything else unknown is a 400 naming the field.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = set(self.fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown}, code="unknown_field")
        return super().to_internal_value(data)
