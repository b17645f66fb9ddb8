from django.contrib import admin

from segments.models import Segment


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    """Read-only for now: writes go through segments/services.py (the operators' admin issue adds them)."""

    list_display = ["name", "id", "account", "created_at", "updated_at"]
    list_select_related = ["account"]
    search_fields = ["name", "id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
