"""Reads of the exchange app for its pages."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from exchange.models import ImportRun
from trial.scoping import site_ids_for


def import_run_list(*, user: AbstractBaseUser, limit: int = 50) -> QuerySet[ImportRun]:
    """The latest import runs the user may see: of their sites, or their own runs without a
    site (the site then came from each subject code)."""
    scope = Q(site_id__in=site_ids_for(user)) | Q(site__isnull=True, user=user)
    if user.is_superuser:
        scope = Q()
    return ImportRun.objects.filter(scope).select_related("user", "site")[:limit]
