from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BiobankConfig(AppConfig):
    name = "biobank"
    verbose_name = _("Biobank")

    def ready(self) -> None:
        from biobank import panels, refresh  # noqa: F401 - registers the panel and the refresher
