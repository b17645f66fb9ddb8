"""Operators' admin for lists and memberships, writing through ``lists.services`` as the API does."""

import copy

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from rest_framework.exceptions import ValidationError

from contacts.admin import ContactObjectFilter
from contacts.models import Contact
from contacts_project.admin import (
    AccountFilter,
    LargeTableAdmin,
    NamedObjectAdmin,
    SelectedObjectFilter,
    ServiceModelAdmin,
    ServiceModelForm,
    admin_link,
    changelist_url,
    summarized_deletion,
)
from lists.api.serializers import ContactListSerializer
from lists.models import ContactList, ListMembership
from lists.services import list_add_members, list_create, list_delete, list_remove_member, list_update

LIST_FIELDS = ["name", "description"]


def members_link(contact_list: ContactList):
    """The contact changelist filtered to the list's members, labelled with the stored member count."""
    count = contact_list.member_count
    label = f"{count} member{'' if count == 1 else 's'}"
    return format_html('<a href="{}">{}</a>', changelist_url(Contact, list=contact_list.pk), label)


class ContactListForm(ServiceModelForm):
    """Validated by the API's ``ContactListSerializer``; saved by ``list_create`` / ``list_update``.

    A name already used in the account (ignoring case) is a form error naming
    the list that holds it.
    """

    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))

    class Meta:
        model = ContactList
        fields = ["account", *LIST_FIELDS]

    def write(self, cleaned_data):
        names = LIST_FIELDS if self.adding else [name for name in LIST_FIELDS if name in self.changed_data]
        if not names:
            return self.instance
        serializer = ContactListSerializer(data={name: cleaned_data[name] for name in names}, partial=not self.adding)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        if self.adding:
            return list_create(account=cleaned_data["account"], **serializer.validated_data)
        # A copy: on a conflict the page still shows the stored list.
        return list_update(contact_list=copy.copy(self.instance), data=serializer.validated_data)


@admin.register(ContactList)
class ContactListAdmin(NamedObjectAdmin):
    """Lists of every account. ``member_count`` is the stored counter (kept by triggers): no COUNT per row.

    The members are the contact changelist filtered by the list (``?list=lst_…``).
    """

    form = ContactListForm
    editable_fields = LIST_FIELDS
    list_display = ["name", "id", "account", "members", "created_at", "updated_at"]

    @admin.display(description="members", ordering="member_count")
    def members(self, obj):
        return members_link(obj)

    def delete_model(self, request, obj):
        list_delete(contact_list=obj)

    def delete_queryset(self, request, queryset):
        for contact_list in queryset:
            list_delete(contact_list=contact_list)

    def get_deleted_objects(self, objs, request):
        return summarized_deletion(objs, cascade_note="with its memberships (the contacts stay)")


class ListObjectFilter(SelectedObjectFilter):
    """Memberships of one list (``?contact_list=lst_…``)."""

    title = "list"
    parameter_name = "contact_list"
    related_model = ContactList

    def filter_by(self, queryset, selected):
        return queryset.filter(contact_list=selected)


class ListMembershipForm(ServiceModelForm):
    """Adds one contact to one list with ``list_add_members``, as ``POST …/lists/{id}/members`` does."""

    class Meta:
        model = ListMembership
        fields = ["contact_list", "contact"]

    def write(self, cleaned_data):
        contact_list, contact = cleaned_data["contact_list"], cleaned_data["contact"]
        if contact.account_id != contact_list.account_id:
            raise ValidationError({"contact": ["This contact belongs to another account than the list."]})
        result = list_add_members(account=contact_list.account, contact_list=contact_list, contact_ids=[contact.pk])
        if not result["added"]:
            raise ValidationError({"contact": ["This contact is already a member of the list."]})
        return ListMembership.objects.get(contact_list=contact_list, contact=contact)


@admin.register(ListMembership)
class ListMembershipAdmin(ServiceModelAdmin, LargeTableAdmin):
    """Memberships of every list: added with ``list_add_members``, removed with ``list_remove_member``."""

    form = ListMembershipForm
    list_display = ["id", "contact_link", "list_link", "account", "added_at"]
    list_select_related = ["account", "contact", "contact_list"]
    list_filter = [AccountFilter, ListObjectFilter, ContactObjectFilter]
    ordering = ["-id"]
    sortable_by = []
    autocomplete_fields = ["contact_list", "contact"]

    def has_change_permission(self, request, obj=None):
        # A membership has nothing to change: add or remove it.
        return False

    def get_fields(self, request, obj=None):
        return ["contact_list", "contact"] if obj is None else ["list_link", "contact_link", "account", "added_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["list_link", "contact_link", "account", "added_at"]

    @admin.display(description="contact")
    def contact_link(self, obj):
        return admin_link(obj.contact)

    @admin.display(description="list")
    def list_link(self, obj):
        return admin_link(obj.contact_list)

    def delete_model(self, request, obj):
        list_remove_member(contact_list=obj.contact_list, contact_id=obj.contact_id)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("contact_list"):
            list_remove_member(contact_list=membership.contact_list, contact_id=membership.contact_id)
