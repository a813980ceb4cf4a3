"""The Django admin is the site admin's tool for users, roles (groups) and site memberships.

A site administrator who is not a superuser sees and manages only the users of their own
sites, can give only the study's roles, and can never grant superuser or staff rights.
Users are deactivated, never deleted, so their records stay attributed.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from trial.models import Role, Site, SiteMembership, Study
from trial.scoping import site_ids_for

User = get_user_model()

admin.site.site_header = _("PLM-EDC administration")
admin.site.site_title = _("PLM-EDC")
admin.site.index_title = _("Users, roles and sites")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["code", "title"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_zh", "is_active"]
    readonly_fields = ["last_subject_number"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return (
            queryset
            if request.user.is_superuser
            else queryset.filter(id__in=site_ids_for(request.user))
        )

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = SiteMembership
    fk_name = "user"
    extra = 1
    fields = ["site", "granted_at"]
    readonly_fields = ["granted_at"]

    def get_queryset(self, request):
        # Memberships at other sites are not this site admin's to see, change or delete.
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(site_id__in=site_ids_for(request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site" and not request.user.is_superuser:
            kwargs["queryset"] = Site.objects.filter(id__in=site_ids_for(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(SiteMembership)
class SiteMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "site", "granted_at"]
    list_filter = ["site"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "site")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(site_id__in=site_ids_for(request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site" and not request.user.is_superuser:
            kwargs["queryset"] = Site.objects.filter(id__in=site_ids_for(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


admin.site.unregister(User)


@admin.register(User)
class StudyUserAdmin(UserAdmin):
    inlines = [MembershipInline]
    list_display = [
        "username",
        "first_name",
        "last_name",
        "email",
        "is_active",
        "roles",
    ]
    list_filter = ["is_active", "groups", "site_memberships__site"]
    actions = ["deactivate"]

    @admin.display(description=_("roles"))
    def roles(self, obj) -> str:
        labels = dict(Role.choices)
        return ", ".join(str(labels.get(g.name, g.name)) for g in obj.groups.all())

    @admin.action(description=_("Deactivate the selected users (their records stay attributed)"))
    def deactivate(self, request, queryset):
        for user in queryset:
            user.is_active = False
            user.save(update_fields=["is_active"])

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related("groups")
        if request.user.is_superuser:
            return queryset
        own = site_ids_for(request.user)
        return (
            queryset.filter(is_superuser=False)
            .filter(Q(site_memberships__site_id__in=own) | Q(site_memberships__isnull=True))
            .distinct()
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        allowed = {
            "username",
            "password",
            "password1",
            "password2",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "groups",
            "usable_password",
        }
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f in allowed]})
            for name, opts in fieldsets
            if any(f in allowed for f in opts["fields"])
        ]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = Group.objects.filter(name__in=Role.values)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: clinical records keep pointing at the user who made them.
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
