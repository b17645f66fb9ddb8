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


class ResponseWiderChoiceField(serializers.ChoiceField):
    """A choice field whose answers may hold more values than a client may send.

    ``choices`` are accepted in requests; ``response_choices`` (a superset) may
    appear in responses, e.g. event types that only the service writes. The
    OpenAPI document gives each direction its own enum (see api/schema.py),
    so a response is never documented narrower than what it can hold.
    """

    def __init__(self, *, response_choices, **kwargs):
        super().__init__(**kwargs)
        self.response_choices = tuple(response_choices)
        assert set(self.choices) <= set(self.response_choices), "responses must cover every accepted value"
