"""The export log in the admin: read-only (entries are written by the exports only)."""

from django.contrib import admin

from analytics.models import ExportLog


@admin.register(ExportLog)
class ExportLogAdmin(admin.ModelAdmin):
    list_display = [
        "at",
        "user",
        "what",
        "format",
        "row_count",
        "as_of",
        "data_version",
        "completed_at",
    ]
    list_filter = ["what", "format"]
    search_fields = ["user__username", "what", "data_version"]
    date_hierarchy = "at"
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
