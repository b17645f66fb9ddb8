from django.contrib import admin

from contacts_project.admin import ReadOnlyModelAdmin
from lists.models import ContactList


@admin.register(ContactList)
class ContactListAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "id", "account", "member_count", "created_at"]
    search_fields = ["name", "id"]
