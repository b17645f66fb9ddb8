"""Query-parameter filters shared by every app's filtersets.

A typed parameter sent empty (``?since=``, ``?channel=``) is invalid rather
than absent: a client whose value went missing would otherwise get the
unfiltered collection. (Free-text parameters such as ``search`` may be empty.)
"""

from django import forms
from django_filters import fields as filter_fields
from django_filters import rest_framework as filters

from contacts_project.rfc3339 import parse_rfc3339


class Rfc3339DateTimeField(forms.Field):
    """An RFC 3339 timestamp with an offset, as UTC (see contacts_project/rfc3339.py); never empty."""

    default_error_messages = {"invalid": "Enter an RFC 3339 timestamp with an offset, such as 2026-11-27T10:15:00Z."}

    def to_python(self, value):
        if value is None:
            return None
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class Rfc3339DateTimeFilter(filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` (documented as ``date-time``) parsing as the contract says: RFC 3339, any offset."""

    field_class = Rfc3339DateTimeField


class NonEmptyChoiceField(filter_fields.ChoiceField):
    def clean(self, value):
        # Absent is None here; only a parameter sent with no value is "".
        if value == "":
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
            )
        return super().clean(value)


class NonEmptyChoiceFilter(filters.ChoiceFilter):
    """``ChoiceFilter`` (documented as an enum) for which an empty value is one outside the enum."""

    field_class = NonEmptyChoiceField
