"""What each role may do: the permission matrix, kept in code and synced into Django groups.

A role is a Django group named after `Role`; which patients a user sees is decided by site
membership (`trial.scoping`), not by the role. Later issues extend the matrix with their models.
"""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from trial.models import Role

# Clinical records by app. The identity (PHI) has its own model and the `view_phi` permission.
CLINICAL_FORMS: dict[str, tuple[str, ...]] = {
    "patients": ("patient", "screening", "consent", "enrollment", "baseline", "withdrawal"),
    "treatments": ("regimenline", "chemocycle", "cycledose", "adverseevent"),
    "assessments": (
        "labpanel",
        "labresult",
        "imagingstudy",
        "targetlesion",
        "responseevaluation",
    ),
    "surgery": (
        "mdtdecision",
        "mdtevidence",
        "operation",
        "pathology",
        "complication",
        "discharge",
    ),
    "biobank": ("freezer", "rack", "box", "specimen", "custodyevent"),
    "followup": ("followupcontact", "recurrence", "death", "losttofollowup", "treatmentend"),
    "visits": ("expectedvisit", "visitclosure"),
}


def _perms(actions: Iterable[str]) -> set[str]:
    return {
        f"{app}.{action}_{model}"
        for app, models in CLINICAL_FORMS.items()
        for action in actions
        for model in models
    }


_VIEW_CLINICAL = _perms(["view"])
_ENTER_CLINICAL = _perms(["add", "change"])
# MDT decisions are recorded and approved by an investigator, not by a coordinator.
_MDT = {f"surgery.{a}_{m}" for a in ("add", "change") for m in ("mdtdecision", "mdtevidence")}
_PHI = {"patients.view_phi", "patients.view_patientidentity"}
# The analysis dataset, survival statistics and dashboards (analytics/): de-identified.
_ANALYTICS = {"trial.view_analytics"}
_ENTER_PHI = {"patients.add_patientidentity", "patients.change_patientidentity"}

# Data management (trial/lifecycle.py, trial/queries.py, trial/audit.py): who verifies, signs,
# locks, raises and answers queries, and reads the audit trail and the login log.
_ANSWER = {"trial.answer_query"}
_SDV = {"trial.verify_source"}
_SIGN = {"trial.sign_record"}
_LOCK = {"trial.lock_record"}
_RAISE = {"trial.raise_query"}
_AUDIT = {"trial.view_audit"}
_LOGIN_LOG = {"trial.view_login_log"}

ROLE_PERMISSIONS: dict[str, set[str]] = {
    Role.COORDINATOR: _VIEW_CLINICAL | (_ENTER_CLINICAL - _MDT) | _PHI | _ENTER_PHI | _ANSWER,
    Role.INVESTIGATOR: _VIEW_CLINICAL
    | _ENTER_CLINICAL
    | _PHI
    | _ENTER_PHI
    | _ANALYTICS
    | _ANSWER
    | _SIGN,
    # De-identified data only: never PHI, never a write.
    Role.STATISTICIAN: _VIEW_CLINICAL | _ANALYTICS,
    # Source-data verification compares with the hospital chart, so monitors see identity. They
    # raise queries and read the audit trail; they never change a clinical value.
    Role.MONITOR: _VIEW_CLINICAL | _PHI | _SDV | _RAISE | _AUDIT,
    # Data managers also bring the retrospective cohort in from spreadsheets (exchange/), and
    # read the export log and the audit records of the ODM export (analytics.api.exports).
    # They lock forms, casebooks and the study (database lock) and read the login log.
    Role.DATA_MANAGER: _VIEW_CLINICAL
    | _ANALYTICS
    | _RAISE
    | _LOCK
    | _AUDIT
    | _LOGIN_LOG
    | {"exchange.run_import", "analytics.view_exportlog"},
    Role.SITE_ADMIN: {
        "patients.view_patient",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "trial.view_site",
        "trial.view_sitemembership",
        "trial.add_sitemembership",
        "trial.change_sitemembership",
        "trial.delete_sitemembership",
        # The reminder log of their sites (visits/admin.py): whom reminders went to, failures.
        "visits.view_reminder",
        # Who logged in, failed or was locked out (account security).
        "trial.view_login_log",
    },
}


def sync_role_groups() -> None:
    """Create one group per role and give it exactly the permissions of the matrix."""
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        query = Q(pk__in=[])
        for label in wanted:
            app_label, codename = label.split(".", 1)
            query |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.filter(query))


def sync_role_groups_after_migrate(sender, **kwargs) -> None:
    """post_migrate receiver: runs after every app, so later apps' permissions are picked up."""
    sync_role_groups()
