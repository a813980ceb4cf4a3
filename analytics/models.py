"""The export log: who exported what, when, with which parameters, how many rows, and the
data version of what was exported (analytics.exports.version)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportLog(models.Model):
    """One export. Written when the export starts; completed (row count, hashes) when its last
    byte has been produced, so an export the client abandoned stays visible as incomplete."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        XML = "xml", _("XML (CDISC ODM 1.3.2)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("user"),
    )
    at = models.DateTimeField(_("started at"), auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # A form table name, "analysis-dataset", "odm" or "codebook".
    what = models.CharField(_("export"), max_length=64)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    row_count = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    as_of = models.DateTimeField(_("data as of"), null=True, blank=True)
    data_version = models.CharField(
        _("data version (SHA-256)"),
        max_length=64,
        blank=True,
        help_text=_("Content hash of the exported rows, whatever the format or date shift."),
    )
    content_sha256 = models.CharField(
        _("file SHA-256"),
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of the bytes sent: compare with sha256sum of the downloaded file."),
    )

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("export log")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.what} ({self.format})"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None
