from django.contrib import admin

from lists.models import ContactList


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    """Read-only for now: writes go through lists/services.py (the operators' admin issue adds them)."""

    list_display = ["name", "id", "account", "member_count", "created_at"]
    list_select_related = ["account"]
    search_fields = ["name", "id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
