"""Writing and reading the export log (analytics.models.ExportLog)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from analytics.models import ExportLog
from trial.scoping import site_ids_for

VIEW_EXPORT_LOG = "analytics.view_exportlog"


def export_logged(
    *,
    user: AbstractBaseUser,
    what: str,
    format: str,
    parameters: dict | None = None,
    row_count: int | None = None,
    as_of: datetime | None = None,
    data_version: str = "",
    content_sha256: str = "",
    complete: bool = False,
) -> ExportLog:
    """Record an export by `user` of `what` (a form table, "analysis-dataset", "odm",
    "codebook") in `format` with its `parameters` (JSON-serialisable). `complete=True` for an
    export produced at once; a streamed export is completed by `export_completed`."""
    return ExportLog.objects.create(
        user=user,
        what=what,
        format=format,
        parameters=parameters or {},
        row_count=row_count,
        as_of=as_of,
        data_version=data_version,
        content_sha256=content_sha256,
        completed_at=timezone.now() if complete else None,
    )


def export_completed(
    log: ExportLog, *, row_count: int, data_version: str = "", content_sha256: str = ""
) -> ExportLog:
    """Complete the log entry of a streamed export once its last byte was produced."""
    log.row_count = row_count
    log.data_version = data_version
    log.content_sha256 = content_sha256
    log.completed_at = timezone.now()
    log.save(update_fields=["row_count", "data_version", "content_sha256", "completed_at"])
    return log


def export_log(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ExportLog]:
    """The export log a data manager may read: the exports of everyone who works at one of
    the user's sites, and the user's own; every export for a superuser. Newest first.
    PermissionDenied without the permission analytics.view_exportlog."""
    if not user.is_authenticated or not user.has_perm(VIEW_EXPORT_LOG):
        raise PermissionDenied
    logs = ExportLog.objects.select_related("user")
    if user.is_superuser:
        return logs
    colleagues = Q(user__site_memberships__site_id__in=site_ids_for(user))
    ids = ExportLog.objects.filter(colleagues | Q(user=user)).values("pk")
    return logs.filter(pk__in=ids)
