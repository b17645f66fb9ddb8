"""Query-parameter filters shared by every app's filtersets, and their base class.

A typed parameter sent empty (``?since=``, ``?channel=``) is invalid rather
than absent: a client whose value went missing would otherwise get the
unfiltered collection. (Free-text parameters such as ``search`` may be empty.)
"""

import copy

from django import forms
from django.http import QueryDict
from django_filters import fields as filter_fields
from django_filters import rest_framework as filters

from contacts_project.rfc3339 import parse_rfc3339


class FilterSet(filters.FilterSet):
    """django-filter's ``FilterSet`` without its per-request rebuilding; every filterset derives from it.

    For each request django-filter deep-copies every declared filter (with
    its form field, widget and choices), then builds a new form class, and
    with it a new form field per filter (labels worked out through
    translations): a fifth of the CPU of a list page. Here each request gets
    shallow copies, which is all a filter needs of its own (the
    ``parent`` that method filters such as ``filter_search`` are looked up
    on), and the form class is built once per filterset class. The form
    itself is still made per request, as Django makes it: from copies of the
    class's fields.
    """

    _form_classes: dict[type, type] = {}

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {}
        for name, declared in self.base_filters.items():
            filter_ = copy.copy(declared)
            filter_.model = queryset.model
            filter_.parent = self
            # A method filter's FilterMethod points at the filter it was made
            # for; setting the method again makes one for this copy.
            filter_.method = declared.method
            self.filters[name] = filter_

    def get_form_class(self):
        if type(self) not in self._form_classes:
            self._form_classes[type(self)] = super().get_form_class()
        return self._form_classes[type(self)]


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
