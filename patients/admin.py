"""Clinical records are entered through the study pages, not the admin: read-only here for
superusers who need to inspect a row; never deletable."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from patients.models import Patient
from trial.scoping import scope_to_user_sites


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    list_display = ["subject_code", "site", "cohort", "status"]
    list_filter = ["site", "cohort", "status"]
    search_fields = ["subject_code"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return scope_to_user_sites(super().get_queryset(request), request.user)
