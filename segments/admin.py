from django.contrib import admin

from contacts_project.admin import ReadOnlyModelAdmin
from segments.models import Segment


@admin.register(Segment)
class SegmentAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "id", "account", "created_at", "updated_at"]
    search_fields = ["name", "id"]
