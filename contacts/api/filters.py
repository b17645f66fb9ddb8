from django import forms
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django_countries.data import COUNTRIES
from django_filters import rest_framework as filters

from contacts.api.serializers import ACTIVITY_TYPES
from contacts.constants import CHANNELS
from contacts.models import ActivityEvent, Contact
from contacts.preferences import opted_out_q
from contacts_project.api.filters import FilterSet, NonEmptyChoiceFilter, Rfc3339DateTimeFilter
from lists.models import ContactList, ListMembership
from segments.models import Segment
from segments.rules import compile_rules

SEARCH_MAX_LENGTH = 200


class CountryFormField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return value
        if value.upper() not in COUNTRIES:
            raise forms.ValidationError("Enter an ISO 3166-1 alpha-2 country code, such as US or TR.", code="invalid")
        return value.upper()


class CountryFilter(filters.CharFilter):
    field_class = CountryFormField


class ContactFilter(FilterSet):
    """The filters of ``GET /v1/contacts`` (API.md §4); each is served by an index on the contacts table."""

    search = filters.CharFilter(
        method="filter_search",
        # PostgreSQL refuses tsquery words over 2 KB; no real search is near this.
        max_length=SEARCH_MAX_LENGTH,
        help_text=(
            "Full-text search over names, email and phone. Terms are ANDed; a term matches a word of a name or "
            "of the email (local part, domain, whole address) by prefix, ignoring case and accents. A term of 3+ "
            "digits matches phones starting (with or without country code) or ending with it. "
            f"At most {SEARCH_MAX_LENGTH} characters."
        ),
    )
    lifecycle_stage = filters.CharFilter(help_text="Exact lifecycle stage.")
    country = CountryFilter(help_text="ISO 3166-1 alpha-2 code, any case.")
    tag = filters.CharFilter(method="filter_tag", help_text="Contacts having this tag (case-sensitive).")
    list = filters.CharFilter(method="filter_list", help_text="Members of this list (`lst_…`); unknown: 404.")
    segment = filters.CharFilter(
        method="filter_segment", help_text="Contacts matching this segment (`seg_…`) now; unknown: 404."
    )
    created_after = Rfc3339DateTimeFilter(
        field_name="created_at", lookup_expr="gt", help_text="RFC 3339; contacts created strictly after."
    )
    created_before = Rfc3339DateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="RFC 3339; contacts created strictly before."
    )
    updated_after = Rfc3339DateTimeFilter(
        field_name="updated_at", lookup_expr="gt", help_text="RFC 3339; contacts updated strictly after."
    )

    class Meta:
        model = Contact
        fields = []

    def filter_search(self, queryset, name, value):
        return queryset.search(value, accounts=[self.request.user])

    def filter_list(self, queryset, name, value):
        contact_list = get_object_or_404(ContactList.objects.for_account(self.request.user), pk=value)
        return queryset.filter(Exists(ListMembership.objects.filter(contact_list=contact_list, contact=OuterRef("pk"))))

    def filter_segment(self, queryset, name, value):
        segment = get_object_or_404(Segment.objects.for_account(self.request.user), pk=value)
        return queryset.filter(compile_rules(segment.rules))

    def filter_tag(self, queryset, name, value):
        # tags @> ARRAY[value]: the GIN index on tags answers it.
        return queryset.filter(tags__contains=[value])


class OptoutFilter(FilterSet):
    """``GET /v1/contacts/optouts``: contacts opted out of a channel, or of any; served by partial indexes."""

    channel = NonEmptyChoiceFilter(
        choices=[(channel, channel) for channel in CHANNELS],
        method="filter_channel",
        help_text="Only contacts opted out of this channel (default: of at least one channel).",
    )
    search = ContactFilter.base_filters["search"]

    class Meta:
        model = Contact
        fields = []

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("channel"):
            queryset = queryset.filter(opted_out_q())
        return queryset

    def filter_channel(self, queryset, name, value):
        return queryset.filter(opted_out_q(value))

    def filter_search(self, queryset, name, value):
        return queryset.search(value, accounts=[self.request.user])


class ActivityFilter(FilterSet):
    """Filters of a contact's timeline; each is served by an index that starts with the contact."""

    type = NonEmptyChoiceFilter(choices=[(type_, type_) for type_ in ACTIVITY_TYPES], help_text="Exact event type.")
    channel = NonEmptyChoiceFilter(choices=[(channel, channel) for channel in CHANNELS], help_text="Exact channel.")
    since = Rfc3339DateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="RFC 3339; events that occurred at or after."
    )
    until = Rfc3339DateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="RFC 3339; events that occurred strictly before."
    )

    class Meta:
        model = ActivityEvent
        fields = []
