"""Operators' admin for segments: rules validated by ``segments.rules``, saved by ``segments.services``."""

import copy

from django.contrib import admin
from django.utils.html import format_html

from contacts.models import Contact
from contacts_project.admin import (
    NamedObjectAdmin,
    PrettyJSONField,
    ServiceModelForm,
    changelist_url,
)
from lists.models import ContactList
from segments.models import Segment
from segments.rules import RuleError, list_references, validate_rules
from segments.services import segment_contacts, segment_create, segment_update

SEGMENT_FIELDS = ["name", "rules"]


def check_rules(rules, *, account) -> None:
    """``validate_rules``, then the list ids it names must be the account's: as the API's ``RulesField``."""
    validate_rules(rules)
    references = list_references(rules)
    known = set(
        ContactList.objects.for_account(account)
        .filter(pk__in={list_id for _, list_id in references})
        .values_list("id", flat=True)
    )
    for path, list_id in references:
        if list_id not in known:
            raise RuleError(path, "Unknown list id.")


class SegmentForm(ServiceModelForm):
    """Rules as indented JSON; an invalid tree is a form error on ``rules`` naming where (``rules.conditions.1.value``).

    Saved by ``segment_create`` / ``segment_update``; a name already used in
    the account (ignoring case) is a form error naming the segment holding it.
    """

    rules = PrettyJSONField(help_text='{"match": "all" | "any", "conditions": [{"field", "operator", "value"}, …]}')

    class Meta:
        model = Segment
        fields = ["account", *SEGMENT_FIELDS]

    def clean(self):
        cleaned_data = super().clean()
        account = cleaned_data.get("account") if self.adding else self.instance.account
        # Stored rules are left alone when only the name changes (as a PUT without rules would).
        rules_sent = self.adding or "rules" in self.changed_data
        if rules_sent and "rules" in cleaned_data and account is not None:
            try:
                check_rules(cleaned_data["rules"], account=account)
            except RuleError as error:
                where = f"rules.{error.attr}" if error.path else "rules"
                self.add_error("rules", f"{where}: {error.message}")
        return cleaned_data

    def write(self, cleaned_data):
        if self.adding:
            return segment_create(
                account=cleaned_data["account"], name=cleaned_data["name"], rules=cleaned_data["rules"]
            )
        data = {name: cleaned_data[name] for name in SEGMENT_FIELDS if name in self.changed_data}
        # A copy: on a conflict the page still shows the stored segment.
        return segment_update(segment=copy.copy(self.instance), data=data) if data else self.instance


@admin.register(Segment)
class SegmentAdmin(NamedObjectAdmin):
    """Segments of every account.

    The change page shows the live member count (the compiled rules counted
    now: one query, on that page only, never per changelist row) and links to
    the members: the contact changelist filtered by the segment
    (``?segment=seg_…``), which runs the same compiled rules.
    """

    form = SegmentForm
    editable_fields = SEGMENT_FIELDS
    list_display = ["name", "id", "account", "created_at", "updated_at"]

    @admin.display(description="members")
    def members(self, obj):
        count = segment_contacts(account=obj.account, rules=obj.rules).count()
        label = f"{count} contact{'' if count == 1 else 's'} match now"
        return format_html('<a href="{}">{}</a>', changelist_url(Contact, segment=obj.pk), label)
