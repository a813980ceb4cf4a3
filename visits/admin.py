"""The reminder log and the stored calendar in the admin: read-only, limited to the user's
sites (a site admin sees whom their site's reminders went to, and which failed)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from trial.scoping import scope_to_user_sites, sites_for
from visits.models import ExpectedVisit, Reminder


class UserSiteFilter(admin.SimpleListFilter):
    """The site filter, offering only the user's own sites (never other sites' names)."""

    title = _("site")
    parameter_name = "site"

    def lookups(self, request, model_admin):
        return [(str(site.pk), site.code) for site in sites_for(request.user)]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(site_id=value) if value and value.isdigit() else queryset


class ReadOnlyScopedAdmin(admin.ModelAdmin):
    """Nothing added, changed or deleted here; rows of the user's sites only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("patient", "site")
        return scope_to_user_sites(queryset, request.user)


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "day",
        "reason",
        "status",
        "site",
        "subject_code",
        "visit_code",
        "target_on",
        "window_end",
        "recipient",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["day", "reason", "status", UserSiteFilter]
    search_fields = ["patient__subject_code"]
    date_hierarchy = "day"
    list_select_related = ["patient", "site", "recipient"]

    @admin.display(description=_("subject"), ordering="patient__subject_code")
    def subject_code(self, obj: Reminder) -> str:
        return obj.patient.subject_code


@admin.register(ExpectedVisit)
class ExpectedVisitAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "subject_code",
        "site",
        "code",
        "kind",
        "target_on",
        "window_start",
        "window_end",
        "status",
        "done_on",
        "refreshed_at",
    ]
    list_filter = ["status", "kind", UserSiteFilter]
    search_fields = ["patient__subject_code", "code"]
    list_select_related = ["patient", "site"]

    @admin.display(description=_("subject"), ordering="patient__subject_code")
    def subject_code(self, obj: ExpectedVisit) -> str:
        return obj.patient.subject_code
