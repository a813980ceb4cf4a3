from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = _("Visits")

    def ready(self) -> None:
        from visits import checks, panels, refresh  # noqa: F401 - registers them
