from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = _("Study and sites")

    def ready(self) -> None:
        # accounts connects the login log; access registers the trial.E001/W001 system checks.
        from trial import access, accounts, audit, roles  # noqa: F401
        from trial.panels import Panel, register_patient_panel
        from trial.views_lifecycle import casebook_panel_context

        # Groups need permissions that exist only once every app has migrated, so this runs
        # after each app's post_migrate and is idempotent.
        post_migrate.connect(roles.sync_role_groups_after_migrate)
        # Every history row joins the hash chain (trial/audit.py, manage.py verify_audit); the
        # study row, written by a data migration without history, gets its first sealed row.
        audit.connect()
        post_migrate.connect(_seal_study_history, sender=self)
        register_patient_panel(
            Panel(
                key="casebook",
                order=50,
                template="trial/partials/_casebook_panel.html",
                context=casebook_panel_context,
            )
        )


def _seal_study_history(sender, using: str = "default", **kwargs) -> None:
    """post_migrate: a sealed first history row for a study that has none (idempotent)."""
    from trial import audit
    from trial.models import Study

    if Study.objects.using(using).exists():
        audit.populate_missing(Study.history.model)
