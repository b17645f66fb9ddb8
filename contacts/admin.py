"""Operators' admin for contacts, their activity and the suppression list.

Every contact write goes through the API's validation (``ContactSerializer``)
and ``contacts.services``: the change form, delete, and the actions (add a
tag, add to a list, opt out of a channel). Search is the API's search
(``ContactQuerySet.search``, index-served), never ``icontains`` scans, and no
page of the changelist counts or scans the whole table.
"""

import json
from itertools import islice

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Exists, OuterRef
from django.http import StreamingHttpResponse
from django.utils.html import format_html, format_html_join
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from contacts.api.filters import SEARCH_MAX_LENGTH
from contacts.api.serializers import ACTIVITY_TYPES, ContactSerializer
from contacts.constants import CHANNELS, DEFAULT_LIFECYCLE_STAGE
from contacts.exporters import export_rows
from contacts.models import ActivityEvent, Contact, SuppressionEntry
from contacts.preferences import OPTED_OUT, opted_out_q
from contacts.services import (
    contact_add_tags,
    contact_create,
    contact_delete,
    contact_set_preferences,
    contact_update,
)
from contacts.suppression import identifier_hashes
from contacts_project.admin import (
    AccountFilter,
    ChoicesFilter,
    InputFilter,
    LargeTableAdmin,
    PrettyJSONField,
    ReadOnlyModelAdmin,
    SelectedObjectFilter,
    ServiceModelAdmin,
    ServiceModelForm,
    action_form_page,
    admin_link,
    api_error_messages,
    changelist_url,
    display_datetime,
    pretty_json,
    summarized_deletion,
)
from lists.models import ContactList, ListMembership
from lists.services import MAX_IDS_PER_ADD, list_add_members
from segments.models import Segment
from segments.services import segment_contacts

CONTACT_FIELDS = ["phone", "email", "first_name", "last_name", "country", "lifecycle_stage", "tags", "metadata"]
# Cleared with null in the API; an empty input means "none" here.
NULLABLE_FIELDS = {"phone", "email", "country"}
DETAIL_SECTIONS = ["channel_preferences", "list_memberships", "latest_activity"]
LATEST_ACTIVITY = 20
EVENT_ROW = (
    '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code style="word-break: break-all">{}</code></td></tr>'
)
LISTED_MEMBERSHIPS = 50


# --- Filters ---------------------------------------------------------------------


class LifecycleStageFilter(InputFilter):
    """Stages are free slugs: listing the distinct ones would scan every contact, so the stage is typed."""

    title = "lifecycle stage"
    parameter_name = "lifecycle_stage"
    placeholder = "lead"

    def filter_value(self, queryset, value):
        return queryset.filter(lifecycle_stage=value)


class CountryFilter(InputFilter):
    title = "country"
    parameter_name = "country"
    placeholder = "US"

    def filter_value(self, queryset, value):
        return queryset.filter(country=value.upper())


