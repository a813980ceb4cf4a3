from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    """Data coming in from outside the CRFs: the retrospective-cohort import. It writes through
    every clinical app's services, so it stands above them all (below analytics only)."""

    name = "exchange"
    verbose_name = _("Data exchange")
