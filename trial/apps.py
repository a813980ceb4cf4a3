from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = _("Study and sites")

    def ready(self) -> None:
        from trial import roles

        # Groups need permissions that exist only once every app has migrated, so this runs
        # after each app's post_migrate and is idempotent.
        post_migrate.connect(roles.sync_role_groups_after_migrate)
