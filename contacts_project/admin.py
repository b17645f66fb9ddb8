from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Operators can browse; writes go through each app's services (the operators' admin issue adds them)."""

    show_full_result_count = False
    list_select_related = ["account"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
