from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurgeryConfig(AppConfig):
    name = "surgery"
    verbose_name = _("Surgery")

    def ready(self) -> None:
        from surgery import checks, panels, refresh  # noqa: F401 - registers them
