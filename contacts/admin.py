from django.contrib import admin

from contacts.models import Contact
from contacts_project.admin import ReadOnlyModelAdmin


@admin.register(Contact)
class ContactAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "first_name", "last_name", "phone", "email", "country", "lifecycle_stage", "account"]
    list_filter = ["lifecycle_stage"]