class OptedOutFilter(admin.SimpleListFilter):
    """Contacts opted out of a channel, or of any: the predicates of the opt-out partial indexes."""

    title = "opted out of"
    parameter_name = "opted_out"
    ANY = "any"

    def lookups(self, request, model_admin):
        return [(self.ANY, "any channel"), *((channel, channel) for channel in CHANNELS)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value != self.ANY and value not in CHANNELS:
            raise IncorrectLookupParameters(f"Unknown channel: {value}")
        return queryset.filter(opted_out_q(None if value == self.ANY else value))


class ListMembersFilter(SelectedObjectFilter):
    """Members of one list (``?list=lst_…``), as linked from the list's page."""

    title = "list"
    parameter_name = "list"
    related_model = ContactList

    def filter_by(self, queryset, selected):
        members = ListMembership.objects.filter(contact_list=selected, contact=OuterRef("pk"))
        return queryset.filter(account_id=selected.account_id).filter(Exists(members))


class SegmentMembersFilter(SelectedObjectFilter):
    """Members of one segment now (``?segment=seg_…``), as linked from the segment's page: its compiled rules."""

    title = "segment"
    parameter_name = "segment"
    related_model = Segment

    def filter_by(self, queryset, selected):
        return queryset & segment_contacts(account=selected.account, rules=selected.rules)


class ContactObjectFilter(SelectedObjectFilter):
    """Rows of one contact (``?contact=con_…``), as linked from the contact's page."""

    title = "contact"
    parameter_name = "contact"
    related_model = Contact

    def filter_by(self, queryset, selected):
        return queryset.filter(contact=selected)


class ChannelFilter(ChoicesFilter):
    title = "channel"
    parameter_name = "channel"
    field = "channel"
    choices_list = CHANNELS


class ActivityTypeFilter(ChoicesFilter):
    title = "type"
    parameter_name = "type"
    field = "type"
    choices_list = ACTIVITY_TYPES


# --- The contact form ------------------------------------------------------------------


class TagsField(forms.CharField):
    """Tags, one per line; the API's rules (trimmed, 1-64 characters, at most 100) apply on save."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in super().to_python(value).splitlines() if line.strip()]

    def has_changed(self, initial, data):
        return (initial or []) != self.to_python(data)


def _text_input(**kwargs):
    return forms.CharField(required=False, widget=forms.TextInput(attrs={"class": "vTextField"}), **kwargs)


class ContactForm(ServiceModelForm):
    """Validated by ``ContactSerializer`` and saved by ``contact_create`` / ``contact_update``, as in the API.

    A change sends only the fields the operator changed (a partial update).
    The metadata box holds the whole object: keys deleted from it are sent as
    null, which the API's shallow merge removes.
    """

    phone = _text_input(help_text="E.164 or any written international form; a national form needs the country.")
    email = _text_input()
    first_name = _text_input()
    last_name = _text_input()
    country = _text_input(help_text="ISO 3166-1 alpha-2 (US, TR). Derived from the phone when empty.")
    lifecycle_stage = _text_input(initial=DEFAULT_LIFECYCLE_STAGE, help_text="A slug: lead, customer, churned…")
    tags = TagsField(required=False, help_text="One tag per line.")
    metadata = PrettyJSONField(required=False, initial=dict, help_text="A JSON object of custom data.")

    class Meta:
        model = Contact
        fields = ["account", *CONTACT_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.phone:
            # As text, so an untouched phone compares equal and is not sent.
            self.initial["phone"] = str(self.instance.phone)

    def write(self, cleaned_data):
        names = CONTACT_FIELDS if self.adding else [name for name in CONTACT_FIELDS if name in self.changed_data]
        if not names:
            return self.instance
        payload = {}
        for name in names:
            value = cleaned_data[name]
            if name in NULLABLE_FIELDS:
                value = value or None
            elif name == "lifecycle_stage" and self.adding and not value:
                continue
            elif name == "metadata":
                value = {} if value is None else value
                if not self.adding and isinstance(value, dict):
                    value = {**dict.fromkeys(set(self.instance.metadata) - set(value)), **value}
            payload[name] = value
        serializer = ContactSerializer(None if self.adding else self.instance, data=payload, partial=not self.adding)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        if self.adding:
            return contact_create(account=cleaned_data["account"], data=serializer.validated_data)
        return contact_update(
            account=self.instance.account, contact_id=self.instance.pk, data=serializer.validated_data
        )


# --- Action forms -------------------------------------------------------------------


class AddTagForm(forms.Form):
    tag = forms.CharField(strip=False, help_text="Added to each selected contact that lacks it.")

    def clean_tag(self):
        # The API's rules for a tag, from the API's serializer.
        serializer = ContactSerializer(data={"tags": [self.cleaned_data["tag"]]}, partial=True)
        if not serializer.is_valid():
            raise forms.ValidationError([message for _, message in api_error_messages(serializer.errors)])
        return serializer.validated_data["tags"][0]


class AddToListForm(forms.Form):
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.none(),
        label="List",
        help_text="Only contacts of the list's account are added; the others are skipped.",
    )

    def __init__(self, *args, lists, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].queryset = lists
        self.fields["contact_list"].label_from_instance = lambda contact_list: (
            f"{contact_list.name} ({contact_list.account})"
        )


class OptOutForm(forms.Form):
    channel = forms.ChoiceField(choices=[(channel, channel) for channel in CHANNELS])


def _batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


# --- Contacts -----------------------------------------------------------------------


@admin.register(Contact)
class ContactAdmin(ServiceModelAdmin, LargeTableAdmin):
    """Contacts of every account.

    The members of a list or a segment are this changelist filtered by it
    (``?list=lst_…``, ``?segment=seg_…``): the list and segment pages link
    here, and a segment's members are its compiled rules run now.
    """

    form = ContactForm
    list_display = ["name", "phone", "email", "country", "stage", "tag_list", "account", "created_at"]
    list_display_links = ["name"]
    list_filter = [
        AccountFilter,
        LifecycleStageFilter,
        CountryFilter,
        OptedOutFilter,
        ListMembersFilter,
        SegmentMembersFilter,
    ]
    # Only shows the search box: get_search_results runs the API's search instead of these columns.
    search_fields = ["first_name", "last_name", "email", "phone"]
    search_help_text = (
        "The API's search: words of names and email by prefix, ignoring case and accents (jose finds José); "
        "3+ digits match the start or end of a phone."
    )
    # Newest first, as the API. Filtered by account this is a scan of the index (account, created_at, id);
    # across all accounts PostgreSQL sorts the table (no index on created_at alone): ~0.6 s at 1M rows.
    ordering = ["-created_at", "-id"]
    sortable_by = ["created_at"]
    list_per_page = 50
    autocomplete_fields = ["account"]
    actions = ["add_tag", "add_to_list", "opt_out", "export_csv"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["account", *CONTACT_FIELDS]})]
        return [
            (None, {"fields": ["id", "account", *CONTACT_FIELDS, "created_at", "updated_at"]}),
            ("Channel preferences", {"fields": ["channel_preferences"]}),
            ("Lists", {"fields": ["list_memberships"]}),
            ("Latest activity", {"fields": ["latest_activity"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "id",
            "account",
            "created_at",
            "updated_at",
            "channel_preferences",
            "list_memberships",
            "latest_activity",
        ]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term:
            return queryset, False
        if len(term) > SEARCH_MAX_LENGTH:
            messages.warning(request, f"A search has at most {SEARCH_MAX_LENGTH} characters.")
            return queryset.none(), False
        # The account filter's, or every account's: the search index is tenant-aware (contacts/search.py).
        account = request.GET.get(AccountFilter.parameter_name)
        accounts = [account] if account else Account.objects.values_list("pk", flat=True)
        return queryset.search(term, accounts=accounts), False

    # --- columns

    @admin.display(description="name")
    def name(self, obj):
        return f"{obj.first_name} {obj.last_name}".strip() or "(no name)"

    @admin.display(description="stage")
    def stage(self, obj):
        return obj.lifecycle_stage

    @admin.display(description="tags")
    def tag_list(self, obj):
        return ", ".join(obj.tags)

    # --- the detail page

    @admin.display(description="statuses")
    def channel_preferences(self, obj):
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", obj.preference_map.items())
        return format_html('<table class="channel-preferences">{}</table>', rows)

    @admin.display(description="member of")
    def list_memberships(self, obj):
        memberships = list(
            ListMembership.objects.filter(contact=obj)
            .select_related("contact_list")
            .order_by("-added_at", "-id")[: LISTED_MEMBERSHIPS + 1]
        )
        if not memberships:
            return "No list."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>added {}</td></tr>",
            (
                (admin_link(membership.contact_list), display_datetime(membership.added_at))
                for membership in memberships[:LISTED_MEMBERSHIPS]
            ),
        )
        more = ""
        if len(memberships) > LISTED_MEMBERSHIPS:
            more = format_html(
                '<p><a href="{}">All memberships</a></p>', changelist_url(ListMembership, contact=obj.pk)
            )
        return format_html('<table class="list-memberships">{}</table>{}', rows, more)

    @admin.display(description="events")
    def latest_activity(self, obj):
        events = ActivityEvent.objects.filter(contact=obj).order_by("-occurred_at", "-id")[:LATEST_ACTIVITY]
        rows = format_html_join(
            "",
            EVENT_ROW,
            (
                (
                    display_datetime(event.occurred_at),
                    admin_link(event, event.type),
                    event.channel or "",
                    event.message_id or "",
                    json.dumps(event.data, ensure_ascii=False, separators=(",", ":")),
                )
                for event in events
            ),
        )
        if not rows:
            return "No activity."
        return format_html(
            '<table class="latest-activity"><tr><th>occurred</th><th>type</th><th>channel</th><th>message id</th>'
            '<th>data</th></tr>{}</table><p><a href="{}">All activity of this contact</a></p>',
            rows,
            changelist_url(ActivityEvent, contact=obj.pk),
        )

    # --- deletes, through the service (so opted-out identifiers are kept as suppression hashes)

    def delete_model(self, request, obj):
        contact_delete(account=obj.account, contact_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for contact in queryset.select_related("account"):
            contact_delete(account=contact.account, contact_id=contact.pk)

    def get_deleted_objects(self, objs, request):
        return summarized_deletion(objs, cascade_note="with its list memberships, activity and preferences")

    # --- actions

    @admin.action(description="Add a tag")
    def add_tag(self, request, queryset):
        form = AddTagForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_form_page(
                self, request, queryset, form=form, title="Add a tag", action="add_tag", submit_label="Add tag"
            )
        tag = form.cleaned_data["tag"]
        added = already = 0
        failures = []
        for contact in queryset.select_related("account").iterator(chunk_size=500):
            try:
                updated = contact_add_tags(account=contact.account, contact_id=contact.pk, tags=[tag])
            except ValidationError as error:
                failures.append(f"{contact.pk}: {' '.join(message for _, message in api_error_messages(error.detail))}")
                continue
            if tag in contact.tags:
                already += 1
            elif tag in updated.tags:
                added += 1
        self.message_user(request, f"Tag “{tag}” added to {added} contact(s); {already} already had it.")
        if failures:
            self.message_user(request, f"Not tagged: {'; '.join(failures)}", messages.ERROR)
        return None

    @admin.action(description="Add to a list")
    def add_to_list(self, request, queryset):
        lists = (
            ContactList.objects.filter(Exists(queryset.filter(account=OuterRef("account"))))
            .select_related("account")
            .order_by("account__name", "name")
        )
        form = AddToListForm(request.POST if "apply" in request.POST else None, lists=lists)
        if not form.is_valid():
            return action_form_page(
                self, request, queryset, form=form, title="Add to a list", action="add_to_list", submit_label="Add"
            )
        contact_list = form.cleaned_data["contact_list"]
        in_account = queryset.filter(account_id=contact_list.account_id).values_list("pk", flat=True)
        added = already = 0
        try:
            for ids in _batches(in_account.iterator(chunk_size=MAX_IDS_PER_ADD), MAX_IDS_PER_ADD):
                result = list_add_members(account=contact_list.account, contact_list=contact_list, contact_ids=ids)
                added += result["added"]
                already += result["already_members"]
        except ValidationError as error:
            # A contact deleted meanwhile: that batch added nothing.
            messages.error(request, " ".join(message for _, message in api_error_messages(error.detail)))
        skipped = queryset.exclude(account_id=contact_list.account_id).count()
        text = f"Added {added} contact(s) to “{contact_list.name}”; {already} were already members."
        if skipped:
            text += f" {skipped} contact(s) of other accounts were skipped."
        self.message_user(request, text)
        return None

    @admin.action(description="Opt out of a channel")
    def opt_out(self, request, queryset):
        form = OptOutForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return action_form_page(
                self,
                request,
                queryset,
                form=form,
                title="Opt out of a channel",
                action="opt_out",
                submit_label="Opt out",
            )
        channel = form.cleaned_data["channel"]
        changed = 0
        for contact in queryset.select_related("account").iterator(chunk_size=500):
            # Records a preference.updated event per change, with no API key (an operator made it).
            contact_set_preferences(
                account=contact.account, contact_id=contact.pk, statuses={channel: OPTED_OUT}, api_key_id=None
            )
            changed += contact.preference_map[channel] != OPTED_OUT
        self.message_user(request, f"Opted {changed} contact(s) out of {channel}.")
        return None

    @admin.action(description="Export selected to CSV")
    def export_csv(self, request, queryset):
        """The selection in export_contacts' CSV (the columns import reads), streamed from COPY."""
        response = StreamingHttpResponse(
            export_rows(contacts=queryset, fmt="csv"), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response


# --- Activity ----------------------------------------------------------------------------


@admin.register(ActivityEvent)
class ActivityEventAdmin(ReadOnlyModelAdmin):
    """The timeline of every contact, read-only: events are history, and ``preference.updated`` is the service's."""

    list_display = ["id", "type", "channel", "contact_link", "account", "occurred_at"]
    list_select_related = ["account", "contact"]
    list_filter = [AccountFilter, ActivityTypeFilter, ChannelFilter, ContactObjectFilter]
    ordering = ["-occurred_at", "-id"]
    sortable_by = []
    fields = [
        "id",
        "account",
        "contact_link",
        "type",
        "channel",
        "occurred_at",
        "message_id",
        "data_json",
        "created_at",
    ]
    readonly_fields = ["contact_link", "data_json"]

    @admin.display(description="contact")
    def contact_link(self, obj):
        return admin_link(obj.contact)

    @admin.display(description="data")
    def data_json(self, obj):
        return pretty_json(obj.data)


# --- Suppression list ------------------------------------------------------------------------


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(ReadOnlyModelAdmin):
    """Opt-outs kept after their contact was deleted: keyed hashes only, never a phone or an email."""

    list_display = ["identifier_hash", "channel", "account", "created_at"]
    list_filter = [AccountFilter, ChannelFilter]
    # Only shows the search box: get_search_results hashes the term.
    search_fields = ["identifier_hash"]
    search_help_text = "A phone (international form) or an email: its keyed hash is looked up. Or a hash."
    ordering = ["-id"]
    sortable_by = []
    fields = ["identifier_hash", "channel", "account", "created_at"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.replace("\x00", "").strip()
        if not term:
            return queryset, False
        hashes = {term.lower()}
        if "@" in term:
            hashes.update(identifier_hashes(phone=None, email=term))
        else:
            # The API's phone parsing, so "+1 (415) 555-2671" hashes as its E.164 form.
            phone = ContactSerializer(data={"phone": term}, partial=True)
            if phone.is_valid():
                hashes.update(identifier_hashes(phone=phone.validated_data["phone"], email=None))
        return queryset.filter(identifier_hash__in=hashes), False
