"""Serializer building blocks shared by every app."""

import datetime

from rest_framework import serializers

from contacts_project.rfc3339 import parse_rfc3339


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


def utc_timestamp(value: datetime.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the one output form of every timestamp."""
    return value.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Rfc3339DateTimeField(serializers.DateTimeField):
    """A client's timestamp: RFC 3339 with an offset in (see contacts_project/rfc3339.py), UTC out.

    Out always as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: ``strftime("%Y")`` would
    write year 28 as ``28``, which is no RFC 3339 timestamp at all.
    """

    default_error_messages = {"invalid": "Enter an RFC 3339 timestamp with an offset, such as 2026-11-27T10:15:00Z."}

    def to_internal_value(self, value):
        parsed = parse_rfc3339(value)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return utc_timestamp(value)
