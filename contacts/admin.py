from django.contrib import admin

from contacts.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """Read-only for now: writes go through contacts/services.py (the operators' admin issue adds them)."""

    list_display = ["id", "first_name", "last_name", "phone", "email", "country", "lifecycle_stage", "account"]
    list_select_related = ["account"]
    list_filter = ["lifecycle_stage"]
    show_full_result_count = False
    readonly_fields = [field.name for field in Contact._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
